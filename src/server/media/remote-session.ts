import type { Bus, RemoteSessionInfo } from '../cluster/bus.js';
import type { Logger } from '../logger.js';
import type { Frame } from '../signaling/connection.js';
import type { MediaSession } from './media-room.js';

/**
 * Stands in, on the node hosting a room's media, for a session connected to another node. What the
 * media plane sends it (producer:new, consumer:closed…) goes back over the bus to that node.
 */
export class RemoteSession implements MediaSession {
  readonly id: string;
  readonly userId: string;
  identity: RemoteSessionInfo['identity'];
  rooms: Set<string>;
  /** The node that terminates the session's WebSocket. */
  home: string;
  ended = false;
  readonly #bus: Bus;
  readonly #log: Logger;

  constructor(info: RemoteSessionInfo, home: string, bus: Bus, log: Logger) {
    this.id = info.id;
    this.userId = info.userId;
    this.identity = info.identity;
    this.rooms = new Set(info.rooms);
    this.home = home;
    this.#bus = bus;
    this.#log = log;
  }

  update(info: RemoteSessionInfo, home: string): void {
    this.identity = info.identity;
    this.rooms = new Set(info.rooms);
    this.home = home;
  }

  deliver(f: Frame): void {
    if (this.ended) return;
    this.#bus
      .publishToNode(this.home, { t: 'user', userId: this.userId, only: [this.id] }, f)
      .catch((err: unknown) =>
        this.#log.warn({ err, session: this.id }, 'could not reach a remote media session'),
      );
  }
}
