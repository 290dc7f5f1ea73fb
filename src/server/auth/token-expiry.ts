import type { Deadline, DeadlineQueue } from '../time/deadline-queue.js';

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
  /** Every connection's token deadlines share its one timer (time/deadline-queue.ts). */
  deadlines: DeadlineQueue;
  leadMs: number;
  toleranceMs: number;
}

/**
 * The two deadlines of one connection's token (issue 13, Medium 4: an expired JWT kept full access
 * on a live connection). Armed when the connection authenticates and again on each `auth:request`
 * refresh (which cancels the previous one); cancelled when the connection closes. Time comes from
 * the injected clock, so tests drive token lifetimes without waiting for them.
 *
 * One deadline at a time: the warning's arms the close's when it falls due. Every idle connection
 * has one, so it is a place in a shared {@link DeadlineQueue}, not a Node timer of its own (a
 * `Timeout`, a closure and a timer list per distinct duration: ~0.25 KiB each).
 */
export class TokenExpiry<S> implements Deadline {
  dueAt = 0;
  queueSlot = -1;
  queueSeq = 0;
  readonly #deadlines: DeadlineQueue;
  readonly #expiresAt: number;
  readonly #toleranceMs: number;
  readonly #handlers: TokenExpiryHandlers<S>;
  readonly #subject: S;
  #warned = false;

  constructor(expiresAt: number, opts: TokenExpiryOptions, handlers: TokenExpiryHandlers<S>, subject: S) {
    this.#deadlines = opts.deadlines;
    this.#expiresAt = expiresAt;
    this.#toleranceMs = opts.toleranceMs;
    this.#handlers = handlers;
    this.#subject = subject;
    this.#deadlines.schedule(this, expiresAt - opts.leadMs);
  }

  /** Idempotent. */
  cancel(): void {
    this.#deadlines.cancel(this);
  }

  /** Called by the queue. */
  onDue(): void {
    if (!this.#warned) {
      this.#warned = true;
      // The close's deadline first: a handler that cancels (a refresh answered at once) cancels it.
      this.#deadlines.schedule(this, this.#expiresAt + this.#toleranceMs);
      this.#handlers.expiring(this.#subject, this.#expiresAt);
      return;
    }
    this.#handlers.expired(this.#subject);
  }
}
