import type { ParleyError } from './errors.js';

/** What a {@link ReconnectPolicy} knows when it decides the next delay. */
export interface ReconnectContext {
  /** Retries made so far in this outage: 0 for the first retry. */
  readonly attempt: number;
  /** Time since the connection was lost. */
  readonly elapsedMs: number;
  /** Why the last connection (or attempt) ended. */
  readonly reason: ParleyError;
  /** The server's own hint, from `server:shutdown {reconnectInMs}` (already jittered per client). */
  readonly serverHintMs?: number;
}

/**
 * Decides when the SDK tries to reconnect after a drop, as in LiveKit's `ReconnectPolicy`.
 * Return the delay in ms before the next attempt, or `null` to give up (the client then emits
 * `disconnected`).
 */
export interface ReconnectPolicy {
  nextRetryDelayInMs(context: ReconnectContext): number | null;
}

export interface DefaultReconnectPolicyOptions {
  /** Delay before the second retry; later ones grow by `multiplier`. Default 500 ms. */
  baseDelayMs?: number;
  /** Upper bound of one delay. Default 10 000 ms. */
  maxDelayMs?: number;
  /** Growth factor between retries. Default 2. */
  multiplier?: number;
  /** Give up once the outage has lasted this long. Default 5 minutes; `Infinity` never gives up. */
  maxElapsedMs?: number;
  /** Random source in [0, 1), for tests. Default Math.random. */
  random?: () => number;
}

/**
 * Exponential back-off with jitter. The first retry goes out almost at once (0–100 ms), because
 * most drops are blips and a resume is only possible within the server's grace window (15 s by
 * default). After that, "equal jitter": half the exponential delay plus a random half, so a
 * server restart does not see every client come back in the same millisecond. A server hint
 * (`server:shutdown`) is honoured as a lower bound.
 */
export class DefaultReconnectPolicy implements ReconnectPolicy {
  readonly #base: number;
  readonly #max: number;
  readonly #multiplier: number;
  readonly #maxElapsed: number;
  readonly #random: () => number;

  constructor(options: DefaultReconnectPolicyOptions = {}) {
    this.#base = options.baseDelayMs ?? 500;
    this.#max = options.maxDelayMs ?? 10_000;
    this.#multiplier = options.multiplier ?? 2;
    this.#maxElapsed = options.maxElapsedMs ?? 5 * 60_000;
    this.#random = options.random ?? Math.random;
  }

  nextRetryDelayInMs({ attempt, elapsedMs, serverHintMs }: ReconnectContext): number | null {
    if (elapsedMs >= this.#maxElapsed) return null;
    let delay: number;
    if (attempt === 0) {
      delay = Math.round(this.#random() * 100);
    } else {
      const exp = Math.min(this.#max, this.#base * this.#multiplier ** (attempt - 1));
      delay = Math.round(exp / 2 + (this.#random() * exp) / 2);
    }
    return Math.max(delay, serverHintMs ?? 0);
  }
}
