import type { Clock, Timer } from '../time/clock.js';

/**
 * What a live connection does when its token is about to expire, and when it has. One object for
 * every connection (it gets the connection as `subject`): a connection holds no closures for it.
 */
export interface TokenExpiryHandlers<S> {
  /** `leadMs` before `exp` (at once if less is left): ask the client for a fresh token. */
  expiring(subject: S, expiresAt: number): void;
  /** At `exp` plus the clock tolerance, with no fresh token: close with 4401. */
  expired(subject: S): void;
}

export interface TokenExpiryOptions {
  clock: Clock;
  leadMs: number;
  toleranceMs: number;
}

/**
 * The two deadlines of one connection's token (issue 13, Medium 4: an expired JWT kept full access
 * on a live connection). Armed when the connection authenticates and again on each `auth:request`
 * refresh (which cancels the previous one); cancelled when the connection closes. Time comes from
 * the injected clock, so tests drive token lifetimes without waiting for them.
 *
 * One timer at a time: the warning's timer arms the close's when it fires. Each pending timer with
 * a duration of its own costs a timer list in Node (~0.3 KiB), and every idle connection has them.
 */
export class TokenExpiry<S> {
  readonly #clock: Clock;
  readonly #expiresAt: number;
  readonly #toleranceMs: number;
  readonly #handlers: TokenExpiryHandlers<S>;
  readonly #subject: S;
  #timer: Timer | null;
  #warned = false;

  constructor(expiresAt: number, opts: TokenExpiryOptions, handlers: TokenExpiryHandlers<S>, subject: S) {
    this.#clock = opts.clock;
    this.#expiresAt = expiresAt;
    this.#toleranceMs = opts.toleranceMs;
    this.#handlers = handlers;
    this.#subject = subject;
    this.#timer = this.#arm(expiresAt - opts.leadMs);
  }

  /** Idempotent. */
  cancel(): void {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(at: number): Timer {
    const timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()));
    timer.unref();
    return timer;
  }

  #fire(): void {
    if (!this.#warned) {
      this.#warned = true;
      // The close's timer first: a handler that cancels (a refresh answered at once) cancels it.
      this.#timer = this.#arm(this.#expiresAt + this.#toleranceMs);
      this.#handlers.expiring(this.#subject, this.#expiresAt);
      return;
    }
    this.#timer = null;
    this.#handlers.expired(this.#subject);
  }
}
