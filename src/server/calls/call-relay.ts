import type {
  CallRelayType,
  ClientMessageOf,
  RoomRelayType,
  ServerMessageType,
} from '../../protocol/index.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RoomService } from '../rooms/room-service.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { Session } from '../sessions/session.js';
import type { Frame } from '../signaling/connection.js';
import type { StateStore } from '../state/state-store.js';
import { CallRegistry } from './call-registry.js';
import type { ClusterLink } from '../cluster/cluster-link.js';

/**
 * Peer-to-peer signaling relay: 1:1 calls (to every connection of a user) and in-room relay (to a
 * member of a room the sender is in). The sender is always the authenticated session; any
 * identity field in the payload is dropped by the schema and replaced here.
 */
export class CallRelay {
  readonly #sessions: SessionManager;
  readonly #rooms: RoomService;
  readonly #metrics: Metrics;
  readonly #store: StateStore;
  readonly #cluster: ClusterLink | null;
  readonly #log: Logger;
  readonly calls: CallRegistry;

  constructor(deps: {
    sessions: SessionManager;
    rooms: RoomService;
    store: StateStore;
    metrics: Metrics;
    log: Logger;
    cluster: ClusterLink | null;
  }) {
    this.#sessions = deps.sessions;
    this.#rooms = deps.rooms;
    this.#store = deps.store;
    this.#metrics = deps.metrics;
    this.#cluster = deps.cluster;
    this.#log = deps.log;
    this.calls = new CallRegistry(deps.log);
    deps.cluster?.bus.onMessage(({ header, frame: f }) => {
      if (header.t !== 'user' || !f) return;
      const targets = this.#sessions.sessionsOf(header.userId);
      if (!targets) return;
      for (const s of targets) {
        if (s.id === header.except || (header.only && !header.only.includes(s.id))) continue;
        s.deliver(f);
      }
    });
  }

  /** call:* — deliver to every session of recipientId, on any node (never back to the sending session). */
  relayCall(session: Session, msg: ClientMessageOf<CallRelayType>, receivedAt: number): void | Promise<void> {
    if (this.#cluster) return this.#relayCallAcrossNodes(this.#cluster, session, msg, receivedAt);
    const recipients = this.#sessions.sessionsOf(msg.payload.recipientId);
    const reachable = recipients !== undefined && (recipients.size > 1 || !recipients.has(session));
    this.#deliverCall(session, msg, receivedAt, reachable ? recipients : undefined, []);
  }

  async #relayCallAcrossNodes(
    cluster: ClusterLink,
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    receivedAt: number,
  ): Promise<void> {
    const { recipientId } = msg.payload;
    const records = await cluster.directory.sessionsOfUser(recipientId);
    const nodes = [...new Set(records.filter((r) => r.nodeId !== cluster.nodeId).map((r) => r.nodeId))];
    const local = this.#sessions.sessionsOf(recipientId);
    const hasLocal = local !== undefined && (local.size > 1 || !local.has(session));
    this.#deliverCall(session, msg, receivedAt, hasLocal ? local : undefined, nodes);
  }

  #deliverCall(
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    receivedAt: number,
    local: ReadonlySet<Session> | undefined,
    remoteNodes: string[],
  ): void {
    const { recipientId, ...rest } = msg.payload;
    if (!local && remoteNodes.length === 0) {
      // Trickled candidates for someone gone are noise, not an error worth a reply.
      if (msg.type === 'call:ice-candidate') return;
      if (msg.type === 'call:hangup' || msg.type === 'call:reject')
        this.calls.end(session.userId, recipientId, rest.callId);
      throw new ParleyError('RECIPIENT_OFFLINE', `user "${recipientId}" is not connected`);
    }
    this.calls.track(msg.type, session.userId, recipientId, rest.callId);
    const f = encodeRelay(msg.type, { ...rest, senderId: session.userId, senderName: session.identity.name });
    if (local) for (const s of local) if (s !== session) s.deliver(f);
    for (const nodeId of remoteNodes) {
      this.#cluster?.bus
        .publishToNode(nodeId, { t: 'user', userId: recipientId, except: session.id }, f)
        .catch((err: unknown) => this.#log.warn({ err, nodeId }, 'cross-node relay failed'));
    }
    this.#metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
  }

  /** sdp:offer / sdp:answer / ice:candidate — both sides must be members of roomId. */
  relayInRoom(
    session: Session,
    msg: ClientMessageOf<RoomRelayType>,
    receivedAt: number,
  ): void | Promise<void> {
    const { roomId, to, ...rest } = msg.payload;
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    const f = encodeRelay(msg.type, {
      ...rest,
      roomId,
      senderId: session.userId,
      senderName: session.identity.name,
    });
    let delivered = 0;
    for (const s of this.#rooms.localMembers(roomId) ?? []) {
      if (s.userId !== to || s === session) continue;
      s.deliver(f);
      delivered++;
    }
    if (delivered > 0 || !this.#cluster) {
      if (delivered === 0) throw notInRoom(roomId, to);
      this.#metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
      return;
    }
    return this.#relayInRoomAcrossNodes(this.#cluster, session, roomId, to, f, receivedAt);
  }

  async #relayInRoomAcrossNodes(
    cluster: ClusterLink,
    session: Session,
    roomId: string,
    to: string,
    f: Frame,
    receivedAt: number,
  ): Promise<void> {
    const members = new Set(
      (await this.#store.participants(roomId))
        .filter((p) => p.userId === to && p.sessionId !== session.id)
        .map((p) => p.sessionId),
    );
    const byNode = new Map<string, string[]>();
    for (const r of await cluster.directory.sessionsOfUser(to)) {
      if (!members.has(r.sessionId) || r.nodeId === cluster.nodeId) continue;
      byNode.set(r.nodeId, [...(byNode.get(r.nodeId) ?? []), r.sessionId]);
    }
    if (byNode.size === 0) throw notInRoom(roomId, to);
    for (const [nodeId, only] of byNode)
      await cluster.bus.publishToNode(nodeId, { t: 'user', userId: to, only }, f);
    this.#metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
  }

  /** Session-end listener: the other side of each of the user's calls gets a hang-up. */
  readonly onSessionEnded = async (session: Session): Promise<void> => {
    if (this.#sessions.sessionsOf(session.userId)?.size) return; // still online here
    const cluster = this.#cluster;
    if (cluster) {
      const elsewhere = await cluster.directory.sessionsOfUser(session.userId).catch(() => []);
      if (elsewhere.some((r) => r.sessionId !== session.id)) return; // still online on another node
    }
    for (const call of this.calls.endAllOf(session.userId)) {
      const f = encodeRelay('call:hangup', {
        callId: call.callId,
        senderId: session.userId,
        senderName: session.identity.name,
        reason: 'disconnected',
      });
      for (const s of this.#sessions.sessionsOf(call.peerId) ?? []) s.deliver(f);
      if (!cluster) continue;
      const nodes = new Set(
        (await cluster.directory.sessionsOfUser(call.peerId).catch(() => []))
          .map((r) => r.nodeId)
          .filter((n) => n !== cluster.nodeId),
      );
      for (const nodeId of nodes) {
        await cluster.bus.publishToNode(nodeId, { t: 'user', userId: call.peerId }, f).catch(() => undefined);
      }
    }
  };
}

function notInRoom(roomId: string, to: string): ParleyError {
  return new ParleyError('NOT_IN_ROOM', `user "${to}" is not in room "${roomId}"`, { roomId, to });
}

function encodeRelay(type: ServerMessageType, payload: Record<string, unknown>): Frame {
  // Relayed payloads were validated on the way in; the server only adds senderId/senderName.
  return { type, data: Buffer.from(JSON.stringify({ type, payload, timestamp: Date.now() })) };
}
