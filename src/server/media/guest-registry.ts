import type { RemoteSessionInfo } from '../cluster/bus.js';
import type { RemoteUserDelivery } from '../sessions/user-delivery.js';
import { RemoteSession } from './remote-session.js';

/**
 * The stand-ins for other nodes' sessions whose rooms' media lives on this node: created on
 * their first forwarded operation, dropped when they have left every such room.
 */
export class GuestRegistry {
  readonly #guests = new Map<string, RemoteSession>();
  readonly #users: RemoteUserDelivery;
  /** Releases a guest's media in a room (MediaService.onLeft). */
  readonly #release: (guest: RemoteSession, roomId: string) => Promise<void>;

  constructor(users: RemoteUserDelivery, release: (guest: RemoteSession, roomId: string) => Promise<void>) {
    this.#users = users;
    this.#release = release;
  }

  /** The stand-in for `info`, created or refreshed from what its home node `from` says now. */
  upsert(info: RemoteSessionInfo, from: string): RemoteSession {
    let guest = this.#guests.get(info.id);
    if (guest) guest.update(info, from);
    else {
      guest = new RemoteSession(info, from, this.#users);
      this.#guests.set(guest.id, guest);
    }
    return guest;
  }

  /** The guest left `roomId` on its home node: its media here goes. */
  async left(sessionId: string, roomId: string): Promise<void> {
    const guest = this.#guests.get(sessionId);
    if (!guest) return;
    guest.rooms.delete(roomId);
    await this.#release(guest, roomId);
    if (guest.rooms.size === 0) {
      guest.ended = true;
      this.#guests.delete(sessionId);
    }
  }

  /** Guests whose home node is `nodeId`, with the rooms they are in. */
  *homedOn(nodeId: string): Generator<{ id: string; rooms: string[] }> {
    for (const guest of [...this.#guests.values()]) {
      if (guest.home === nodeId) yield { id: guest.id, rooms: [...guest.rooms] };
    }
  }
}
