import type { types } from 'mediasoup';
import { TrackSource, type ClientPayload, type ServerPayload } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { MediaConfig, QuotaConfig } from '../config/env.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import type { ChannelResolver } from '../rooms/room-catalog.js';
import type { RoomFanout } from '../rooms/room-fanout.js';
import { nothingToAnnounce, type Announced } from '../wire/announced.js';
import { frame } from '../wire/frame.js';
import { systemClock, type Clock } from '../time/clock.js';
import type { ActiveSpeaker } from './active-speaker.js';
import { MediaRoom, type MediaSession, type Peer, type RouterSlot } from './media-room.js';
import type { PoolWorker, WorkerPool } from './worker-pool.js';

export type MediaClosedReason = 'worker-died' | 'shutdown' | 'released';

/** What the media service tells the rest of the server. */
export type MediaEvents = {
  /** A room's media came up on this node. */
  opened: [roomId: string];
  /** A room's media on this node was torn down (floor control revokes the floor on worker death). */
  closed: [roomId: string, reason: MediaClosedReason];
  /** PTT: the speaker's audio producer is about to go live through the floor (a recorder starts a burst). */
  floorOn: [roomId: string, session: MediaSession, producer: types.Producer, router: types.Router];
  /** PTT: the speaker's audio stops going through the floor (released, revoked, pre-empted). */
  floorOff: [roomId: string, sessionId: string];
};

/**
 * Hardening fix (test/hardening/abuse.test.ts, "one member cannot exhaust the SFU"): nothing bounded
 * what one member holds, so a single client could take RTC ports with endless transports, the whole
 * worker consumer budget by consuming the same producer over and over (CAPACITY_EXCEEDED for every
 * other listener), or fill a conference room with producers (each announced to, and consumed by,
 * everyone). mediasoup-client needs 2 transports per room, 1 consumer per producer, a few producers.
 */
const MAX_TRANSPORTS_PER_MEMBER = defaults.maxTransportsPerMember;
const MAX_PRODUCERS_PER_MEMBER = defaults.maxProducersPerMember;

/** What one user holds on this media node, across its sessions and rooms (see QuotaConfig). */
interface Holdings {
  transports: number;
  producers: number;
  consumers: number;
}
type MediaQuotas = Pick<QuotaConfig, 'maxTransportsPerUser' | 'maxProducersPerUser' | 'maxConsumersPerUser'>;

interface Owned<T> {
  room: MediaRoom;
  peer: Peer;
  obj: T;
}

/**
 * The SFU's signaling surface (SPEC §4): capabilities, transports, produce/consume, with every id
 * checked against the requesting session and its rooms. Creates a room's media on first use and
 * releases it when the room empties; tears rooms down when their worker dies.
 */
export class MediaService {
  readonly #pool: WorkerPool;
  readonly #config: MediaConfig;
  readonly #catalog: ChannelResolver;
  readonly #rooms: RoomFanout;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #media = new Map<string, Promise<MediaRoom>>();
  readonly #transports = new Map<string, Owned<types.WebRtcTransport>>();
  readonly #producers = new Map<string, Owned<types.Producer>>();
  readonly #consumers = new Map<string, Owned<types.Consumer>>();
  readonly #quotas: MediaQuotas;
  /** userId → what the user holds here, counted from the moment a creation is admitted. */
  readonly #held = new Map<string, Holdings>();
  readonly hooks: Hooks<MediaEvents>;

  constructor(deps: {
    pool: WorkerPool;
    config: MediaConfig;
    catalog: ChannelResolver;
    rooms: RoomFanout;
    log: Logger;
    /** Debounces the active speaker. Default: the system clock. */
    clock?: Clock;
    /** Per-user totals (MAX_TRANSPORTS/PRODUCERS/CONSUMERS_PER_USER). Default: defaults.ts. */
    quotas?: MediaQuotas;
  }) {
    this.#quotas = deps.quotas ?? {
      maxTransportsPerUser: defaults.maxTransportsPerUser,
      maxProducersPerUser: defaults.maxProducersPerUser,
      maxConsumersPerUser: defaults.maxConsumersPerUser,
    };
    this.#clock = deps.clock ?? systemClock;
    this.#pool = deps.pool;
    this.#config = deps.config;
    this.#catalog = deps.catalog;
    this.#rooms = deps.rooms;
    this.#log = deps.log;
    this.hooks = new Hooks('media', deps.log);
  }

  get enabled(): boolean {
    return this.#config.workers > 0;
  }

  /** Counts for /health, metrics and leak checks in tests. */
  stats() {
    return {
      rooms: this.#media.size,
      transports: this.#transports.size,
      producers: this.#producers.size,
      consumers: this.#consumers.size,
      workers: this.#pool.workers().map((w) => ({
        pid: w.pid,
        consumers: w.consumers,
        transports: w.transports,
        ports: w.ports,
      })),
    };
  }

  /** What one user holds on this node (tests and the quota checks). */
  heldBy(userId: string): Holdings {
    return { ...(this.#held.get(userId) ?? { transports: 0, producers: 0, consumers: 0 }) };
  }

  /**
   * Admits one more object of `kind` for the user, or refuses it with QUOTA_EXCEEDED. Counted at
   * once (before the awaits that create it), so concurrent requests cannot overshoot; the returned
   * function gives the place back (on failure, or when the object closes). Idempotent.
   */
  #admit(userId: string, kind: keyof Holdings): () => void {
    const limit =
      kind === 'transports'
        ? this.#quotas.maxTransportsPerUser
        : kind === 'producers'
          ? this.#quotas.maxProducersPerUser
          : this.#quotas.maxConsumersPerUser;
    let held = this.#held.get(userId);
    if ((held?.[kind] ?? 0) >= limit) {
      throw new ParleyError('QUOTA_EXCEEDED', `at most ${limit} ${kind} per user`, { quota: kind, limit });
    }
    if (!held) {
      held = { transports: 0, producers: 0, consumers: 0 };
      this.#held.set(userId, held);
    }
    held[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const h = this.#held.get(userId);
      if (!h) return;
      h[kind]--;
      if (h.transports === 0 && h.producers === 0 && h.consumers === 0) this.#held.delete(userId);
    };
  }

  async capabilities(session: MediaSession, roomId: string): Promise<ServerPayload<'media:capabilities'>> {
    const room = await this.#room(session, roomId);
    return {
      roomId,
      rtpCapabilities: room.primary.router.rtpCapabilities,
      floorProducerId: room.floor?.producer.id ?? null,
    };
  }

  async createTransport(
    session: MediaSession,
    { roomId, direction }: ClientPayload<'transport:create'>,
  ): Promise<ServerPayload<'transport:created'>> {
    if (direction === 'send' && !session.identity.canPublish) {
      throw new ParleyError('FORBIDDEN', 'your token does not grant publishing');
    }
    if (direction === 'recv' && !session.identity.canSubscribe) {
      throw new ParleyError('FORBIDDEN', 'your token does not grant subscribing');
    }
    const room = await this.#room(session, roomId);
    if ((room.peers.get(session.id)?.transports.size ?? 0) >= MAX_TRANSPORTS_PER_MEMBER) {
      throw new ParleyError(
        'TRANSPORT_ERROR',
        `at most ${MAX_TRANSPORTS_PER_MEMBER} transports per member of a room`,
      );
    }
    const releaseQuota = this.#admit(session.userId, 'transports');
    // Producers live on the primary router; receivers go wherever there is consumer budget and a port.
    let slot: RouterSlot | null;
    try {
      slot = direction === 'send' ? room.primary : await room.slotForReceiver();
    } catch (err) {
      releaseQuota();
      throw err;
    }
    if (!slot) {
      releaseQuota();
      throw new ParleyError(
        'CAPACITY_EXCEEDED',
        'every media worker is at its consumer budget or out of ports',
      );
    }
    const worker = slot.worker;
    if (!worker.hasFreePort) {
      releaseQuota();
      throw new ParleyError('CAPACITY_EXCEEDED', 'the media worker of this room has no free RTC port');
    }
    // Counted now (a port is taken) and given back when the transport closes or creation fails.
    worker.transports++;
    let portHeld = true;
    const release = () => {
      releaseQuota();
      if (portHeld) worker.transports--;
      portHeld = false;
    };
    let transport: types.WebRtcTransport;
    try {
      transport = await slot.router.createWebRtcTransport({
        listenInfos: [
          { protocol: 'udp', ip: this.#config.listenIp, ...this.#announced() },
          { protocol: 'tcp', ip: this.#config.listenIp, ...this.#announced() },
        ],
        preferUdp: true,
        appData: { sessionId: session.id, roomId, direction },
      });
    } catch (err) {
      release();
      this.#log.warn({ err, roomId }, 'createWebRtcTransport failed');
      throw new ParleyError('TRANSPORT_ERROR', 'could not create a transport');
    }
    transport.observer.once('close', release);
    if (this.#config.maxIncomingBitrate > 0) {
      try {
        await transport.setMaxIncomingBitrate(this.#config.maxIncomingBitrate);
      } catch (err) {
        this.#log.warn({ err, roomId }, 'setMaxIncomingBitrate failed');
      }
    }
    if (room.closed || !session.rooms.has(roomId) || session.ended) {
      transport.close();
      throw new ParleyError('NOT_IN_ROOM', `you are no longer in room "${roomId}"`);
    }
    const peer = room.peer(session);
    peer.transports.set(transport.id, { transport, slot, direction });
    this.#transports.set(transport.id, { room, peer, obj: transport });
    transport.observer.once('close', () => {
      peer.transports.delete(transport.id);
      this.#transports.delete(transport.id);
    });
    return {
      roomId,
      direction,
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates as unknown as Record<string, unknown>[],
      dtlsParameters: transport.dtlsParameters,
    };
  }

  /** After a recv transport is created in a conference room: announce the producers already there. */
  announceExisting(session: MediaSession, roomId: string): void {
    for (const { room, peer, obj } of this.#producers.values()) {
      if (room.roomId !== roomId || peer.session === session || room.mode !== 'conference') continue;
      session.deliver(producerNew(roomId, peer.session, obj));
    }
    // And who is speaking now, if anyone: a late joiner need not wait for the next change.
    for (const { room, peer } of this.#transports.values()) {
      if (room.roomId !== roomId || peer.session !== session) continue;
      const current = room.activeSpeaker?.current;
      if (current) session.deliver(activeSpeakerFrame(roomId, current));
      break;
    }
  }

  async connectTransport(
    session: MediaSession,
    { transportId, dtlsParameters }: ClientPayload<'transport:connect'>,
  ) {
    const { obj } = this.#own(this.#transports, transportId, session, 'TRANSPORT_ERROR', 'transport');
    try {
      await obj.connect({ dtlsParameters: dtlsParameters as types.DtlsParameters });
    } catch (err) {
      // mediasoup's text describes its internals: it goes to the log, the client gets ours.
      this.#log.warn({ err, transportId, userId: session.userId }, 'transport:connect failed');
      throw new ParleyError('TRANSPORT_ERROR', 'transport:connect failed; check the DTLS parameters');
    }
  }

  async restartIce(
    session: MediaSession,
    transportId: string,
  ): Promise<ServerPayload<'transport:ice-restarted'>> {
    const { obj } = this.#own(this.#transports, transportId, session, 'TRANSPORT_ERROR', 'transport');
    const iceParameters = await obj.restartIce();
    return { transportId, iceParameters };
  }

  async produce(
    session: MediaSession,
    { transportId, kind, rtpParameters, appData }: ClientPayload<'produce'>,
    holdsFloor: (roomId: string) => boolean,
  ): Promise<Announced<ServerPayload<'produced'>>> {
    if (!session.identity.canPublish)
      throw new ParleyError('FORBIDDEN', 'your token does not grant publishing');
    const {
      room,
      peer,
      obj: transport,
    } = this.#own(this.#transports, transportId, session, 'PRODUCE_ERROR', 'transport');
    if (peer.transports.get(transportId)?.direction !== 'send') {
      throw new ParleyError('PRODUCE_ERROR', 'produce needs a send transport');
    }
    const ptt = room.mode === 'ptt';
    if (ptt && kind !== 'audio') throw new ParleyError('PRODUCE_ERROR', 'ptt rooms carry audio only');
    checkKindMatchesCodecs(kind, rtpParameters.codecs);
    const source = sourceOf(kind, appData);
    if (!mayPublishSource(session, source)) {
      throw new ParleyError('FORBIDDEN', `your token does not grant publishing a ${source}`);
    }
    if (ptt && [...peer.producers.values()].some((p) => p.kind === 'audio')) {
      throw new ParleyError('PRODUCE_ERROR', 'one audio producer per member in a ptt room');
    }
    if (peer.producers.size >= MAX_PRODUCERS_PER_MEMBER) {
      throw new ParleyError(
        'PRODUCE_ERROR',
        `at most ${MAX_PRODUCERS_PER_MEMBER} producers per member of a room`,
      );
    }
    const cap = this.#config.maxVideoProducersPerRoom;
    if (kind === 'video' && countVideoProducers(room) + room.videoReserved >= cap) {
      throw new ParleyError('PRODUCE_ERROR', `this room already has its ${cap} video tracks`);
    }
    // In a ptt room a member's voice is off until the floor is granted.
    const paused = ptt && !holdsFloor(room.roomId);
    const releaseQuota = this.#admit(session.userId, 'producers');
    let producer: types.Producer;
    // Held from here until the producer exists (or fails), so concurrent produces cannot overshoot.
    if (kind === 'video') room.videoReserved++;
    try {
      producer = await transport.produce({
        kind,
        rtpParameters: rtpParameters as types.RtpParameters,
        paused,
        appData: { ...appData, sessionId: session.id, userId: session.userId },
      });
    } catch (err) {
      releaseQuota();
      this.#log.warn({ err, transportId, kind, userId: session.userId }, 'produce failed');
      throw new ParleyError(
        'PRODUCE_ERROR',
        'produce failed; check the RTP parameters against the router capabilities',
      );
    } finally {
      if (kind === 'video') room.videoReserved--;
    }
    peer.producers.set(producer.id, producer);
    this.#producers.set(producer.id, { room, peer, obj: producer });
    producer.observer.once('close', () => {
      releaseQuota();
      peer.producers.delete(producer.id);
      this.#producers.delete(producer.id);
      room.speechChanged(producer);
    });
    if (ptt && !paused) await room.floor?.attach(producer);
    await room.observeSpeech(producer).catch((err: unknown) => {
      this.#log.warn({ err, producerId: producer.id }, 'active speaker observer: addProducer failed');
    });
    const result = { producerId: producer.id, paused };
    if (ptt) return { result, announce: nothingToAnnounce };
    const announcement = producerNew(room.roomId, session, producer);
    return { result, announce: () => void this.#rooms.broadcast(room.roomId, announcement, session) };
  }

  async consume(
    session: MediaSession,
    { producerId, transportId, rtpCapabilities }: ClientPayload<'consume'>,
  ): Promise<ServerPayload<'consumed'>> {
    if (!session.identity.canSubscribe)
      throw new ParleyError('FORBIDDEN', 'your token does not grant subscribing');
    const { room, peer } = this.#own(this.#transports, transportId, session, 'CONSUME_ERROR', 'transport');
    const entry = peer.transports.get(transportId);
    if (entry?.direction !== 'recv') throw new ParleyError('CONSUME_ERROR', 'consume needs a recv transport');
    const isFloor = room.floor?.producer.id === producerId;
    const source = this.#producers.get(producerId);
    if (!isFloor && (!source || source.room !== room)) {
      throw new ParleyError('CONSUME_ERROR', 'unknown producer in this room');
    }
    if (!isFloor && room.mode === 'ptt' && !session.identity.admin) {
      throw new ParleyError(
        'FORBIDDEN',
        'in a ptt room, consume the floor producer (media:capabilities.floorProducerId)',
      );
    }
    if ([...peer.consumers.values()].some((c) => c.producerId === producerId && !c.closed)) {
      throw new ParleyError('CONSUME_ERROR', 'you already consume this producer');
    }
    const slot = entry.slot;
    const worker = slot.worker;
    if (worker.consumers >= this.#pool.budget) {
      throw new ParleyError(
        'CAPACITY_EXCEEDED',
        'this media worker is at its consumer budget; create a new recv transport',
      );
    }
    const video = !isFloor && source?.obj.kind === 'video';
    if (video && worker.videoConsumers >= this.#pool.videoBudget) {
      throw new ParleyError('CAPACITY_EXCEEDED', 'this media worker is at its video consumer budget');
    }
    // Reserve the place now, before the awaits below: counted only once the consumer existed,
    // concurrent consumes all passed the check and overshot the budget (bench/ scenario 5 saw 8
    // of 200 listeners admitted past a full node). Released if the consume fails.
    const releaseQuota = this.#admit(session.userId, 'consumers');
    const release = () => {
      releaseQuota();
      worker.consumers--;
      if (video) worker.videoConsumers--;
    };
    worker.consumers++;
    if (video) worker.videoConsumers++;
    let consumer: types.Consumer;
    try {
      consumer = await this.#createConsumer(room, slot, entry.transport, producerId, rtpCapabilities);
    } catch (err) {
      release();
      throw err;
    }
    peer.consumers.set(consumer.id, consumer);
    this.#consumers.set(consumer.id, { room, peer, obj: consumer });
    consumer.observer.once('close', () => {
      release();
      peer.consumers.delete(consumer.id);
      this.#consumers.delete(consumer.id);
    });
    consumer.once('producerclose', () => {
      peer.session.deliver(
        frame('consumer:closed', { consumerId: consumer.id, producerId, reason: 'producer-closed' }),
      );
      consumer.close();
    });
    return {
      consumerId: consumer.id,
      producerId,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
      producerPaused: consumer.producerPaused,
    };
  }

  /** pipeToRouter if needed, then the consumer itself (paused), on the slot's router. */
  async #createConsumer(
    room: MediaRoom,
    slot: RouterSlot,
    transport: types.WebRtcTransport,
    producerId: string,
    rtpCapabilities: unknown,
  ): Promise<types.Consumer> {
    const caps = rtpCapabilities as types.RtpCapabilities;
    try {
      await room.ensurePiped(producerId, slot);
    } catch (err) {
      this.#log.warn({ err, producerId }, 'pipeToRouter failed');
      throw new ParleyError('CONSUME_ERROR', 'producer is not available');
    }
    if (!slot.router.canConsume({ producerId, rtpCapabilities: caps })) {
      throw new ParleyError('CONSUME_ERROR', 'your RTP capabilities cannot consume this producer');
    }
    try {
      return await transport.consume({ producerId, rtpCapabilities: caps, paused: true });
    } catch (err) {
      this.#log.warn({ err, producerId }, 'consume failed');
      throw new ParleyError('CONSUME_ERROR', 'consume failed; check your RTP capabilities');
    }
  }

  async resumeConsumer(session: MediaSession, consumerId: string): Promise<void> {
    const { room, peer, obj } = this.#own(this.#consumers, consumerId, session, 'CONSUME_ERROR', 'consumer');
    // A speaker does not hear themselves through the floor producer.
    if (room.floor?.producer.id === obj.producerId && room.floor.sourceId !== null) {
      const speaking = [...peer.producers.values()].some((p) => p.id === room.floor?.sourceId);
      if (speaking) return;
    }
    await obj.resume();
  }

  /** Pauses one of the session's consumers (e.g. a hidden video tile); consumer:resume undoes it. */
  async pauseConsumer(session: MediaSession, consumerId: string): Promise<ServerPayload<'consumer:paused'>> {
    const { obj } = this.#own(this.#consumers, consumerId, session, 'CONSUME_ERROR', 'consumer');
    await obj.pause();
    return { consumerId };
  }

  /** The simulcast/SVC layers one of the session's video consumers should receive. */
  async setPreferredLayers(
    session: MediaSession,
    { consumerId, spatialLayer, temporalLayer }: ClientPayload<'consumer:set-preferred-layers'>,
  ): Promise<ServerPayload<'consumer:preferred-layers-set'>> {
    const { obj } = this.#own(this.#consumers, consumerId, session, 'CONSUME_ERROR', 'consumer');
    if (obj.kind !== 'video' || (obj.type !== 'simulcast' && obj.type !== 'svc')) {
      throw new ParleyError('CONSUME_ERROR', 'that consumer has no layers: it is not simulcast or SVC video');
    }
    try {
      await obj.setPreferredLayers({
        spatialLayer,
        ...(temporalLayer === undefined ? {} : { temporalLayer }),
      });
    } catch (err) {
      this.#log.warn({ err, consumerId }, 'setPreferredLayers failed');
      throw new ParleyError('CONSUME_ERROR', 'could not set the preferred layers');
    }
    const preferred = obj.preferredLayers;
    return {
      consumerId,
      spatialLayer: preferred?.spatialLayer ?? spatialLayer,
      temporalLayer: preferred?.temporalLayer ?? null,
    };
  }

  closeProducer(session: MediaSession, producerId: string): Announced<ServerPayload<'producer:closed'>> {
    const { room, obj } = this.#own(this.#producers, producerId, session, 'PRODUCE_ERROR', 'producer');
    obj.close();
    const result = { roomId: room.roomId, producerId };
    if (room.mode !== 'conference') return { result, announce: nothingToAnnounce };
    const closed = frame('producer:closed', result);
    return { result, announce: () => void this.#rooms.broadcast(room.roomId, closed, session) };
  }

  /** Mute: pauses one of the session's producers; the other members hear of it. Idempotent. */
  async pauseProducer(
    session: MediaSession,
    producerId: string,
  ): Promise<Announced<ServerPayload<'producer:paused'>>> {
    return this.#setPaused(session, producerId, true);
  }

  /** Unmute: resumes one of the session's producers; the other members hear of it. Idempotent. */
  async resumeProducer(
    session: MediaSession,
    producerId: string,
  ): Promise<Announced<ServerPayload<'producer:resumed'>>> {
    return this.#setPaused(session, producerId, false);
  }

  async #setPaused(session: MediaSession, producerId: string, paused: boolean) {
    const { room, obj } = this.#own(this.#producers, producerId, session, 'PRODUCE_ERROR', 'producer');
    if (room.mode === 'ptt') {
      throw new ParleyError(
        'FORBIDDEN',
        'in a ptt room the floor pauses and resumes your producer: send ptt:start / ptt:stop',
      );
    }
    const result = { roomId: room.roomId, producerId, userId: session.userId, sessionId: session.id };
    if (obj.paused === paused) return { result, announce: nothingToAnnounce }; // already so: nothing to tell
    if (paused) await obj.pause();
    else await obj.resume();
    const notice = paused ? frame('producer:paused', result) : frame('producer:resumed', result);
    return {
      result,
      announce: () => {
        this.#rooms.broadcast(room.roomId, notice, session);
        room.speechChanged(obj); // a muted speaker is no longer the active one
      },
    };
  }

  /**
   * The session's producers on this node that its grants no longer allow (a narrower token after
   * session:resume or an auth:request refresh): no publishing at all, or not that source.
   */
  producersNotAllowed(session: MediaSession): string[] {
    const out: string[] = [];
    for (const [id, { peer, obj }] of this.#producers) {
      if (peer.session.id !== session.id || obj.closed) continue;
      if (!mayPublish(session, obj.kind, obj.appData)) out.push(id);
    }
    return out;
  }

  // ---- server API -----------------------------------------------------------------------------------

  /** The producers of each member in a room whose media this node hosts; null when it hosts none. */
  async producersIn(
    roomId: string,
  ): Promise<Map<string, { producerId: string; kind: 'audio' | 'video'; paused: boolean }[]> | null> {
    const room = await this.#media.get(roomId)?.catch(() => null);
    if (!room) return null;
    const out = new Map<string, { producerId: string; kind: 'audio' | 'video'; paused: boolean }[]>();
    for (const [sessionId, peer] of room.peers) {
      const list = [...peer.producers.values()]
        .filter((p) => !p.closed)
        .map((p) => ({ producerId: p.id, kind: p.kind, paused: p.paused }));
      out.set(sessionId, list);
    }
    return out;
  }

  /**
   * Server API mute: pauses (or resumes) a user's producers in a conference room hosted here, and
   * tells every member, the user included. Returns the producers concerned; null when this node
   * does not host the room's media.
   */
  async setPausedByAdmin(
    roomId: string,
    userId: string,
    producerId: string | undefined,
    paused: boolean,
  ): Promise<string[] | null> {
    const room = await this.#media.get(roomId)?.catch(() => null);
    if (!room) return null;
    if (room.mode === 'ptt') throw new ParleyError('NOT_CONFERENCE_ROOM', `room "${roomId}" is a ptt room`);
    const done: string[] = [];
    for (const peer of room.peers.values()) {
      if (peer.session.userId !== userId) continue;
      for (const p of peer.producers.values()) {
        if (p.closed || (producerId !== undefined && p.id !== producerId)) continue;
        done.push(p.id);
        if (p.paused === paused) continue;
        if (paused) await p.pause();
        else await p.resume();
        const payload = { roomId, producerId: p.id, userId, sessionId: peer.session.id };
        this.#rooms.broadcast(
          roomId,
          paused ? frame('producer:paused', payload) : frame('producer:resumed', payload),
        );
      }
    }
    return done;
  }

  // ---- floor control hooks (PTT) ---------------------------------------------------------------------

  /** The session got the floor: its audio goes live through the floor producer; it stops hearing it. */
  async floorGranted(session: MediaSession, roomId: string): Promise<void> {
    const room = await this.#media.get(roomId);
    const peer = room?.peers.get(session.id);
    if (!room?.floor || !peer) return;
    for (const c of peer.consumers.values()) if (c.producerId === room.floor.producer.id) await c.pause();
    const producer = [...peer.producers.values()].find((p) => p.kind === 'audio');
    if (!producer) return; // signaling-only speaker: the floor is held, there is just no audio
    // Awaited (it never rejects): a recorder consumes the producer before its first packet flows.
    await this.hooks.emit('floorOn', roomId, session, producer, room.primary.router);
    await producer.resume();
    await room.floor.attach(producer);
  }

  /** The session lost or released the floor: its producer is paused and it hears the floor again. */
  async floorReleased(session: MediaSession, roomId: string): Promise<void> {
    const room = await this.#media.get(roomId);
    const peer = room?.peers.get(session.id);
    if (!room?.floor || !peer) return;
    await this.hooks.emit('floorOff', roomId, session.id);
    for (const p of peer.producers.values()) {
      if (p.closed) continue;
      if (room.floor.sourceId === p.id) room.floor.detach();
      await p.pause();
    }
    for (const c of peer.consumers.values()) {
      if (c.producerId === room.floor.producer.id && !c.closed) await c.resume();
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /** Room-leave listener: the member's transports go, and an empty room releases its routers. */
  readonly onLeft = async (session: MediaSession, roomId: string): Promise<void> => {
    const pending = this.#media.get(roomId);
    if (!pending) return;
    const room = await pending.catch(() => null);
    if (!room) return;
    room.closePeer(session.id);
    // Released once nobody here is a member and no other node's member has media in it.
    if (
      !this.#rooms.localMembers(roomId)?.size &&
      room.peers.size === 0 &&
      this.#media.get(roomId) === pending
    ) {
      this.#media.delete(roomId);
      room.close();
      this.#emitClosed(roomId, 'released');
      this.#log.debug({ roomId }, 'media room released');
    }
  };

  /**
   * Session-suspend (issue 13, High 2): a dropped session's transports (and with them its
   * producers, consumers and RTC ports) are closed at once instead of held for the grace window;
   * its membership stays. Returns whether it had any here (it is then told `media:closed` on
   * resume, and rebuilds).
   */
  releaseSuspended = async (session: MediaSession, roomId: string): Promise<boolean> => {
    const room = await this.#media.get(roomId)?.catch(() => null);
    if (!room?.peers.has(session.id)) return false;
    room.closePeer(session.id);
    return true;
  };

  /** True if this node currently hosts the room's media. */
  hosts(roomId: string): boolean {
    return this.#media.has(roomId);
  }

  close(): void {
    for (const [roomId, pending] of this.#media) {
      void pending.then(
        (room) => room.close(),
        () => undefined,
      );
      this.#emitClosed(roomId, 'shutdown');
    }
    this.#media.clear();
  }

  /**
   * A worker died (the pool's `died` hook): every room whose media used it is closed, its members
   * told `media:closed {worker-died}`; the next media request builds the room again.
   */
  readonly onWorkerDied = (worker: PoolWorker): void => {
    for (const [roomId, pending] of this.#media) {
      void pending.then(
        (room) => {
          if (!room.usesWorker(worker) || this.#media.get(roomId) !== pending) return;
          this.#media.delete(roomId);
          room.close();
          this.#log.warn({ roomId, pid: worker.pid }, 'room media closed: worker died');
          this.#rooms.broadcast(roomId, frame('media:closed', { roomId, reason: 'worker-died' }));
          this.#emitClosed(roomId, 'worker-died');
        },
        () => undefined,
      );
    }
  };

  /** The room's media, created on first use; the session must be a member. */
  #room(session: MediaSession, roomId: string): Promise<MediaRoom> {
    if (!this.enabled) throw new ParleyError('SERVICE_UNAVAILABLE', 'the SFU is disabled on this server');
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    let pending = this.#media.get(roomId);
    if (!pending) {
      const channel = this.#catalog.resolve(roomId);
      if (!channel) throw new ParleyError('ROOM_NOT_FOUND');
      pending = MediaRoom.create(roomId, channel.mode, this.#pool, this.#log, {
        clock: this.#clock,
        holdMs: this.#config.activeSpeakerHoldMs,
        intervalMs: defaults.activeSpeakerIntervalMs,
        announce: (id, speaker) => this.#announceSpeaker(id, speaker),
      });
      this.#media.set(roomId, pending);
      pending.then(
        () => background(this.hooks.emit('opened', roomId), this.#log, 'media opened'),
        () => undefined,
      );
      pending.catch((err: unknown) => {
        this.#log.error({ err, roomId }, 'media room creation failed');
        if (this.#media.get(roomId) === pending) this.#media.delete(roomId);
      });
    }
    return pending.catch(() => {
      throw new ParleyError('SERVICE_UNAVAILABLE', 'media is unavailable for this room right now');
    });
  }

  #own<T>(
    map: Map<string, Owned<T>>,
    id: string,
    session: MediaSession,
    unknownCode: 'TRANSPORT_ERROR' | 'PRODUCE_ERROR' | 'CONSUME_ERROR',
    what: string,
  ): Owned<T> {
    const owned = map.get(id);
    if (!owned) throw new ParleyError(unknownCode, `unknown ${what}`);
    if (owned.peer.session !== session) throw new ParleyError('FORBIDDEN', `that ${what} is not yours`);
    if (!session.rooms.has(owned.room.roomId))
      throw new ParleyError('FORBIDDEN', `you are not in that ${what}'s room`);
    return owned;
  }

  /**
   * room:active-speaker to every member on every node. A timer turn later: a change caused by a
   * request (a producer closed) reaches the room after that request's reply.
   */
  #announceSpeaker(roomId: string, speaker: ActiveSpeaker | null): void {
    const f = activeSpeakerFrame(roomId, speaker);
    this.#clock.setTimeout(() => {
      if (this.#media.has(roomId)) this.#rooms.broadcast(roomId, f);
    }, 0);
  }

  /** The transport behind an id, for tests that check what the SFU was told (e.g. its bitrate cap). */
  transportForTesting(transportId: string): types.WebRtcTransport | undefined {
    return this.#transports.get(transportId)?.obj;
  }

  /** The consumer behind an id, for tests that check the SFU's side (paused, preferred layers). */
  consumerForTesting(consumerId: string): types.Consumer | undefined {
    return this.#consumers.get(consumerId)?.obj;
  }

  #emitClosed(roomId: string, reason: MediaClosedReason): void {
    background(this.hooks.emit('closed', roomId, reason), this.#log, 'media closed');
  }

  #announced(): { announcedAddress?: string } {
    return this.#config.announcedAddress ? { announcedAddress: this.#config.announcedAddress } : {};
  }
}

/** `producer:new` for a producer of `owner`, with the source its publisher named, if a known one. */
function producerNew(roomId: string, owner: MediaSession, producer: types.Producer) {
  const source = TrackSource.safeParse(producer.appData.source);
  return frame('producer:new', {
    roomId,
    producerId: producer.id,
    userId: owner.userId,
    sessionId: owner.id,
    kind: producer.kind,
    ...(source.success ? { source: source.data } : {}),
  });
}

function activeSpeakerFrame(roomId: string, speaker: ActiveSpeaker | null) {
  return frame('room:active-speaker', {
    roomId,
    userId: speaker?.userId ?? null,
    sessionId: speaker?.sessionId ?? null,
    producerId: speaker?.producerId ?? null,
  });
}

/** What a produce publishes: its `appData.source` if a known one, else microphone (audio) or camera (video). */
function sourceOf(kind: 'audio' | 'video', appData: Record<string, unknown> | undefined): TrackSource {
  const named = TrackSource.safeParse(appData?.source);
  if (named.success) {
    // A microphone is audio and a camera is video; a screen may carry either.
    if ((named.data === 'microphone' && kind !== 'audio') || (named.data === 'camera' && kind !== 'video')) {
      throw new ParleyError('PRODUCE_ERROR', `a ${named.data} track cannot be ${kind}`);
    }
    return named.data;
  }
  return kind === 'audio' ? 'microphone' : 'camera';
}

/** Whether the session's grants allow a producer of this kind and `appData` (its source). */
export function mayPublish(
  session: MediaSession,
  kind: 'audio' | 'video',
  appData: Record<string, unknown> | undefined,
): boolean {
  if (!session.identity.canPublish) return false;
  const named = TrackSource.safeParse(appData?.source);
  return mayPublishSource(session, named.success ? named.data : kind === 'audio' ? 'microphone' : 'camera');
}

function mayPublishSource(session: MediaSession, source: TrackSource): boolean {
  const granted = session.identity.publishSources;
  if (granted === null || granted === undefined || session.identity.admin) return true;
  return 'has' in granted ? granted.has(source) : granted.includes(source);
}

/**
 * mediasoup accepts VP8 parameters on an audio producer (and the reverse) and only fails once RTP
 * flows: refuse a produce whose codecs are not all of its kind (`audio/opus` for audio; `video/VP8`,
 * `video/rtx`… for video).
 */
function checkKindMatchesCodecs(kind: 'audio' | 'video', codecs: readonly { mimeType: string }[]): void {
  const wrong = codecs.find((c) => !c.mimeType.toLowerCase().startsWith(`${kind}/`));
  if (wrong) {
    throw new ParleyError('PRODUCE_ERROR', `codec ${wrong.mimeType} does not match kind ${kind}`);
  }
}

function countVideoProducers(room: MediaRoom): number {
  let n = 0;
  for (const peer of room.peers.values())
    for (const p of peer.producers.values()) if (p.kind === 'video') n++;
  return n;
}
