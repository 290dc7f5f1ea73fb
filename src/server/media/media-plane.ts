import type { ClientPayload, ServerPayload } from '../../protocol/index.js';
import type { BusHeader } from '../cluster/bus.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import { background } from '../lifecycle/background.js';
import type { FloorMedia } from '../ptt/floor-media.js';
import type { RoomFanout } from '../rooms/room-fanout.js';
import type { Session } from '../sessions/session.js';
import type { RemoteUserDelivery } from '../sessions/user-delivery.js';
import { systemClock, type Clock } from '../time/clock.js';
import { nothingToAnnounce, type Announced } from '../wire/announced.js';
import { frame } from '../wire/frame.js';
import { GuestRegistry } from './guest-registry.js';
import { MediaOwnership } from './media-ownership.js';
import { MediaRpcClient } from './media-rpc-client.js';
import { MediaRpcServer } from './media-rpc-server.js';
import { mayPublish, type MediaService } from './media-service.js';

/** Where one of a session's remote media objects lives. */
interface RemoteRef {
  nodeId: string;
  roomId: string;
  /** Set for a producer: what it publishes (for a narrower token's grants). */
  produced?: { kind: 'audio' | 'video'; appData: Record<string, unknown> | undefined };
}

/** The cluster side of the plane; absent on a single node. */
interface Remote {
  cluster: ClusterLink;
  rpc: MediaRpcClient;
  server: MediaRpcServer;
  guests: GuestRegistry;
  ownership: MediaOwnership;
}

export interface MediaPlaneOptions {
  media: MediaService;
  rooms: RoomFanout;
  cluster: ClusterLink | null;
  users: RemoteUserDelivery;
  log: Logger;
  /** How long a room's media ownership claim lives without renewal. */
  ownerTtlMs: number;
  clock?: Clock;
}

/**
 * The media plane as the dispatcher and floor control see it: it routes each media request to
 * where the room's media lives. A room's media lives on one node, recorded in the cluster as its
 * owner; a client connected to another node gets transports on the owner (its announced address)
 * while its signaling is forwarded there (MediaRpcClient → MediaRpcServer). On a single node every
 * call goes straight to the local MediaService.
 */
export class MediaPlane implements FloorMedia {
  readonly #media: MediaService;
  readonly #rooms: RoomFanout;
  readonly #log: Logger;
  readonly #ownerTtlMs: number;
  readonly #remote: Remote | null;
  /** sessionId → (media object id → where it lives), for sessions of this node using remote media. */
  readonly #refs = new Map<string, Map<string, RemoteRef>>();
  /** roomId → owner node, for rooms whose media this node's sessions use remotely. */
  readonly #remoteRooms = new Map<string, string>();
  /** sessionId → rooms whose media was released when the session was suspended (told on resume). */
  readonly #releasedAtSuspension = new Map<string, Set<string>>();
  #closed = false;

  constructor(deps: MediaPlaneOptions) {
    const clock = deps.clock ?? systemClock;
    this.#media = deps.media;
    this.#rooms = deps.rooms;
    this.#log = deps.log;
    this.#ownerTtlMs = deps.ownerTtlMs;
    const cluster = deps.cluster;
    if (!cluster) {
      this.#remote = null;
      return;
    }
    const guests = new GuestRegistry(deps.users, (guest, roomId) => this.#media.onLeft(guest, roomId));
    this.#remote = {
      cluster,
      rpc: new MediaRpcClient(cluster, clock),
      server: new MediaRpcServer({ media: deps.media, cluster, guests, log: deps.log }),
      guests,
      ownership: new MediaOwnership({ cluster, log: deps.log, clock, ttlMs: deps.ownerTtlMs }),
    };
  }

  get enabled(): boolean {
    return this.#media.enabled;
  }

  /** Media came up or went away here: keep or give up the cluster's record that it lives here. */
  readonly onMediaOpened = (roomId: string): void => this.#remote?.ownership.keep(roomId);
  readonly onMediaClosed = (roomId: string): void => this.#remote?.ownership.drop(roomId);

  // ---- requests from this node's clients ---------------------------------------------------------------

  async capabilities(session: Session, roomId: string): Promise<ServerPayload<'media:capabilities'>> {
    const owner = await this.#ownerFor(session, roomId);
    if (owner === null) return this.#media.capabilities(session, roomId);
    return this.#call(owner, session, 'media:capabilities', { roomId });
  }

  async createTransport(session: Session, payload: ClientPayload<'transport:create'>) {
    const owner = await this.#ownerFor(session, payload.roomId);
    if (owner === null) {
      const created = await this.#media.createTransport(session, payload);
      return { created, announce: () => this.#media.announceExisting(session, payload.roomId) };
    }
    const created = await this.#call(owner, session, 'transport:create', payload);
    this.#remember(session, created.id, owner, payload.roomId);
    // The owner announces existing producers itself, after its reply, on the same channel.
    return { created, announce: () => undefined };
  }

  async connectTransport(session: Session, payload: ClientPayload<'transport:connect'>): Promise<void> {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.connectTransport(session, payload);
    await this.#call(ref.nodeId, session, 'transport:connect', payload);
  }

  async restartIce(session: Session, transportId: string): Promise<ServerPayload<'transport:ice-restarted'>> {
    const ref = this.#ref(session, transportId);
    if (!ref) return this.#media.restartIce(session, transportId);
    return this.#call(ref.nodeId, session, 'transport:restart-ice', { transportId });
  }

  // Requests that announce something to the room: the owner node announces it itself, after its
  // reply (MediaRpcServer), so a forwarded one has nothing left to announce here.

  async produce(
    session: Session,
    payload: ClientPayload<'produce'>,
    holds: (roomId: string) => boolean,
  ): Promise<Announced<ServerPayload<'produced'>>> {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.produce(session, payload, holds);
    const produced = await this.#call(ref.nodeId, session, 'produce', payload, holds(ref.roomId));
    this.#remember(session, produced.producerId, ref.nodeId, ref.roomId, {
      kind: payload.kind,
      appData: payload.appData,
    });
    return { result: produced, announce: nothingToAnnounce };
  }

  async consume(session: Session, payload: ClientPayload<'consume'>): Promise<ServerPayload<'consumed'>> {
    const ref = this.#ref(session, payload.transportId);
    if (!ref) return this.#media.consume(session, payload);
    const consumed = await this.#call(ref.nodeId, session, 'consume', payload);
    this.#remember(session, consumed.consumerId, ref.nodeId, ref.roomId);
    return consumed;
  }

  async resumeConsumer(session: Session, consumerId: string): Promise<void> {
    const ref = this.#ref(session, consumerId);
    if (!ref) return this.#media.resumeConsumer(session, consumerId);
    await this.#call(ref.nodeId, session, 'consumer:resume', { consumerId });
  }

  async pauseConsumer(session: Session, consumerId: string): Promise<ServerPayload<'consumer:paused'>> {
    const ref = this.#ref(session, consumerId);
    if (!ref) return this.#media.pauseConsumer(session, consumerId);
    return this.#call(ref.nodeId, session, 'consumer:pause', { consumerId });
  }

  async setPreferredLayers(
    session: Session,
    payload: ClientPayload<'consumer:set-preferred-layers'>,
  ): Promise<ServerPayload<'consumer:preferred-layers-set'>> {
    const ref = this.#ref(session, payload.consumerId);
    if (!ref) return this.#media.setPreferredLayers(session, payload);
    return this.#call(ref.nodeId, session, 'consumer:set-preferred-layers', payload);
  }

  async closeProducer(
    session: Session,
    producerId: string,
  ): Promise<Announced<ServerPayload<'producer:closed'>>> {
    const ref = this.#ref(session, producerId);
    if (!ref) return this.#media.closeProducer(session, producerId);
    const result = await this.#call(ref.nodeId, session, 'producer:close', { producerId });
    return { result, announce: nothingToAnnounce };
  }

  async pauseProducer(
    session: Session,
    producerId: string,
  ): Promise<Announced<ServerPayload<'producer:paused'>>> {
    const ref = this.#ref(session, producerId);
    if (!ref) return this.#media.pauseProducer(session, producerId);
    const result = await this.#call(ref.nodeId, session, 'producer:pause', { producerId });
    return { result, announce: nothingToAnnounce };
  }

  async resumeProducer(
    session: Session,
    producerId: string,
  ): Promise<Announced<ServerPayload<'producer:resumed'>>> {
    const ref = this.#ref(session, producerId);
    if (!ref) return this.#media.resumeProducer(session, producerId);
    const result = await this.#call(ref.nodeId, session, 'producer:resume', { producerId });
    return { result, announce: nothingToAnnounce };
  }

  /**
   * Grants hold for the whole session: closes the session's producers, here or on a room's owner
   * node, that its identity (a narrower token after a resume or a refresh) no longer allows, and
   * tells the room as a producer:close would. Returns the closed producers' ids.
   */
  async withdrawPublishing(session: Session): Promise<string[]> {
    const ids = this.#media.producersNotAllowed(session);
    for (const [id, ref] of this.#refs.get(session.id) ?? []) {
      if (ref.produced && !mayPublish(session, ref.produced.kind, ref.produced.appData)) ids.push(id);
    }
    const closed: string[] = [];
    for (const id of ids) {
      try {
        const { announce } = await this.closeProducer(session, id);
        await announce();
        closed.push(id);
      } catch (err) {
        this.#log.warn(
          { err, producerId: id, session: session.id },
          'could not close a producer no longer granted',
        );
      }
    }
    return closed;
  }

  // ---- floor control (FloorMedia) ----------------------------------------------------------------------

  async floorGranted(session: Session, roomId: string): Promise<void> {
    const owner = this.#remoteRooms.get(roomId);
    if (!owner || !this.#usesRemote(session, roomId)) return this.#media.floorGranted(session, roomId);
    await this.#call(owner, session, 'floor-granted', { roomId });
  }

  async floorReleased(session: Session, roomId: string): Promise<void> {
    const owner = this.#remoteRooms.get(roomId);
    if (!owner || !this.#usesRemote(session, roomId)) return this.#media.floorReleased(session, roomId);
    await this.#call(owner, session, 'floor-released', { roomId });
  }

  // ---- bus ----------------------------------------------------------------------------------------------

  /** Bus: another node forwards a media operation for a room whose media lives here. */
  readonly onRpc = (request: Extract<BusHeader, { t: 'media-rpc' }>, from: string): void => {
    if (!this.#remote || this.#closed) return;
    background(this.#remote.server.serve(request, from), this.#log, 'serve media rpc');
  };

  /** Bus: the answer to a media operation this node forwarded. */
  readonly onReply = (reply: Extract<BusHeader, { t: 'media-reply' }>): void => {
    this.#remote?.rpc.settle(reply);
  };

  /** Bus: a session of another node left a room whose media lives here. */
  readonly onGuestLeft = (sessionId: string, roomId: string): void => {
    if (!this.#remote) return;
    background(this.#remote.guests.left(sessionId, roomId), this.#log, 'guest left');
  };

  // ---- lifecycle ----------------------------------------------------------------------------------------

  /**
   * Session-suspend listener (issue 13, High 2): a dropped session holds no transports (RTC ports)
   * through the grace window. Its media in every room, here or on the room's owner node, is closed;
   * its memberships stay. On resume it is told `media:closed {reason: "suspended"}` for those rooms,
   * and the SDK rebuilds them as after any media loss.
   */
  readonly onSuspended = async (session: Session): Promise<void> => {
    for (const roomId of [...session.rooms.keys()]) {
      const local = await this.#media.releaseSuspended(session, roomId);
      const remote = await this.#releaseRemote(session, roomId);
      if (!local && !remote) continue;
      let rooms = this.#releasedAtSuspension.get(session.id);
      if (!rooms) {
        rooms = new Set();
        this.#releasedAtSuspension.set(session.id, rooms);
      }
      rooms.add(roomId);
    }
  };

  /** Session-resume listener: the rooms whose media went at suspension are told so, to rebuild it. */
  readonly onResumed = (session: Session): void => {
    const rooms = this.#releasedAtSuspension.get(session.id);
    if (!rooms) return;
    this.#releasedAtSuspension.delete(session.id);
    for (const roomId of rooms) {
      if (session.rooms.has(roomId)) session.deliver(frame('media:closed', { roomId, reason: 'suspended' }));
    }
  };

  /** Room-leave listener: local media goes; remote media is released on its owner. */
  readonly onLeft = async (session: Session, roomId: string): Promise<void> => {
    const released = this.#releasedAtSuspension.get(session.id);
    released?.delete(roomId);
    if (released?.size === 0) this.#releasedAtSuspension.delete(session.id);
    await this.#media.onLeft(session, roomId);
    await this.#releaseRemote(session, roomId);
  };

  /** Releases the session's media in `roomId` on the room's owner node; false if it had none there. */
  async #releaseRemote(session: Session, roomId: string): Promise<boolean> {
    const refs = this.#refs.get(session.id);
    if (!refs || !this.#remote) return false;
    let owner: string | null = null;
    for (const [id, ref] of refs) {
      if (ref.roomId !== roomId) continue;
      owner = ref.nodeId;
      refs.delete(id);
    }
    if (refs.size === 0) this.#refs.delete(session.id);
    if (!owner) return false;
    await this.#remote.cluster.bus
      .publishToNode(owner, { t: 'media-left', sessionId: session.id, roomId }, null)
      .catch((err: unknown) => this.#log.warn({ err, owner }, 'could not release remote media'));
    return true;
  }

  /** A node died: rooms whose media it hosted are gone for our clients; its guests here too. */
  readonly onNodeDead = (nodeId: string): void => {
    for (const [roomId, owner] of this.#remoteRooms) {
      if (owner !== nodeId) continue;
      this.#remoteRooms.delete(roomId);
      const f = frame('media:closed', { roomId, reason: 'node-died' });
      for (const [sessionId, refs] of this.#refs) {
        let used = false;
        for (const [id, ref] of refs) {
          if (ref.roomId !== roomId) continue;
          refs.delete(id);
          used = true;
        }
        if (refs.size === 0) this.#refs.delete(sessionId);
        if (used)
          for (const s of this.#rooms.localMembers(roomId) ?? []) if (s.id === sessionId) s.deliver(f);
      }
    }
    for (const guest of this.#remote?.guests.homedOn(nodeId) ?? []) {
      for (const roomId of guest.rooms) this.onGuestLeft(guest.id, roomId);
    }
  };

  /** Shutdown: forwarded calls fail, ownership claims stop renewing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#remote?.ownership.close();
    this.#remote?.rpc.close();
  }

  // ---- internals ----------------------------------------------------------------------------------------

  /** null: the media is (or will be) here. Otherwise the owner node to forward to. */
  async #ownerFor(session: Session, roomId: string): Promise<string | null> {
    const remote = this.#remote;
    if (!remote || !this.#media.enabled) return null;
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    if (this.#media.hosts(roomId)) return null;
    const { directory, nodeId } = remote.cluster;
    const owner = await directory.claimMediaOwner(roomId, nodeId, this.#ownerTtlMs);
    if (owner === nodeId) {
      this.#remoteRooms.delete(roomId);
      return null;
    }
    this.#remoteRooms.set(roomId, owner);
    return owner;
  }

  /** Forwards to the owner node. Only reached with a remote ref or owner, which needs a cluster. */
  get #call(): MediaRpcClient['call'] {
    const rpc = this.#remote?.rpc;
    if (!rpc) throw new Error('media plane: a remote media call without a cluster');
    return rpc.call;
  }

  #ref(session: Session, id: string): RemoteRef | undefined {
    return this.#refs.get(session.id)?.get(id);
  }

  #usesRemote(session: Session, roomId: string): boolean {
    for (const ref of this.#refs.get(session.id)?.values() ?? []) if (ref.roomId === roomId) return true;
    return false;
  }

  #remember(
    session: Session,
    id: string,
    nodeId: string,
    roomId: string,
    produced?: RemoteRef['produced'],
  ): void {
    let refs = this.#refs.get(session.id);
    if (!refs) {
      refs = new Map();
      this.#refs.set(session.id, refs);
    }
    refs.set(id, produced ? { nodeId, roomId, produced } : { nodeId, roomId });
  }
}
