import { randomUUID } from 'node:crypto';
import { isErrorCode, type ClientPayload, type ServerPayload } from '../../protocol/index.js';
import type { BusHeader, MediaOp, RemoteSessionInfo } from '../cluster/bus.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RoomService } from '../rooms/room-service.js';
import type { Session } from '../sessions/session.js';
import { frame } from '../signaling/connection.js';
import type { MediaService } from './media-service.js';
import { background } from '../lifecycle/background.js';
import { RemoteSession } from './remote-session.js';

const RPC_TIMEOUT_MS = 5_000;

/** Where one of a session's remote media objects lives. */
interface RemoteRef {
  nodeId: string;
  roomId: string;
}

/**
 * The media plane as the dispatcher and floor control see it. A room's media lives on one node,
 * recorded in the cluster as its owner; a client connected to another node gets transports on the
 * owner (its announced address) while its signaling is relayed there over the bus. On a single
 * node (no cluster) every call goes straight to the local MediaService.
 */
export class MediaPlane {
  readonly #media: MediaService;
  readonly #rooms: RoomService;
  readonly #cluster: ClusterLink | null;
  readonly #log: Logger;
  readonly #ownerTtlMs: number;
  /** sessionId → (media object id → where it lives), for sessions of this node using remote media. */
  readonly #remote = new Map<string, Map<string, RemoteRef>>();
  /** roomId → owner node, for rooms whose media this node's sessions use remotely. */
  readonly #remoteRooms = new Map<string, string>();
  readonly #pending = new Map<
    string,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  /** Stand-ins for other nodes' sessions using media hosted here. */
  readonly #guests = new Map<string, RemoteSession>();
  readonly #renewals = new Map<string, NodeJS.Timeout>();

  constructor(deps: {
    media: MediaService;
    rooms: RoomService;
    cluster: ClusterLink | null;
    log: Logger;
    ownerTtlMs: number;
  }) {
    this.#media = deps.media;
    this.#rooms = deps.rooms;
    this.#cluster = deps.cluster;
    this.#log = deps.log;
    this.#ownerTtlMs = deps.ownerTtlMs;
    const cluster = deps.cluster;
    if (!cluster) return;
    this.#media.onMediaOpened((roomId) => this.#keepOwnership(cluster, roomId));
    this.#media.onMediaClosed((roomId) => this.#dropOwnership(cluster, roomId));
    cluster.bus.onMessage(({ header, from }) => {
      if (header.t === 'media-rpc')
        background(this.#serve(cluster, header, from), this.#log, 'serve media rpc');
      else if (header.t === 'media-reply') this.#settle(header);
      else if (header.t === 'media-left')
        background(this.#guestLeft(header.sessionId, header.roomId), this.#log, 'guest left');
    });
  }

  get enabled(): boolean {
    return this.#media.enabled;
  }

  // ---- requests from this node's clients ---------------------------------------------------------------

  async capabilities(session: Session, roomId: string): Promise<ServerPayload<'media:capabilities'>> {
    const owner = await this.#ownerFor(session, roomId);
    if (owner === null) return this.#media.capabilities(session, roomId);
    return (await this.#rpc(owner, session, 'media:capabilities', {
      roomId,
    })) as ServerPayload<'media:capabilities'>;
  }

  async createTransport(session: Session, payload: ClientPayload<'transport:create'>) {
    const owner = await this.#ownerFor(session, payload.roomId);
    if (owner === null) {
      const created = await this.#media.createTransport(session, payload);
      return { created, announce: () => this.#media.announceExisting(session, payload.roomId) };
    }
    const created = (await this.#rpc(
      owner,
      session,
      'transport:create',
      payload,
    )) as ServerPayload<'transport:created'>;
    this.#remember(session, created.id, owner, payload.roomId);
    // The owner announces existing producers itself, after its reply, on the same channel.
    return { created, announce: () => undefined };
  }

  async connectTransport(session: Session, payload: ClientPayload<'transport:connect'>): Promise<void> {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.connectTransport(session, payload);
    await this.#rpc(ref.nodeId, session, 'transport:connect', payload);
  }

  async restartIce(session: Session, transportId: string): Promise<ServerPayload<'transport:ice-restarted'>> {
    const ref = this.#ref(session, transportId);
    if (!ref) return this.#media.restartIce(session, transportId);
    return (await this.#rpc(ref.nodeId, session, 'transport:restart-ice', {
      transportId,
    })) as ServerPayload<'transport:ice-restarted'>;
  }

  async produce(session: Session, payload: ClientPayload<'produce'>, holds: (roomId: string) => boolean) {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.produce(session, payload, holds);
    const produced = (await this.#rpc(
      ref.nodeId,
      session,
      'produce',
      payload,
      holds(ref.roomId),
    )) as ServerPayload<'produced'>;
    this.#remember(session, produced.producerId, ref.nodeId, ref.roomId);
    return produced;
  }

  async consume(session: Session, payload: ClientPayload<'consume'>): Promise<ServerPayload<'consumed'>> {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.consume(session, payload);
    const consumed = (await this.#rpc(ref.nodeId, session, 'consume', payload)) as ServerPayload<'consumed'>;
    this.#remember(session, consumed.consumerId, ref.nodeId, ref.roomId);
    return consumed;
  }

  async resumeConsumer(session: Session, consumerId: string): Promise<void> {
    const ref = this.#ref(session, consumerId);
    if (!ref) return this.#media.resumeConsumer(session, consumerId);
    await this.#rpc(ref.nodeId, session, 'consumer:resume', { consumerId });
  }

  async closeProducer(session: Session, producerId: string): Promise<ServerPayload<'producer:closed'>> {
    const ref = this.#ref(session, producerId);
    if (!ref) return this.#media.closeProducer(session, producerId);
    return (await this.#rpc(ref.nodeId, session, 'producer:close', {
      producerId,
    })) as ServerPayload<'producer:closed'>;
  }

  // ---- floor control ----------------------------------------------------------------------------------

  floorGranted(session: Session, roomId: string): Promise<void> {
    const owner = this.#remoteRooms.get(roomId);
    if (!owner || !this.#usesRemote(session, roomId)) return this.#media.floorGranted(session, roomId);
    return this.#rpc(owner, session, 'floor-granted', { roomId }).then(() => undefined);
  }

  floorReleased(session: Session, roomId: string): Promise<void> {
    const owner = this.#remoteRooms.get(roomId);
    if (!owner || !this.#usesRemote(session, roomId)) return this.#media.floorReleased(session, roomId);
    return this.#rpc(owner, session, 'floor-released', { roomId }).then(() => undefined);
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------

  /** Room-leave listener: local media goes; remote media is released on its owner. */
  readonly onLeft = async (session: Session, roomId: string): Promise<void> => {
    await this.#media.onLeft(session, roomId);
    const refs = this.#remote.get(session.id);
    if (!refs || !this.#cluster) return;
    let owner: string | null = null;
    for (const [id, ref] of refs) {
      if (ref.roomId !== roomId) continue;
      owner = ref.nodeId;
      refs.delete(id);
    }
    if (refs.size === 0) this.#remote.delete(session.id);
    if (owner) {
      await this.#cluster.bus
        .publishToNode(owner, { t: 'media-left', sessionId: session.id, roomId }, null)
        .catch((err: unknown) => this.#log.warn({ err, owner }, 'could not release remote media'));
    }
  };

  /** A node died: rooms whose media it hosted are gone for our clients; its guests here too. */
  readonly onNodeDead = (nodeId: string): void => {
    for (const [roomId, owner] of this.#remoteRooms) {
      if (owner !== nodeId) continue;
      this.#remoteRooms.delete(roomId);
      const f = frame('media:closed', { roomId, reason: 'node-died' });
      for (const [sessionId, refs] of this.#remote) {
        let used = false;
        for (const [id, ref] of refs) {
          if (ref.roomId !== roomId) continue;
          refs.delete(id);
          used = true;
        }
        if (refs.size === 0) this.#remote.delete(sessionId);
        if (used)
          for (const s of this.#rooms.localMembers(roomId) ?? []) if (s.id === sessionId) s.deliver(f);
      }
    }
    for (const guest of [...this.#guests.values()]) {
      if (guest.home !== nodeId) continue;
      for (const roomId of guest.rooms)
        background(this.#guestLeft(guest.id, roomId), this.#log, 'guest left');
    }
  };

  close(): void {
    for (const t of this.#renewals.values()) clearInterval(t);
    this.#renewals.clear();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    }
    this.#pending.clear();
  }

  // ---- internals: routing -------------------------------------------------------------------------------

  /** null: the media is (or will be) here. Otherwise the owner node to forward to. */
  async #ownerFor(session: Session, roomId: string): Promise<string | null> {
    const cluster = this.#cluster;
    if (!cluster || !this.#media.enabled) return null;
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    if (this.#media.hosts(roomId)) return null;
    const owner = await cluster.directory.claimMediaOwner(roomId, cluster.nodeId, this.#ownerTtlMs);
    if (owner === cluster.nodeId) {
      this.#remoteRooms.delete(roomId);
      return null;
    }
    this.#remoteRooms.set(roomId, owner);
    return owner;
  }

  #ref(session: Session, id: string): RemoteRef | undefined {
    return this.#remote.get(session.id)?.get(id);
  }

  #usesRemote(session: Session, roomId: string): boolean {
    for (const ref of this.#remote.get(session.id)?.values() ?? []) if (ref.roomId === roomId) return true;
    return false;
  }

  #remember(session: Session, id: string, nodeId: string, roomId: string): void {
    let refs = this.#remote.get(session.id);
    if (!refs) {
      refs = new Map();
      this.#remote.set(session.id, refs);
    }
    refs.set(id, { nodeId, roomId });
  }

  #rpc(
    nodeId: string,
    session: Session,
    op: MediaOp,
    payload: unknown,
    holdsFloor?: boolean,
  ): Promise<unknown> {
    const cluster = this.#cluster;
    if (!cluster) return Promise.reject(new Error('no cluster'));
    const id = randomUUID();
    const info: RemoteSessionInfo = {
      id: session.id,
      userId: session.userId,
      identity: {
        canPublish: session.identity.canPublish,
        canSubscribe: session.identity.canSubscribe,
        admin: session.identity.admin,
      },
      rooms: [...session.rooms.keys()],
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ParleyError('SERVICE_UNAVAILABLE', 'the node hosting this room’s media did not answer'));
      }, RPC_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      const header = {
        t: 'media-rpc' as const,
        id,
        replyTo: cluster.nodeId,
        session: info,
        op,
        payload,
        ...(holdsFloor === undefined ? {} : { holdsFloor }),
      };
      cluster.bus.publishToNode(nodeId, header, null).catch((err: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(
          err instanceof ParleyError ? err : new ParleyError('SERVICE_UNAVAILABLE', 'media node unreachable'),
        );
      });
    });
  }

  #settle(header: { id: string; ok: boolean; result?: unknown; code?: string; message?: string }): void {
    const p = this.#pending.get(header.id);
    if (!p) return;
    this.#pending.delete(header.id);
    clearTimeout(p.timer);
    if (header.ok) p.resolve(header.result);
    else
      p.reject(
        new ParleyError(header.code && isErrorCode(header.code) ? header.code : 'INTERNAL', header.message),
      );
  }

  // ---- internals: serving other nodes (this node hosts the room's media) --------------------------------

  async #serve(cluster: ClusterLink, h: Extract<BusHeader, { t: 'media-rpc' }>, from: string): Promise<void> {
    let guest = this.#guests.get(h.session.id);
    if (guest) guest.update(h.session, from);
    else {
      guest = new RemoteSession(h.session, from, cluster.bus, this.#log);
      this.#guests.set(guest.id, guest);
    }
    const reply = (body: { ok: true; result: unknown } | { ok: false; code: string; message: string }) =>
      cluster.bus
        .publishToNode(h.replyTo, { t: 'media-reply', id: h.id, ...body }, null)
        .catch(() => undefined);
    let after: (() => void) | null = null;
    try {
      const p = h.payload as Record<string, string>;
      let result: unknown;
      switch (h.op) {
        case 'media:capabilities':
          result = await this.#media.capabilities(guest, p.roomId);
          break;
        case 'transport:create': {
          const payload = h.payload as ClientPayload<'transport:create'>;
          result = await this.#media.createTransport(guest, payload);
          const g = guest;
          if (payload.direction === 'recv') after = () => this.#media.announceExisting(g, payload.roomId);
          break;
        }
        case 'transport:connect':
          result = await this.#media.connectTransport(guest, h.payload as ClientPayload<'transport:connect'>);
          break;
        case 'transport:restart-ice':
          result = await this.#media.restartIce(guest, p.transportId);
          break;
        case 'produce':
          result = await this.#media.produce(
            guest,
            h.payload as ClientPayload<'produce'>,
            () => h.holdsFloor ?? false,
          );
          break;
        case 'consume':
          result = await this.#media.consume(guest, h.payload as ClientPayload<'consume'>);
          break;
        case 'consumer:resume':
          result = await this.#media.resumeConsumer(guest, p.consumerId);
          break;
        case 'producer:close':
          result = this.#media.closeProducer(guest, p.producerId);
          break;
        case 'floor-granted':
          result = await this.#media.floorGranted(guest, p.roomId);
          break;
        case 'floor-released':
          result = await this.#media.floorReleased(guest, p.roomId);
          break;
      }
      await reply({ ok: true, result: result ?? null });
      after?.();
    } catch (err) {
      if (err instanceof ParleyError) await reply({ ok: false, code: err.code, message: err.message });
      else {
        this.#log.error({ err, op: h.op }, 'remote media operation failed');
        await reply({ ok: false, code: 'INTERNAL', message: 'internal error' });
      }
    }
  }

  async #guestLeft(sessionId: string, roomId: string): Promise<void> {
    const guest = this.#guests.get(sessionId);
    if (!guest) return;
    guest.rooms.delete(roomId);
    await this.#media.onLeft(guest, roomId);
    if (guest.rooms.size === 0) {
      guest.ended = true;
      this.#guests.delete(sessionId);
    }
  }

  #keepOwnership(cluster: ClusterLink, roomId: string): void {
    if (this.#renewals.has(roomId)) return;
    const claim = () =>
      cluster.directory.claimMediaOwner(roomId, cluster.nodeId, this.#ownerTtlMs).catch((err: unknown) => {
        this.#log.warn({ err, roomId }, 'could not refresh media ownership');
        return cluster.nodeId;
      });
    void claim();
    const timer = setInterval(() => void claim(), Math.max(200, Math.floor(this.#ownerTtlMs / 3)));
    timer.unref();
    this.#renewals.set(roomId, timer);
  }

  #dropOwnership(cluster: ClusterLink, roomId: string): void {
    const timer = this.#renewals.get(roomId);
    if (timer) clearInterval(timer);
    this.#renewals.delete(roomId);
    cluster.directory.releaseMediaOwner(roomId, cluster.nodeId).catch(() => undefined);
  }
}
