import type { RemoteSessionInfo } from '../cluster/bus.js';
import type { RemoteUserDelivery } from '../sessions/user-delivery.js';
import type { Frame } from '../wire/frame.js';
import type { MediaSession } from './media-room.js';

/**
 * Stands in, on the node hosting a room's media, for a session connected to another node. What the
 * media plane sends it (producer:new, consumer:closed…) goes back to that node through user delivery.
 */
export class RemoteSession implements MediaSession {
  readonly id: string;
  readonly userId: string;
  identity: RemoteSessionInfo['identity'];
  rooms: Set<string>;
  /** The node that terminates the session's WebSocket. */
  home: string;
  ended = false;
  readonly #users: RemoteUserDelivery;

  constructor(info: RemoteSessionInfo, home: string, users: RemoteUserDelivery) {
    this.id = info.id;
    this.userId = info.userId;
    this.identity = info.identity;
    this.rooms = new Set(info.rooms);
    this.home = home;
    this.#users = users;
  }

  update(info: RemoteSessionInfo, home: string): void {
    this.identity = info.identity;
    this.rooms = new Set(info.rooms);
    this.home = home;
  }

  deliver(f: Frame): void {
    if (this.ended) return;
    this.#users.deliverOnNodeQuietly(this.home, this.userId, f, { only: [this.id] });
  }
}
