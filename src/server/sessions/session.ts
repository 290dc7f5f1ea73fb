import type { Participant } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import type { Frame } from '../wire/frame.js';

/**
 * A user's presence on this server, as rooms, calls, PTT and media see it: who they are, which
 * rooms they are in, and a way to reach them. The one implementation is `LiveSession`, which only
 * the session manager and the signaling layer know.
 */
export interface Session {
  readonly id: string;
  readonly identity: Identity;
  readonly userId: string;
  /** roomId → this session's participant entry in that room. Kept by the room service. */
  readonly rooms: Map<string, Participant>;
  /** Ended for good: delivers nothing more. */
  readonly ended: boolean;
  /** Its connection dropped and it may still be resumed: deliveries are buffered. */
  readonly suspended: boolean;
  /** Delivers to the live connection, or buffers while suspended. */
  deliver(f: Frame): void;
}
