import type { Logger } from '../logger.js';
import type { Clock, Timer } from './clock.js';

export interface LeaseOptions {
  clock: Clock;
  log: Logger;
  /** What is held, for logs (e.g. `speaker lock of room radio`). */
  what: string;
  /** Time between renewals; a third of the TTL is the usual choice. */
  intervalMs: number;
  /**
   * Renews the lease. Resolves false when it is lost for good (expired, taken over). A rejection
   * is a failed attempt: see `lostOnError`.
   */
  renew: () => Promise<boolean>;
  /** Called once when the lease is lost. The lease stops renewing. */
  onLost?: () => void;
  /** A failed renewal means the lease is lost (true), or is retried at the next interval (false). */
  lostOnError: boolean;
}

/**
 * Keeps something alive by renewing it on an interval: the PTT speaker lock, a room's media
 * ownership, this node's heartbeat. A renewal still in flight is never started a second time.
 * `close()` is idempotent and stops renewing at once; nothing runs after it.
 */
export class Lease {
  readonly #o: LeaseOptions;
  #timer: Timer | null = null;
  #inFlight = false;
  #closed = false;

  constructor(options: LeaseOptions) {
    this.#o = options;
  }

  /** Starts renewing every `intervalMs`. `renewNow`: renew once at once too. */
  start({ renewNow = false }: { renewNow?: boolean } = {}): this {
    if (this.#closed || this.#timer) return this;
    this.#timer = this.#o.clock.setInterval(() => this.#renew(), this.#o.intervalMs);
    this.#timer.unref();
    if (renewNow) this.#renew();
    return this;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#o.clock.clearInterval(this.#timer);
    this.#timer = null;
  }

  #renew(): void {
    if (this.#closed || this.#inFlight) return;
    this.#inFlight = true;
    this.#o.renew().then(
      (held) => {
        this.#inFlight = false;
        if (!held) this.#lost();
      },
      (err: unknown) => {
        this.#inFlight = false;
        this.#o.log.warn({ err, what: this.#o.what }, 'lease renewal failed');
        if (this.#o.lostOnError) this.#lost();
      },
    );
  }

  #lost(): void {
    if (this.#closed) return;
    this.close();
    try {
      this.#o.onLost?.();
    } catch (err) {
      this.#o.log.error({ err, what: this.#o.what }, 'lease-lost handler failed');
    }
  }
}
