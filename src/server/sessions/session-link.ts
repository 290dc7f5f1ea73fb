import type { Identity } from '../auth/claims.js';
import type { Frame } from '../wire/frame.js';

/**
 * What a session needs of the connection that carries it: a small port that the signaling layer's
 * `Connection` implements, so that sessions never depend on the socket layer. `S` is the session
 * type it carries (LiveSession), a parameter so that this file depends on nothing in sessions/.
 */
export interface SessionLink<S> {
  readonly id: string;
  readonly closed: boolean;
  readonly identity: Identity | null;
  /** The session this connection carries; the session manager sets and clears it. */
  session: S | null;
  sendFrame(f: Frame): void;
  close(code: number, reason: string): void;
}
