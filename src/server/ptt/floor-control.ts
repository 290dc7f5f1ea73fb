import type { ServerPayload, Speaker } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { PttConfig } from '../config/env.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ChannelResolver } from '../rooms/room-catalog.js';
import type { RoomFanout } from '../rooms/room-fanout.js';
import type { Session } from '../sessions/session.js';
import { frame } from '../wire/frame.js';
import type { HeldLock, StateStore } from '../state/state-store.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';
import { Lease } from '../time/lease.js';
import { speakerChanged, speakerOf } from './announcements.js';
import type { FloorMedia } from './floor-media.js';

type RevokeReason = ServerPayload<'ptt:revoked'>['reason'];
type Who = { userId: string; name: string };

/**
 * What floor control tells the rest of the server (webhooks), each once across the cluster: the
 * node whose member holds the floor tells grants, releases and revocations; the pre-empting node
 * tells the pre-emption.
 */
export type FloorEvents = {
  granted: [roomId: string, speaker: Who, sessionId: string];
  released: [roomId: string, speaker: Who, sessionId: string, heldMs: number];
  revoked: [
    roomId: string,
    speaker: Who,
    sessionId: string,
    heldMs: number,
    reason: Exclude<RevokeReason, 'preempted'>,
  ];
  preempted: [roomId: string, speaker: Who, by: Who];
};

interface Holder {
  session: Session;
  fence: number;
  since: number;
  /** Renews the speaker lock while talking. */
  lease: Lease;
  /** Revokes the floor at the channel's max talk time. */
  maxTimer: Timer;
}

/** This node's view of one PTT room's floor. The speaker lock in the state store is the truth. */
interface Floor {
  readonly roomId: string;
  holder: Holder | null;
  readonly queue: Session[];
  /** Floor operations of a room run one at a time, in arrival order. */
  chain: Promise<unknown>;
}

export type StartReply =
  | { type: 'ptt:granted'; payload: ServerPayload<'ptt:granted'> }
  | { type: 'ptt:denied'; payload: ServerPayload<'ptt:denied'> }
  | { type: 'ptt:queued'; payload: ServerPayload<'ptt:queued'> };

/**
 * Push-to-talk floor control (SPEC §5): one speaker per room through the state store's speaker
 * lock (fenced, TTL, renewed while talking), max talk time, an optional request queue, and
 * priority pre-emption. The media plane follows the floor: the holder's producer is resumed and
 * switched into the room's floor producer; everyone else's stays paused.
 */
export interface FloorControlOptions {
  store: StateStore;
  rooms: RoomFanout;
  media: FloorMedia;
  catalog: ChannelResolver;
  config: PttConfig;
  log: Logger;
  cluster?: ClusterLink | null;
  clock?: Clock;
}

export class FloorControl {
  readonly #store: StateStore;
  readonly #rooms: RoomFanout;
  readonly #media: FloorMedia;
  readonly #catalog: ChannelResolver;
  readonly #config: PttConfig;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #floors = new Map<string, Floor>();
  readonly #cluster: ClusterLink | null;
  #closed = false;
  readonly hooks: Hooks<FloorEvents>;

  constructor(deps: FloorControlOptions) {
    this.hooks = new Hooks('floor', deps.log);
    this.#store = deps.store;
    this.#rooms = deps.rooms;
    this.#media = deps.media;
    this.#catalog = deps.catalog;
    this.#config = deps.config;
    this.#log = deps.log;
    this.#cluster = deps.cluster ?? null;
    this.#clock = deps.clock ?? systemClock;
  }

  /** Bus: pre-empted from another node. Stand our holder down now rather than at its next renewal. */
  readonly onRemotePreemption = (
    roomId: string,
    fence: number,
    by: { userId: string; name: string },
  ): void => {
    if (!this.#floors.has(roomId)) return;
    this.#serialQuietly(roomId, async (f) => {
      if (f.holder && f.holder.fence < fence) {
        const held = f.holder;
        const tell = await this.#revokeLocal(f, { ...holderOf(held), fence: held.fence }, 'preempted', by);
        tell();
      }
    });
  };

  /**
   * After a Redis outage: floor changes could not cross nodes meanwhile, so tell this node's
   * members of each ptt room who speaks now.
   */
  async announceCurrent(roomIds: Iterable<string>): Promise<void> {
    for (const roomId of roomIds) {
      if (this.#catalog.resolve(roomId)?.mode !== 'ptt') continue;
      const lock = await this.#store.currentSpeaker(roomId).catch(() => null);
      this.#rooms.deliverLocal(roomId, speakerChanged(roomId, speakerOf(lock), this.#clock.now()));
    }
  }

  /** A dead node's speaker lock has had time to expire: if the floor is free now, say so. */
  async announceIfFree(roomId: string): Promise<void> {
    if (this.#closed || (await this.#store.currentSpeaker(roomId))) return;
    this.#broadcast(roomId, null);
  }

  /** True if the session holds the floor of the room on this node (used when it starts producing). */
  holds(session: Session, roomId: string): boolean {
    return this.#floors.get(roomId)?.holder?.session === session;
  }

  /**
   * `ptt:start`. `respond` receives the requester's reply before anything the request causes is
   * sent (SPEC §9: the reply goes first): the `ptt:speaker-changed` broadcast, and when it
   * pre-empts, the old speaker's `ptt:revoked`. It runs inside the room's floor chain, so no other
   * floor change of the room can slip between the reply and the broadcast.
   */
  start(session: Session, roomId: string, respond: (r: StartReply) => void = noop): Promise<StartReply> {
    const channel = this.#channel(session, roomId);
    // A listen-only token (canPublish false, or a source list without the microphone) may not take
    // the floor, nor pre-empt whoever holds it, whatever its pttPriority (issue 13, Medium 2).
    const { canPublish, publishSources } = session.identity;
    if (!canPublish || (publishSources && !publishSources.has('microphone'))) {
      throw new ParleyError('FORBIDDEN', 'your token does not grant publishing');
    }
    return this.#serial(roomId, async (floor) => {
      const answer = (r: StartReply): StartReply => {
        respond(r);
        return r;
      };
      if (floor.holder?.session === session) {
        return answer({
          type: 'ptt:granted',
          payload: { roomId, since: floor.holder.since, maxTalkMs: channel.maxTalkMs },
        });
      }
      const queued = floor.queue.indexOf(session);
      if (queued >= 0) return answer(this.#queuedReply(floor, queued + 1));

      const holder = {
        sessionId: session.id,
        userId: session.userId,
        name: session.rooms.get(roomId)?.name ?? session.identity.name,
        ...unverified(session, roomId),
        priority: session.identity.pttPriority,
        since: this.#clock.now(),
      };
      let outcome = await this.#acquire(roomId, holder);
      /** Pre-emption notices, sent after the reply. */
      let preempted: (() => void) | null = null;
      if (!outcome.granted && holder.priority > outcome.current.priority) {
        // Pre-emption: take the lock over from exactly the holder we saw (fenced).
        const previous = outcome.current;
        outcome = await this.#acquire(roomId, holder, previous.fence);
        if (outcome.granted) {
          const by = { userId: holder.userId, name: holder.name };
          this.#tell('preempted', roomId, { userId: previous.userId, name: previous.name }, by);
          const tellLocal = await this.#revokeLocal(floor, previous, 'preempted', by);
          const fence = outcome.fence;
          preempted = () => {
            tellLocal();
            // The pre-empted speaker may be on another node: tell it now, not at its next renewal.
            // Published before the speaker-changed broadcast, on the same room channel.
            background(
              this.#cluster?.bus
                .publishToRoom(roomId, { t: 'floor', roomId, fence, sessionId: session.id, by }, null)
                .catch(() => undefined),
              this.#log,
              'pre-emption notice',
            );
          };
        }
      }
      if (!outcome.granted) {
        if (channel.queue) {
          floor.queue.push(session);
          return answer(this.#queuedReply(floor, floor.queue.length, outcome.current));
        }
        return answer({
          type: 'ptt:denied',
          payload: { roomId, speaker: { userId: outcome.current.userId, name: outcome.current.name } },
        });
      }
      const reply: StartReply = {
        type: 'ptt:granted',
        payload: { roomId, since: holder.since, maxTalkMs: channel.maxTalkMs },
      };
      await this.#grant(floor, session, outcome.fence, holder.since, channel.maxTalkMs, () => {
        respond(reply);
        preempted?.();
      });
      return reply;
    });
  }

  /**
   * `ptt:stop`. `respond` receives the reply before the `ptt:speaker-changed {speaker:null}`
   * broadcast, the next queued member's grant and the queue's new positions.
   */
  stop(
    session: Session,
    roomId: string,
    respond: (r: ServerPayload<'ptt:stopped'>) => void = noop,
  ): Promise<ServerPayload<'ptt:stopped'>> {
    this.#channel(session, roomId);
    return this.#serial(roomId, async (floor) => {
      if (floor.holder?.session === session) {
        const reply = { roomId, held: true };
        await this.#release(floor, { tell: () => respond(reply) });
        return reply;
      }
      const reply = { roomId, held: false };
      respond(reply);
      this.#dequeue(floor, session);
      return reply;
    });
  }

  /**
   * Server API: takes the floor from its holder on this node (`ptt:revoked {reason:"admin"}`).
   * Returns who lost it, or null when nobody here holds it.
   */
  revoke(roomId: string): Promise<Speaker | null> {
    if (!this.#floors.has(roomId)) return Promise.resolve(null);
    return this.#serial(roomId, async (floor) => {
      const holder = floor.holder;
      if (!holder) return null;
      const s = holder.session;
      const speaker = {
        userId: s.userId,
        name: nameIn(s, roomId),
        sessionId: s.id,
        since: holder.since,
        ...unverified(s, roomId),
      };
      await this.#revoke(floor, 'admin');
      return speaker;
    });
  }

  /** Leave, or a dropped connection: release at once and leave the queue. */
  readonly onGone = (session: Session, roomId: string): Promise<void> => {
    if (!this.#floors.has(roomId)) return Promise.resolve();
    return this.#serial(roomId, async (floor) => {
      if (floor.holder?.session === session) await this.#release(floor);
      else this.#dequeue(floor, session);
    });
  };

  /**
   * Session-adopt listener (a session resumed here from another node). Hardening fix
   * (test/stress/faults.stress.ts, kill -9 under load): a speaker whose node died and who resumed
   * on another node before the survivors noticed the death was never announced off the floor: the
   * reaper only looks at sessions still on the dead node, so every member kept seeing them speak
   * after the lock had expired. A resumed session holds no floor (a dropped connection loses it):
   * release a lock it still holds (fenced, so a live old node releasing it too is harmless) and say so.
   */
  readonly onAdopted = async (session: Session): Promise<void> => {
    for (const roomId of session.rooms.keys()) {
      const lock = await this.#store.currentSpeaker(roomId).catch(() => null);
      if (lock?.sessionId !== session.id) continue;
      if (await this.#store.releaseSpeaker(roomId, lock.fence).catch(() => false))
        this.#broadcast(roomId, null);
    }
  };

  /** Session-suspend listener: a speaker whose connection dropped stops holding the floor. */
  readonly onSuspended = (session: Session): void => {
    for (const roomId of session.rooms.keys())
      background(this.onGone(session, roomId), this.#log, 'release floor');
  };

  /** The room's media went away (worker died): the speaker loses the floor. */
  readonly onMediaClosed = (roomId: string, reason: string): void => {
    if (reason === 'released' || !this.#floors.has(roomId)) return;
    this.#serialQuietly(roomId, async (floor) => {
      if (floor.holder) await this.#revoke(floor, 'media-closed');
    });
  };

  /**
   * Shutdown: stops every lease and talk timer and releases the locks this node holds (fenced).
   * Idempotent; no floor timer runs after it, and later floor operations do nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const floor of this.#floors.values()) {
      if (floor.holder) {
        this.#stopHolder(floor.holder);
        void this.#store.releaseSpeaker(floor.roomId, floor.holder.fence).catch(() => undefined);
      }
    }
    this.#floors.clear();
  }

  #stopHolder(holder: Holder): void {
    holder.lease.close();
    this.#clock.clearTimeout(holder.maxTimer);
  }

  // ---- internals -----------------------------------------------------------------------------------

  #channel(session: Session, roomId: string) {
    const channel = this.#catalog.resolve(roomId);
    if (!channel) throw new ParleyError('ROOM_NOT_FOUND');
    if (channel.mode !== 'ptt')
      throw new ParleyError('NOT_PTT_ROOM', `room "${roomId}" is a ${channel.mode} room`);
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    return { maxTalkMs: channel.maxTalkMs ?? this.#config.maxTalkMs, queue: channel.queue ?? false };
  }

  async #acquire(roomId: string, holder: Omit<HeldLock, 'fence'>, replaceFence?: number) {
    try {
      return await this.#store.acquireSpeaker(roomId, holder, this.#config.lockTtlMs, replaceFence);
    } catch (err) {
      // Without the lock there is no floor: refuse rather than risk two speakers.
      this.#log.warn({ err, roomId }, 'speaker lock unavailable');
      throw new ParleyError(
        'SERVICE_UNAVAILABLE',
        'floor control is unavailable (state backend unreachable)',
      );
    }
  }

  /**
   * Resolves once every floor change of the room under way now has run to its end: its reply sent
   * and its broadcasts made. What a change causes elsewhere (the recording of a burst it ended) is
   * announced after this, so after the reply (SPEC §9). Never rejects; resolves at once when the
   * room's floor is idle here or the floor control is closed. Do not await it inside a floor
   * operation of the same room: that operation is part of what it waits for.
   */
  settled(roomId: string): Promise<void> {
    const floor = this.#floors.get(roomId);
    if (this.#closed || !floor) return Promise.resolve();
    return floor.chain.then(noop);
  }

  /** For floor work nobody awaits (timers, bus messages): failures are logged, never thrown. */
  #serialQuietly(roomId: string, op: (floor: Floor) => Promise<void>): void {
    if (this.#closed) return;
    background(this.#serial(roomId, op), this.#log, 'floor operation');
  }

  #serial<T>(roomId: string, op: (floor: Floor) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    let floor = this.#floors.get(roomId);
    if (!floor) {
      floor = { roomId, holder: null, queue: [], chain: Promise.resolve() };
      this.#floors.set(roomId, floor);
    }
    const f = floor;
    const result = f.chain.then(() => op(f));
    const tail = result.then(noop, noop);
    f.chain = tail;
    // An idle, free floor is forgotten so that rooms used once cost nothing.
    void tail.then(() => {
      if (f.chain === tail && !f.holder && f.queue.length === 0 && this.#floors.get(roomId) === f) {
        this.#floors.delete(roomId);
      }
    });
    return result;
  }

  async #grant(
    floor: Floor,
    session: Session,
    fence: number,
    since: number,
    maxTalkMs: number,
    /** Sends `ptt:granted` (the reply, or an unsolicited grant); runs before the broadcast. */
    tell: () => void,
  ) {
    const { roomId } = floor;
    // A renewal that fails (not ours any more, or Redis unreachable) loses the floor: without the
    // lock there is no floor, and two speakers are worse than none.
    const lease = new Lease({
      clock: this.#clock,
      log: this.#log,
      what: `speaker lock of room ${roomId}`,
      intervalMs: Math.max(defaults.pttLockRenewMinMs, Math.floor(this.#config.lockTtlMs / 3)),
      renew: () => this.#store.renewSpeaker(roomId, fence, this.#config.lockTtlMs),
      lostOnError: true,
      onLost: () => this.#serialQuietly(roomId, (f) => this.#lostIfStill(f, fence)),
    }).start();
    const maxTimer = this.#clock.setTimeout(() => {
      this.#serialQuietly(roomId, async (f) => {
        if (f.holder?.fence === fence) await this.#revoke(f, 'max-duration');
      });
    }, maxTalkMs);
    maxTimer.unref();
    floor.holder = { session, fence, since, lease, maxTimer };
    this.#tell('granted', roomId, { userId: session.userId, name: nameIn(session, roomId) }, session.id);
    try {
      await this.#media.floorGranted(session, roomId);
    } catch (err) {
      this.#log.error({ err, roomId }, 'media did not follow the floor grant');
    }
    tell();
    const name = session.rooms.get(roomId)?.name ?? session.identity.name;
    this.#broadcast(roomId, {
      userId: session.userId,
      name,
      sessionId: session.id,
      since,
      ...unverified(session, roomId),
    });
    this.#log.debug({ roomId, session: session.id, fence }, 'floor granted');
  }

  async #lostIfStill(floor: Floor, fence: number): Promise<void> {
    if (floor.holder?.fence === fence) await this.#revoke(floor, 'lock-lost');
  }

  /** Takes the floor from its local holder, telling them why, then frees it for the next. */
  async #revoke(floor: Floor, reason: Exclude<RevokeReason, 'preempted'>): Promise<void> {
    const holder = floor.holder;
    if (!holder) return;
    holder.session.deliver(frame('ptt:revoked', { roomId: floor.roomId, reason }));
    await this.#release(floor, { cause: reason });
  }

  /**
   * Pre-empted: the lock already belongs to someone else; quietly stand the old local holder down.
   * Returns the `ptt:revoked` notice to send once the new speaker has its reply.
   */
  async #revokeLocal(
    floor: Floor,
    previous: HeldLock,
    reason: RevokeReason,
    by: { userId: string; name: string },
  ): Promise<() => void> {
    const holder = floor.holder;
    if (!holder || holder.fence !== previous.fence) return noop; // held on another node: it finds out at renewal
    this.#stopHolder(holder);
    floor.holder = null;
    await this.#media.floorReleased(holder.session, floor.roomId).catch((err: unknown) => {
      this.#log.error({ err }, 'media did not follow the pre-emption');
    });
    return () => holder.session.deliver(frame('ptt:revoked', { roomId: floor.roomId, reason, by }));
  }

  /**
   * Frees the floor. `tell` (a `ptt:stop` reply) runs before the broadcast and the next grant;
   * `cause` says why it was taken (null: released by its holder).
   */
  async #release(
    floor: Floor,
    {
      tell = noop,
      cause = null,
    }: { tell?: () => void; cause?: Exclude<RevokeReason, 'preempted'> | null } = {},
  ): Promise<void> {
    const holder = floor.holder;
    if (!holder) return;
    floor.holder = null;
    this.#stopHolder(holder);
    const s = holder.session;
    const who = { userId: s.userId, name: nameIn(s, floor.roomId) };
    const heldMs = this.#clock.now() - holder.since;
    if (cause === null) this.#tell('released', floor.roomId, who, s.id, heldMs);
    else this.#tell('revoked', floor.roomId, who, s.id, heldMs, cause);
    try {
      await this.#store.releaseSpeaker(floor.roomId, holder.fence);
    } catch (err) {
      // The lock expires by its TTL; nobody can renew it with our fence meanwhile.
      this.#log.warn({ err, roomId: floor.roomId }, 'speaker lock release failed; it will expire');
    }
    await this.#media.floorReleased(holder.session, floor.roomId).catch((err: unknown) => {
      this.#log.error({ err }, 'media did not follow the floor release');
    });
    tell();
    this.#broadcast(floor.roomId, null);
    this.#log.debug({ roomId: floor.roomId, session: holder.session.id }, 'floor released');
    await this.#grantNext(floor);
  }

  /** The floor is free: the first live request in the queue gets it. */
  async #grantNext(floor: Floor): Promise<void> {
    const { roomId } = floor;
    while (floor.queue.length > 0) {
      const next = floor.queue[0];
      if (next.ended || next.suspended || !next.rooms.has(roomId)) {
        floor.queue.shift();
        continue;
      }
      const channel = this.#channel(next, roomId);
      const since = this.#clock.now();
      let outcome;
      try {
        outcome = await this.#acquire(roomId, {
          sessionId: next.id,
          userId: next.userId,
          name: next.rooms.get(roomId)?.name ?? next.identity.name,
          priority: next.identity.pttPriority,
          since,
        });
      } catch {
        break; // state backend trouble: the queue waits
      }
      if (!outcome.granted) break; // someone on another node was quicker; the queue waits
      floor.queue.shift();
      const maxTalkMs = channel.maxTalkMs;
      await this.#grant(floor, next, outcome.fence, since, maxTalkMs, () =>
        next.deliver(frame('ptt:granted', { roomId, since, maxTalkMs })),
      );
      break;
    }
    this.#sendPositions(floor);
  }

  #dequeue(floor: Floor, session: Session): void {
    const i = floor.queue.indexOf(session);
    if (i < 0) return;
    floor.queue.splice(i, 1);
    this.#sendPositions(floor, i);
  }

  #sendPositions(floor: Floor, from = 0): void {
    const speaker = floor.holder
      ? { userId: floor.holder.session.userId, name: floor.holder.session.identity.name }
      : null;
    for (let i = from; i < floor.queue.length; i++) {
      floor.queue[i].deliver(frame('ptt:queued', { roomId: floor.roomId, position: i + 1, speaker }));
    }
  }

  #queuedReply(floor: Floor, position: number, current?: HeldLock): StartReply {
    const speaker = current
      ? { userId: current.userId, name: current.name }
      : floor.holder
        ? { userId: floor.holder.session.userId, name: floor.holder.session.identity.name }
        : null;
    return { type: 'ptt:queued', payload: { roomId: floor.roomId, position, speaker } };
  }

  /** Tells listeners (webhooks) without waiting on them: floor work never waits for an HTTP call. */
  #tell<K extends keyof FloorEvents>(event: K, ...args: FloorEvents[K]): void {
    background(this.hooks.emit(event, ...args), this.#log, `floor ${event} listeners`);
  }

  #broadcast(roomId: string, speaker: ServerPayload<'ptt:speaker-changed'>['speaker']): void {
    this.#rooms.broadcast(roomId, speakerChanged(roomId, speaker, this.#clock.now()));
  }
}

function noop(): void {}

function nameIn(session: Session, roomId: string): string {
  return session.rooms.get(roomId)?.name ?? session.identity.name;
}

/** `{nameVerified: false}` when the session's name in the room is its own choice, else nothing. */
function unverified(session: Session, roomId: string): { nameVerified?: false } {
  return session.rooms.get(roomId)?.nameVerified === false ? { nameVerified: false } : {};
}

function holderOf(h: Holder): Omit<HeldLock, 'fence'> {
  return {
    sessionId: h.session.id,
    userId: h.session.userId,
    name: h.session.identity.name,
    priority: h.session.identity.pttPriority,
    since: h.since,
  };
}
