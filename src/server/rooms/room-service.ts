import type { Participant, RoomConfig, ServerPayload } from '../../protocol/index.js';
import { mayJoinRoom } from '../auth/claims.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EndReason } from '../sessions/session-manager.js';
import type { Session } from '../sessions/session.js';
import { frame, type Frame } from '../signaling/connection.js';
import type { StateStore } from '../state/state-store.js';
import { RoomCatalog } from './room-catalog.js';

/**
 * Room membership and presence. The state store holds who is in each room; this node keeps an
 * index of its own member sessions so a broadcast is one encode and a loop over sockets.
 */
export class RoomService {
  readonly #catalog: RoomCatalog;
  readonly #store: StateStore;
  readonly #log: Logger;
  /** roomId → sessions on this node that are members. */
  readonly #local = new Map<string, Set<Session>>();
  readonly #leftListeners: ((session: Session, roomId: string) => Promise<void> | void)[] = [];

  constructor(catalog: RoomCatalog, store: StateStore, log: Logger) {
    this.#catalog = catalog;
    this.#store = store;
    this.#log = log;
  }

  /** Listeners (media, floor control) run after a member has left, in registration order. */
  onLeft(listener: (session: Session, roomId: string) => Promise<void> | void): void {
    this.#leftListeners.push(listener);
  }

  async join(session: Session, roomId: string, displayName?: string): Promise<ServerPayload<'room:state'>> {
    const channel = this.#catalog.resolve(roomId);
    if (!channel) throw new ParleyError('ROOM_NOT_FOUND', `room "${roomId}" does not exist`);
    if (!mayJoinRoom(session.identity, roomId)) {
      throw new ParleyError('FORBIDDEN', `your token does not grant room "${roomId}"`);
    }
    const config = RoomCatalog.publicConfig(channel);
    const existing = session.rooms.get(roomId);
    if (existing) return this.#state(roomId, config, await this.#store.participants(roomId));

    const participant: Participant = {
      sessionId: session.id,
      userId: session.userId,
      name: displayName ?? session.identity.name,
      joinedAt: Date.now(),
    };
    const outcome = await this.#store.joinRoom(roomId, participant, channel.maxParticipants);
    if (outcome.status === 'full') {
      throw new ParleyError(
        'ROOM_FULL',
        `room "${roomId}" is full (${channel.maxParticipants} participants)`,
      );
    }
    if (session.ended) {
      // The socket died while the store was answering: undo, so no ghost member remains.
      await this.#store.leaveRoom(roomId, session.id);
      throw new ParleyError('NOT_IN_ROOM', 'session ended during join');
    }
    session.rooms.set(roomId, participant);
    this.#addLocal(roomId, session);
    this.broadcast(roomId, frame('room:participant-joined', { roomId, participant }), session);
    this.#log.debug({ roomId, session: session.id, userId: session.userId }, 'joined room');
    return this.#state(roomId, config, outcome.participants);
  }

  async leave(session: Session, roomId: string, reason: 'left' | 'disconnected'): Promise<void> {
    const participant = session.rooms.get(roomId);
    if (!participant) throw new ParleyError('NOT_IN_ROOM', `not a member of room "${roomId}"`);
    session.rooms.delete(roomId);
    this.#removeLocal(roomId, session);
    await this.#store.leaveRoom(roomId, session.id);
    this.broadcast(roomId, frame('room:participant-left', { roomId, participant, reason }));
    this.#log.debug({ roomId, session: session.id, reason }, 'left room');
    for (const listener of this.#leftListeners) {
      try {
        await listener(session, roomId);
      } catch (err) {
        this.#log.error({ err, roomId, session: session.id }, 'room-left listener failed');
      }
    }
  }

  /** Session-end listener: leave every room with the usual broadcasts. */
  readonly onSessionEnded = async (session: Session, reason: EndReason): Promise<void> => {
    const why = reason === 'left' ? 'left' : 'disconnected';
    for (const roomId of [...session.rooms.keys()]) await this.leave(session, roomId, why);
  };

  /** The current snapshot of a room the session is in (used after a resume). */
  async stateFor(session: Session, roomId: string): Promise<ServerPayload<'room:state'> | null> {
    const channel = this.#catalog.resolve(roomId);
    if (!channel || !session.rooms.has(roomId)) return null;
    return this.#state(roomId, RoomCatalog.publicConfig(channel), await this.#store.participants(roomId));
  }

  /** Sessions on this node that are members of the room. */
  localMembers(roomId: string): ReadonlySet<Session> | undefined {
    return this.#local.get(roomId);
  }

  /** One frame to every member on this node, except `except`. */
  broadcast(roomId: string, f: Frame, except?: Session): number {
    const members = this.#local.get(roomId);
    if (!members) return 0;
    let n = 0;
    for (const s of members) {
      if (s === except) continue;
      s.deliver(f);
      n++;
    }
    return n;
  }

  roomCount(): Promise<number> {
    return this.#store.roomCount();
  }

  async #state(
    roomId: string,
    config: RoomConfig,
    participants: Participant[],
  ): Promise<ServerPayload<'room:state'>> {
    const lock = config.mode === 'ptt' ? await this.#store.currentSpeaker(roomId) : null;
    const speaker = lock
      ? { userId: lock.userId, name: lock.name, sessionId: lock.sessionId, since: lock.since }
      : null;
    return { roomId, participants, config, speaker };
  }

  #addLocal(roomId: string, session: Session): void {
    let set = this.#local.get(roomId);
    if (!set) {
      set = new Set();
      this.#local.set(roomId, set);
    }
    set.add(session);
  }

  #removeLocal(roomId: string, session: Session): void {
    const set = this.#local.get(roomId);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) this.#local.delete(roomId);
  }
}
