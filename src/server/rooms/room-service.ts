import type { Participant, RoomConfig, ServerPayload, Speaker } from '../../protocol/index.js';
import type { Channel } from '../config/manifest.js';
import { mayJoinRoom } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EndReason } from '../sessions/session-manager.js';
import type { Session } from '../sessions/session.js';
import { nothingToAnnounce, type Announced } from '../wire/announced.js';
import { frame, type Frame } from '../wire/frame.js';
import type { StateStore } from '../state/state-store.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';
import { speakerOf } from '../ptt/announcements.js';
import { RoomCatalog } from './room-catalog.js';
import type { RoomFanout } from './room-fanout.js';

/** Why a member is no longer in a room, as presence events (webhooks) tell it. */
export type DepartureReason = 'left' | 'disconnected' | 'removed' | 'ended';
/** The public part of a room's configuration, as presence events carry it. */
export type RoomRef = { roomId: string; name: string; mode: RoomConfig['mode'] };

/** What the room service tells the rest of the server. */
export type RoomEvents = {
  /** A member has left a room (on purpose, by disconnecting, or because it moved to another node). */
  left: [session: Session, roomId: string];
  /**
   * Presence, once across the cluster (the node that recorded the join tells it): `first` when the
   * room had no member before.
   */
  memberJoined: [room: RoomRef, participant: Participant, first: boolean];
  /** The same for a departure, wherever the member was: `last` when the room is empty now. */
  memberLeft: [room: RoomRef, participant: Participant, reason: DepartureReason, last: boolean];
};

/** How long a removal keeps the removed token out of the room: its life, or this if it has none. 24 h. */
const BAN_FALLBACK_TTL_MS = defaults.roomBanFallbackTtlMs;

export interface RoomServiceOptions {
  catalog: RoomCatalog;
  store: StateStore;
  log: Logger;
  cluster?: ClusterLink | null;
  clock?: Clock;
  /** MAX_ROOMS_PER_SESSION and MAX_AD_HOC_ROOMS_PER_USER. Default: defaults.ts. */
  quotas?: { maxRoomsPerSession: number; maxAdHocRoomsPerUser: number };
}

/**
 * Room membership and presence. The state store holds who is in each room; this node keeps an
 * index of its own member sessions so a broadcast is one encode and a loop over sockets.
 */
export class RoomService implements RoomFanout {
  readonly #catalog: RoomCatalog;
  readonly #store: StateStore;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** roomId → sessions on this node that are members. */
  readonly #local = new Map<string, Set<Session>>();
  readonly #cluster: ClusterLink | null;
  /** Leaves the state backend could not record while it was down, retried when it is back. */
  readonly #pendingLeaves: { roomId: string; sessionId: string }[] = [];
  #leaveRetry: Timer | null = null;
  #closed = false;
  readonly hooks: Hooks<RoomEvents>;
  readonly #quotas: { maxRoomsPerSession: number; maxAdHocRoomsPerUser: number };
  /** userId → ad-hoc rooms that user's joins created here and that may still exist (pruned at the quota). */
  readonly #adHocCreated = new Map<string, Set<string>>();
  /** roomId → the user whose join created it (the inverse of #adHocCreated, to forget an emptied room). */
  readonly #adHocCreator = new Map<string, string>();

  constructor({
    catalog,
    store,
    log,
    cluster = null,
    clock = systemClock,
    quotas = {
      maxRoomsPerSession: defaults.maxRoomsPerSession,
      maxAdHocRoomsPerUser: defaults.maxAdHocRoomsPerUser,
    },
  }: RoomServiceOptions) {
    this.#quotas = quotas;
    this.#catalog = catalog;
    this.#store = store;
    this.#log = log;
    this.#cluster = cluster;
    this.#clock = clock;
    this.hooks = new Hooks('rooms', log);
  }

  /** Bus: a broadcast from another node; deliver it to our members of that room. */
  readonly onRemoteBroadcast = (roomId: string, f: Frame, exceptSessionId?: string): void => {
    this.deliverLocal(roomId, f, exceptSessionId);
  };

  /** Joins; `announce` tells the other members (run it once the joiner has its `room:state`). */
  async join(
    session: Session,
    roomId: string,
    displayName?: string,
  ): Promise<Announced<ServerPayload<'room:state'>>> {
    const channel = this.#catalog.resolve(roomId);
    if (!channel) throw new ParleyError('ROOM_NOT_FOUND', `room "${roomId}" does not exist`);
    if (!mayJoinRoom(session.identity, roomId)) {
      throw new ParleyError('FORBIDDEN', `your token does not grant room "${roomId}"`);
    }
    const { tokenId } = session.identity;
    if (tokenId && (await this.#store.hasClaim(banKey(roomId, tokenId)))) {
      throw new ParleyError('FORBIDDEN', `you were removed from room "${roomId}"; a new token is needed`);
    }
    const config = RoomCatalog.publicConfig(channel);
    const existing = session.rooms.get(roomId);
    if (existing) {
      const result = await this.#state(roomId, config, await this.#store.participants(roomId));
      return { result, announce: nothingToAnnounce };
    }

    const { maxRoomsPerSession } = this.#quotas;
    if (session.rooms.size >= maxRoomsPerSession) {
      throw new ParleyError('QUOTA_EXCEEDED', `at most ${maxRoomsPerSession} rooms per session`, {
        quota: 'rooms',
        limit: maxRoomsPerSession,
      });
    }
    const adHoc = !this.#catalog.declares(roomId);
    if (adHoc) await this.#checkAdHocQuota(session.userId, roomId);

    // The name others see is the token's (issue 13, Medium 6: anyone could appear as "Alice"). A
    // token without one leaves the choice to the client, and everyone sees it is unverified.
    const chosen = session.identity.nameVerified === false ? displayName : undefined;
    const participant: Participant = {
      sessionId: session.id,
      userId: session.userId,
      name: chosen ?? session.identity.name,
      joinedAt: this.#clock.now(),
      ...(chosen === undefined ? {} : { nameVerified: false }),
    };
    let outcome = await this.#store.joinRoom(roomId, participant, channel.maxParticipants);
    // Medium 1 of issue 13: seats held by suspended sessions (dropped, maybe never coming back)
    // must not keep live users out. A live joiner to a full room takes the seat of the room's
    // longest-seated suspended member on this node, who leaves as on a disconnect. Its departure
    // is a broadcast this join causes: the room hears it after the joiner has its room:state
    // (SPEC §9), and before the join itself, so nobody ever sees more members than seats.
    let evicted: Announced<null>['announce'] = nothingToAnnounce;
    if (outcome.status === 'full') {
      const freed = await this.#reclaimSuspendedSeat(roomId);
      if (freed) {
        evicted = freed;
        outcome = await this.#store.joinRoom(roomId, participant, channel.maxParticipants);
      }
    }
    if (outcome.status === 'full' || session.ended) {
      // Refused after all (a concurrent joiner took the freed seat, or the socket died while the
      // store was answering): the evicted member is gone either way, so the room hears it now.
      await evicted();
    }
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
    if (adHoc && outcome.participants.length === 1) this.#noteAdHocCreated(session.userId, roomId);
    this.#clusterNote(this.#cluster?.directory.addSessionRoom(session.id, roomId));
    this.#log.debug({ roomId, session: session.id, userId: session.userId }, 'joined room');
    await this.hooks.emit('memberJoined', refOf(channel), participant, outcome.participants.length === 1);
    const result = await this.#state(roomId, config, outcome.participants);
    const joined = frame('room:participant-joined', { roomId, participant });
    return {
      result,
      announce: async () => {
        await evicted();
        this.broadcast(roomId, joined, session);
      },
    };
  }

  /**
   * MAX_AD_HOC_ROOMS_PER_USER: a join that would create one more ad-hoc room than the user's
   * created ones that still exist is refused. Rooms that emptied since (on any node) are pruned
   * first, by asking the state store, only when the count is at the quota.
   */
  async #checkAdHocQuota(userId: string, roomId: string): Promise<void> {
    const limit = this.#quotas.maxAdHocRoomsPerUser;
    const created = this.#adHocCreated.get(userId);
    if ((created?.size ?? 0) < limit) return;
    for (const id of [...(created ?? [])]) {
      if ((await this.#store.participants(id)).length === 0) this.#forgetAdHoc(id);
    }
    const left = this.#adHocCreated.get(userId);
    if ((left?.size ?? 0) < limit || left?.has(roomId)) return;
    if ((await this.#store.participants(roomId)).length > 0) return; // joining, not creating
    throw new ParleyError('QUOTA_EXCEEDED', `at most ${limit} ad-hoc rooms created per user at once`, {
      quota: 'adHocRooms',
      limit,
    });
  }

  #noteAdHocCreated(userId: string, roomId: string): void {
    let set = this.#adHocCreated.get(userId);
    if (!set) {
      set = new Set();
      this.#adHocCreated.set(userId, set);
    }
    set.add(roomId);
    this.#adHocCreator.set(roomId, userId);
  }

  /** An ad-hoc room is gone (no member anywhere): it no longer counts for its creator. */
  #forgetAdHoc(roomId: string): void {
    const creator = this.#adHocCreator.get(roomId);
    if (creator === undefined) return;
    this.#adHocCreator.delete(roomId);
    const set = this.#adHocCreated.get(creator);
    set?.delete(roomId);
    if (set?.size === 0) this.#adHocCreated.delete(creator);
  }

  /**
   * Frees the seat of the room's longest-seated suspended member on this node, and returns the
   * announcement of its departure (for the caller to run once its joiner has the reply); null if
   * there is no such member.
   */
  async #reclaimSuspendedSeat(roomId: string): Promise<Announced<null>['announce'] | null> {
    let victim: Session | null = null;
    let since = Infinity;
    for (const s of this.#local.get(roomId) ?? []) {
      const joinedAt = s.rooms.get(roomId)?.joinedAt ?? Infinity;
      if (s.suspended && joinedAt < since) {
        victim = s;
        since = joinedAt;
      }
    }
    if (!victim) return null;
    this.#log.info({ roomId, session: victim.id }, 'seat of a suspended member given to a live joiner');
    const { announce } = await this.beginLeave(victim, roomId, 'disconnected');
    return announce;
  }

  /** Leaves and tells the room at once (disconnects, session ends, removal by the server API). */
  async leave(session: Session, roomId: string, reason: 'left' | 'disconnected' | 'removed'): Promise<void> {
    const { announce } = await this.beginLeave(session, roomId, reason);
    await announce();
  }

  /**
   * Leaves; `announce` tells the others (`room:participant-left`) and then the rest of the server
   * (the `left` hooks: the floor, the member's media), once the leaver has its `room:left`.
   */
  async beginLeave(
    session: Session,
    roomId: string,
    reason: 'left' | 'disconnected' | 'removed',
  ): Promise<Announced<null>> {
    const participant = session.rooms.get(roomId);
    if (!participant) throw new ParleyError('NOT_IN_ROOM', `not a member of room "${roomId}"`);
    session.rooms.delete(roomId);
    this.#removeLocal(roomId, session);
    this.#clusterNote(this.#cluster?.directory.removeSessionRoom(session.id, roomId));
    let remaining: number | null = null;
    try {
      remaining = (await this.#store.leaveRoomCounted(roomId, session.id))?.remaining ?? null;
    } catch (err) {
      // The state backend is down: remember to remove the entry when it is back, or it would stay a ghost.
      this.#log.warn(
        { err, roomId, session: session.id },
        'leave not recorded; will retry when state is back',
      );
      this.#pendingLeaves.push({ roomId, sessionId: session.id });
      this.#scheduleLeaveRetry();
    }
    this.#log.debug({ roomId, session: session.id, reason }, 'left room');
    await this.#departed(roomId, participant, reason, remaining);
    const left = frame('room:participant-left', { roomId, participant, reason });
    return {
      result: null,
      announce: () => {
        this.broadcast(roomId, left);
        return this.#notifyLeft(session, roomId);
      },
    };
  }

  /** Tells presence listeners, when the store recorded the departure (it may be down: then nobody can say). */
  async #departed(
    roomId: string,
    participant: Participant,
    reason: DepartureReason,
    remaining: number | null,
  ): Promise<void> {
    if (remaining === null) return;
    if (remaining === 0) this.#forgetAdHoc(roomId);
    const channel = this.#catalog.resolve(roomId);
    const room = channel ? refOf(channel) : { roomId, name: roomId, mode: 'conference' as const };
    await this.hooks.emit('memberLeft', room, participant, reason, remaining === 0);
  }

  /**
   * Server API: keeps a removed member's token out of the room for as long as the token lives
   * (every node checks it on join).
   */
  async ban(session: Session, roomId: string): Promise<void> {
    const { tokenId, expiresAt } = session.identity;
    if (!tokenId) return;
    const ttlMs =
      expiresAt === null
        ? BAN_FALLBACK_TTL_MS
        : Math.max(defaults.roomBanMinTtlMs, expiresAt - this.#clock.now());
    await this.#store.claimOnce(banKey(roomId, tokenId), ttlMs);
  }

  /**
   * Server API: ends the room for this node's members. Each is told `room:ended`, then taken out
   * of it (their floor and media go as on a leave); nobody is told of the others' departures, the
   * room is gone. Returns how many sessions were taken out.
   */
  async endLocal(roomId: string, reason: string): Promise<number> {
    const members = [...(this.#local.get(roomId) ?? [])];
    const ended = frame('room:ended', { roomId, reason });
    for (const session of members) {
      const participant = session.rooms.get(roomId);
      if (!participant) continue;
      session.deliver(ended);
      session.rooms.delete(roomId);
      this.#removeLocal(roomId, session);
      this.#clusterNote(this.#cluster?.directory.removeSessionRoom(session.id, roomId));
      const outcome = await this.#store.leaveRoomCounted(roomId, session.id).catch(() => null);
      await this.#departed(roomId, participant, 'ended', outcome?.remaining ?? null);
      await this.#notifyLeft(session, roomId);
    }
    return members.length;
  }

  /** Server API, after every node ended the room: members of nodes that did not answer (dead) go too. */
  async purge(roomId: string): Promise<number> {
    let n = 0;
    for (const p of await this.#store.participants(roomId)) {
      const outcome = await this.#store.leaveRoomCounted(roomId, p.sessionId);
      if (!outcome) continue;
      n++;
      await this.#departed(roomId, outcome.participant, 'ended', outcome.remaining);
    }
    return n;
  }

  /** Server API: the members of a room, on every node. */
  participants(roomId: string): Promise<Participant[]> {
    return this.#store.participants(roomId);
  }

  /** Server API: rooms with members, on every node. */
  roomIds(): Promise<string[]> {
    return this.#store.roomIds();
  }

  /**
   * Server API: a room's configuration, current speaker and member count; null if the room does
   * not exist (not a manifest channel, and an ad-hoc room only exists while it has members).
   */
  async describe(
    roomId: string,
  ): Promise<{ config: RoomConfig; speaker: Speaker | null; members: number } | null> {
    const channel = this.#catalog.resolve(roomId);
    if (!channel) return null;
    const members = (await this.#store.participants(roomId)).length;
    if (members === 0 && !this.#catalog.declares(roomId)) return null;
    const config = RoomCatalog.publicConfig(channel);
    const lock = config.mode === 'ptt' ? await this.#store.currentSpeaker(roomId) : null;
    return { config, speaker: speakerOf(lock), members };
  }

  #notifyLeft(session: Session, roomId: string): Promise<void> {
    return this.hooks.emit('left', session, roomId);
  }

  /** Session-adopt listener (cross-node resume): rebuild the session's memberships from shared state. */
  readonly onSessionAdopted = async (session: Session): Promise<void> => {
    const roomIds = (await this.#cluster?.directory.sessionRooms(session.id)) ?? [];
    for (const roomId of roomIds) {
      const participant = (await this.#store.participants(roomId)).find((p) => p.sessionId === session.id);
      if (!participant) continue;
      session.rooms.set(roomId, participant);
      this.#addLocal(roomId, session);
    }
  };

  /** Session-moved listener: it lives on another node now; forget it here without a word to the rooms. */
  readonly onSessionMovedAway = async (session: Session): Promise<void> => {
    for (const roomId of [...session.rooms.keys()]) {
      this.#removeLocal(roomId, session);
      await this.#notifyLeft(session, roomId);
    }
    session.rooms.clear();
  };

  /** A member on a dead node is gone for good: the reaping node removes and announces it. */
  async reapRemote(roomId: string, sessionId: string): Promise<void> {
    const outcome = await this.#store.leaveRoomCounted(roomId, sessionId);
    if (!outcome) return;
    const { participant, remaining } = outcome;
    this.broadcast(roomId, frame('room:participant-left', { roomId, participant, reason: 'disconnected' }));
    await this.#departed(roomId, participant, 'disconnected', remaining);
  }

  /**
   * After Redis lost its data: write this node's memberships back (capacity is not re-checked).
   * Returns the rooms this node has members in.
   */
  async republish(): Promise<string[]> {
    await this.#retryLeaves();
    for (const [roomId, members] of this.#local) {
      for (const session of members) {
        const participant = session.rooms.get(roomId);
        if (!participant) continue;
        await this.#store.joinRoom(roomId, participant, Number.MAX_SAFE_INTEGER).catch(() => undefined);
        await this.#cluster?.directory.addSessionRoom(session.id, roomId).catch(() => undefined);
      }
    }
    return [...this.#local.keys()];
  }

  /** Session-end listener: leave every room with the usual broadcasts. */
  readonly onSessionEnded = async (session: Session, reason: EndReason): Promise<void> => {
    const why = reason === 'left' || reason === 'removed' ? reason : 'disconnected';
    for (const roomId of [...session.rooms.keys()]) await this.leave(session, roomId, why);
  };

  /** The current snapshot of a room the session is in (used after a resume). */
  async stateFor(session: Session, roomId: string): Promise<ServerPayload<'room:state'> | null> {
    const channel = this.#catalog.resolve(roomId);
    if (!channel || !session.rooms.has(roomId)) return null;
    return this.#state(roomId, RoomCatalog.publicConfig(channel), await this.#store.participants(roomId));
  }

  localMembers(roomId: string): ReadonlySet<Session> | undefined {
    return this.#local.get(roomId);
  }

  broadcast(roomId: string, f: Frame, except?: { id: string }): number {
    const cluster = this.#cluster;
    if (cluster) {
      const header = except
        ? { t: 'room' as const, roomId, except: except.id }
        : { t: 'room' as const, roomId };
      this.#clusterNote(cluster.bus.publishToRoom(roomId, header, f));
    }
    return this.deliverLocal(roomId, f, except?.id);
  }

  deliverLocal(roomId: string, f: Frame, exceptSessionId?: string): number {
    const members = this.#local.get(roomId);
    if (!members) return 0;
    let n = 0;
    for (const s of members) {
      if (s.id === exceptSessionId) continue;
      s.deliver(f);
      n++;
    }
    return n;
  }

  async #retryLeaves(): Promise<void> {
    for (const { roomId, sessionId } of this.#pendingLeaves.splice(0)) {
      await this.#store
        .leaveRoom(roomId, sessionId)
        .catch(() => this.#pendingLeaves.push({ roomId, sessionId }));
    }
  }

  /** Retries unrecorded leaves every second until the backend takes them (a pause is not a reconnect). */
  #scheduleLeaveRetry(): void {
    if (this.#leaveRetry || this.#closed) return;
    this.#leaveRetry = this.#clock.setTimeout(() => {
      this.#leaveRetry = null;
      background(
        this.#retryLeaves().then(() => {
          if (this.#pendingLeaves.length > 0) this.#scheduleLeaveRetry();
        }),
        this.#log,
        'retry leaves',
      );
    }, defaults.leaveRetryIntervalMs);
    this.#leaveRetry.unref();
  }

  #clusterNote(p: Promise<unknown> | undefined): void {
    background(p, this.#log, 'cluster update');
  }

  roomCount(): Promise<number> {
    return this.#store.roomCount();
  }

  /**
   * Shutdown (after every session has ended): stops retrying unrecorded leaves. Idempotent; no
   * timer of the room service runs after it.
   */
  close(): void {
    this.#closed = true;
    if (this.#leaveRetry) this.#clock.clearTimeout(this.#leaveRetry);
    this.#leaveRetry = null;
  }

  async #state(
    roomId: string,
    config: RoomConfig,
    participants: Participant[],
  ): Promise<ServerPayload<'room:state'>> {
    const lock = config.mode === 'ptt' ? await this.#store.currentSpeaker(roomId) : null;
    return { roomId, participants, config, speaker: speakerOf(lock) };
  }

  #addLocal(roomId: string, session: Session): void {
    let set = this.#local.get(roomId);
    if (!set) {
      set = new Set();
      this.#local.set(roomId, set);
      this.#cluster?.bus.subscribeRoom(roomId);
    }
    set.add(session);
  }

  #removeLocal(roomId: string, session: Session): void {
    const set = this.#local.get(roomId);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) {
      this.#local.delete(roomId);
      this.#cluster?.bus.unsubscribeRoom(roomId);
    }
  }
}

function refOf(channel: Channel): RoomRef {
  return { roomId: channel.id, name: channel.name, mode: channel.mode };
}

function banKey(roomId: string, tokenId: string): string {
  return `ban:{${roomId}}:${tokenId}`;
}
