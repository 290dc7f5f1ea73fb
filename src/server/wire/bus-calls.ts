import { randomUUID } from 'node:crypto';
import { isErrorCode, type ErrorBody } from '../../protocol/index.js';
import { ParleyError } from '../errors.js';
import type { Clock, Timer } from '../time/clock.js';

/** The answer to a call over the bus: a result, or an error from the catalogue. */
export type BusReply = { id: string } & ({ ok: true; result: unknown } | ({ ok: false } & ErrorBody));

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

/**
 * Calls to another node over the bus that wait for its reply (media and server API operations):
 * each gets an id, a deadline, and settles once, from the reply, the deadline or a failed publish.
 * `close()` fails every call still waiting; no call starts after it.
 */
export class BusCalls {
  readonly #clock: Clock;
  readonly #pending = new Map<string, Pending>();
  #closed = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Sends with `publish(id)` and waits for the reply with that id, for at most `timeoutMs`.
   * `what` names the other side in the timeout error.
   */
  call<T>(publish: (id: string) => Promise<unknown>, timeoutMs: number, what: string): Promise<T> {
    if (this.#closed) return Promise.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(new ParleyError('SERVICE_UNAVAILABLE', `${what} did not answer`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      publish(id).catch((err: unknown) => {
        this.#clock.clearTimeout(timer);
        this.#pending.delete(id);
        reject(
          err instanceof ParleyError
            ? err
            : new ParleyError('SERVICE_UNAVAILABLE', 'the cluster bus is unavailable'),
        );
      });
    });
  }

  /** Bus: a reply arrived. Unknown or late ids are ignored. */
  readonly settle = (reply: BusReply): void => {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    this.#clock.clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    // A newer node may answer with a code this one does not know yet.
    else
      p.reject(
        new ParleyError(isErrorCode(reply.code) ? reply.code : 'INTERNAL', reply.message, reply.details),
      );
  };

  /** Shutdown: every call still waiting fails with SERVICE_UNAVAILABLE. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const p of this.#pending.values()) {
      this.#clock.clearTimeout(p.timer);
      p.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    }
    this.#pending.clear();
  }
}
