import type { Clock, Timer } from '../time/clock.js';

/** What a live connection does when its token is about to expire, and when it has. */
export interface TokenExpiryHandlers {
  /** `leadMs` before `exp` (at once if less is left): ask the client for a fresh token. */
  expiring(expiresAt: number): void;
  /** At `exp` plus the clock tolerance, with no fresh token: close with 4401. */
  expired(): void;
}

/**
 * The two timers of one connection's token (issue 13, Medium 4: an expired JWT kept full access on
 * a live connection). Armed when the connection authenticates and again on each `auth:request`
 * refresh (which cancels the previous one); cancelled when the connection closes. Time comes from
 * the injected clock, so tests drive token lifetimes without waiting for them.
 */
export class TokenExpiry {
  readonly #clock: Clock;
  #warn: Timer | null = null;
  #end: Timer | null = null;

  constructor(
    expiresAt: number,
    opts: { clock: Clock; leadMs: number; toleranceMs: number },
    handlers: TokenExpiryHandlers,
  ) {
    this.#clock = opts.clock;
    const now = opts.clock.now();
    this.#warn = opts.clock.setTimeout(
      () => {
        this.#warn = null;
        handlers.expiring(expiresAt);
      },
      Math.max(0, expiresAt - opts.leadMs - now),
    );
    this.#end = opts.clock.setTimeout(
      () => {
        this.#end = null;
        this.cancel();
        handlers.expired();
      },
      Math.max(0, expiresAt + opts.toleranceMs - now),
    );
    this.#warn.unref();
    this.#end.unref();
  }

  /** Idempotent. */
  cancel(): void {
    if (this.#warn) this.#clock.clearTimeout(this.#warn);
    if (this.#end) this.#clock.clearTimeout(this.#end);
    this.#warn = null;
    this.#end = null;
  }
}
