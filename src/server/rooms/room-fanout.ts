import type { Session } from '../sessions/session.js';
import type { Frame } from '../wire/frame.js';

/**
 * What media, PTT and the cluster need of rooms: reach the members. The room service implements
 * it; its users depend on these three methods, not on the service.
 */
export interface RoomFanout {
  /** One frame to every member of the room, on every node, except the session `except`. */
  broadcast(roomId: string, f: Frame, except?: { id: string }): void;
  /** The same, to this node's members only (what arrived from another node, or a local resync). */
  deliverLocal(roomId: string, f: Frame, exceptSessionId?: string): void;
  /** Sessions on this node that are members of the room. */
  localMembers(roomId: string): ReadonlySet<Session> | undefined;
}
