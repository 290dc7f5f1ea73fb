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

/** What every connection's token expiry shares: one object, built once by its owner. */
export interface TokenExpiryPolicy<S> {
  /** Every connection's token deadlines share its one timer (time/deadline-queue.ts). */
  readonly deadlines: DeadlineQueue;
  /** `auth:expiring` this long before `exp`. */
  readonly leadMs: number;
  /** The close comes this long after `exp` (the clock tolerance). */
  readonly toleranceMs: number;
  readonly handlers: TokenExpiryHandlers<S>;
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
  /** Shared by every connection (the queue, the lead, the tolerance, the handlers). */
  readonly #policy: TokenExpiryPolicy<S>;
  readonly #subject: S;
  /**
   * `exp` in ms until the warning has gone, then null. Kept apart from `dueAt` (the queue's, which
   * is `exp - leadMs` before the warning): each is one number per connection.
   */
  #expiresAt: number | null;

  constructor(expiresAt: number, policy: TokenExpiryPolicy<S>, subject: S) {
    this.#policy = policy;
    this.#subject = subject;
    this.#expiresAt = expiresAt;
    policy.deadlines.schedule(this, expiresAt - policy.leadMs);
  }

  /** Idempotent. */
  cancel(): void {
    this.#policy.deadlines.cancel(this);
  }

  /** Called by the queue. */
  onDue(): void {
    const policy = this.#policy;
    const expiresAt = this.#expiresAt;
    if (expiresAt !== null) {
      this.#expiresAt = null;
      // The close's deadline first: a handler that cancels (a refresh answered at once) cancels it.
      policy.deadlines.schedule(this, expiresAt + policy.toleranceMs);
      policy.handlers.expiring(this.#subject, expiresAt);
      return;
    }
    policy.handlers.expired(this.#subject);
  }
}
