import type { Session } from '../sessions/session.js';

/** What floor control needs of the media plane: the speaker's audio follows the floor. */
export interface FloorMedia {
  /** The session got the floor: its producer goes live through the room's floor producer. */
  floorGranted(session: Session, roomId: string): Promise<void>;
  /** The session lost or released the floor: its producer is paused again. */
  floorReleased(session: Session, roomId: string): Promise<void>;
}
