import {
  ADMIN_MESSAGE_MAX_BYTES,
  type AdminCall,
  type AdminInput,
  type AdminOperation,
  type AdminParticipant,
  type AdminProducer,
  type AdminResponse,
  type AdminRoom,
} from '../../protocol/index.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import { callClaimKey, type CallRelay } from '../calls/call-relay.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import type { AuthConfig } from '../config/env.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MediaService } from '../media/media-service.js';
import type { FloorControl } from '../ptt/floor-control.js';
import type { RoomService } from '../rooms/room-service.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { UserDelivery } from '../sessions/user-delivery.js';
import type { StateStore } from '../state/state-store.js';
import type { Clock } from '../time/clock.js';
import { frame } from '../wire/frame.js';
import type { AdminOpHandlers } from './admin-ops.js';
import { AdminRpc } from './admin-rpc.js';

export interface AdminServiceDeps {
  sessions: SessionManager;
  rooms: RoomService;
  floor: FloorControl;
  media: MediaService;
  relay: CallRelay;
  users: UserDelivery;
  store: StateStore;
  cluster: ClusterLink | null;
  /** This node's id (NODE_ID). */
  nodeId: string;
  /** Signs minted tokens; null when the server verifies RS256/ES256 (it has no private key). */
  issuer: TokenIssuer | null;
  auth: AuthConfig;
  clock: Clock;
  log: Logger;
}

/** One handler per server API operation: an operation in ADMIN_API without one does not compile. */
export type AdminHandlers = {
  [K in AdminOperation]: (input: AdminInput<K>) => Promise<AdminResponse<K>>;
};

/**
 * The server API's behaviour (docs/server-api.md): each operation reads shared state and runs
 * what must happen on the node that can do it (where a session lives, where a room's media is,
 * every node for a room's end) through AdminRpc.
 */
export class AdminService {
  readonly #d: AdminServiceDeps;
  readonly rpc: AdminRpc;
  readonly handlers: AdminHandlers;

  constructor(deps: AdminServiceDeps) {
    this.#d = deps;
    this.rpc = new AdminRpc({
      cluster: deps.cluster,
      local: this.#localOps(),
      clock: deps.clock,
      log: deps.log,
    });
    this.handlers = {
      listRooms: async () => {
        const ids = (await deps.rooms.roomIds()).sort();
        const rooms = await Promise.all(ids.map((id) => this.#room(id)));
        return { rooms: rooms.filter((r): r is AdminRoom => r !== null) };
      },
      getRoom: async ({ params: { roomId } }) => {
        const room = await this.#existing(roomId);
        const [members, media] = await Promise.all([
          deps.rooms.participants(roomId),
          this.rpc.everywhere('room-media', { roomId }),
        ]);
        const producers = new Map<string, AdminProducer[]>();
        for (const r of media)
          for (const [sid, list] of Object.entries(r.producers)) producers.set(sid, list);
        const participants: AdminParticipant[] = await Promise.all(
          members.map(async (p) => {
            const own = producers.get(p.sessionId) ?? [];
            return {
              ...p,
              node: await this.#nodeOf(p.sessionId),
              producers: own,
              muted: own.length > 0 && own.every((x) => x.paused),
            };
          }),
        );
        return { room: { ...room, members: participants.length }, participants };
      },
      endRoom: async ({ params: { roomId } }) => {
        await this.#existing(roomId);
        const results = await this.rpc.everywhere('end-room', { roomId, reason: 'ended by the server API' });
        const purged = await deps.rooms.purge(roomId);
        return { roomId, removed: results.reduce((n, r) => n + r.removed, purged) };
      },
      removeParticipant: async ({ params: { roomId, userId } }) => {
        await this.#existing(roomId);
        const members = (await deps.rooms.participants(roomId)).filter((p) => p.userId === userId);
        if (members.length === 0) throw notInRoom(roomId, userId);
        const byNode = new Map<string | null, string[]>();
        for (const m of members) {
          const node = await this.#nodeOf(m.sessionId);
          byNode.set(node, [...(byNode.get(node) ?? []), m.sessionId]);
        }
        const removed = await Promise.all(
          [...byNode].map(([node, sessionIds]) => this.rpc.call(node, 'remove', { roomId, sessionIds })),
        );
        return { roomId, userId, sessions: removed.flatMap((r) => r.sessions) };
      },
      muteParticipant: async ({ params: { roomId, userId }, body }) => {
        const room = await this.#existing(roomId);
        if (room.mode !== 'conference') {
          throw new ParleyError(
            'NOT_CONFERENCE_ROOM',
            `room "${roomId}" is a ptt room: revoke the floor instead`,
          );
        }
        const members = (await deps.rooms.participants(roomId)).filter((p) => p.userId === userId);
        if (members.length === 0) throw notInRoom(roomId, userId);
        const results = await this.rpc.everywhere('mute', {
          roomId,
          userId,
          muted: body.muted,
          ...(body.producerId === undefined ? {} : { producerId: body.producerId }),
        });
        const producers = results.flatMap((r) => r.producers);
        if (body.producerId !== undefined && producers.length === 0) {
          throw new ParleyError(
            'NOT_FOUND',
            `user "${userId}" has no producer "${body.producerId}" in room "${roomId}"`,
          );
        }
        return { roomId, userId, muted: body.muted, producers };
      },
      revokeFloor: async ({ params: { roomId } }) => {
        const room = await this.#existing(roomId);
        if (room.mode !== 'ptt')
          throw new ParleyError('NOT_PTT_ROOM', `room "${roomId}" is a conference room`);
        const lock = await deps.store.currentSpeaker(roomId);
        if (!lock) return { roomId, revoked: null };
        const { revoked } = await this.rpc.call(await this.#nodeOf(lock.sessionId), 'revoke-floor', {
          roomId,
        });
        return { roomId, revoked };
      },
      sendRoomMessage: async ({ params: { roomId }, body }) => {
        await this.#existing(roomId);
        checkSize(body.data);
        const f = frame('room:message', {
          roomId,
          data: body.data,
          sentAt: deps.clock.now(),
          ...(body.topic === undefined ? {} : { topic: body.topic }),
        });
        deps.rooms.broadcast(roomId, f);
        return { roomId, members: (await deps.rooms.participants(roomId)).length };
      },
      sendUserMessage: async ({ params: { userId }, body }) => {
        checkSize(body.data);
        const f = frame('user:message', {
          data: body.data,
          sentAt: deps.clock.now(),
          ...(body.topic === undefined ? {} : { topic: body.topic }),
        });
        let sessions = deps.users.deliverLocal(userId, f);
        for (const [nodeId, ids] of await deps.users.remoteSessions(userId)) {
          await deps.users.deliverOnNode(nodeId, userId, f);
          sessions += ids.length;
        }
        if (sessions === 0) throw new ParleyError('RECIPIENT_OFFLINE', `user "${userId}" is not connected`);
        return { userId, sessions };
      },
      mintToken: async ({ body }) => {
        if (!deps.issuer) {
          throw new ParleyError(
            'SERVICE_UNAVAILABLE',
            'this server verifies RS256/ES256 tokens and holds no private key to sign with',
          );
        }
        const { ttlS, ...claims } = body;
        const token = await deps.issuer.issue(claims, {
          ttlS,
          ...(deps.auth.issuer ? { issuer: deps.auth.issuer } : {}),
          ...(deps.auth.audience ? { audience: deps.auth.audience } : {}),
        });
        deps.log.info({ userId: claims.sub, ttlS }, 'server API minted a token');
        return { token, userId: claims.sub, expiresAt: deps.clock.now() + ttlS * 1000 };
      },
      listCalls: async () => {
        const byKey = new Map<string, AdminCall & { key: string }>();
        for (const { calls } of await this.rpc.everywhere('calls', {})) {
          for (const c of calls) {
            const seen = byKey.get(c.key);
            // The node that saw the offer knows the caller and the start: prefer the earliest view.
            if (seen && seen.startedAt <= c.startedAt) continue;
            byKey.set(c.key, {
              key: c.key,
              callId: c.callId,
              users: [c.callerId, c.calleeId],
              startedAt: c.startedAt,
            });
          }
        }
        const live: AdminCall[] = [];
        for (const { key, ...call } of byKey.values()) {
          // Ended on the other side's node: this one may not have heard yet.
          if (await deps.store.hasClaim(callClaimKey('ended', key))) continue;
          live.push(call);
        }
        return { calls: live.sort((a, b) => a.startedAt - b.startedAt) };
      },
    };
  }

  /** Shutdown: forwarded operations fail. Idempotent. */
  close(): void {
    this.rpc.close();
  }

  /** What this node does when asked (by itself or another node). */
  #localOps(): AdminOpHandlers {
    const { sessions, rooms, floor, media, relay } = this.#d;
    return {
      'room-media': async ({ roomId }) => {
        const found = await media.producersIn(roomId);
        return { hosted: found !== null, producers: Object.fromEntries(found ?? []) };
      },
      remove: async ({ roomId, sessionIds }) => {
        const removed: string[] = [];
        for (const id of sessionIds) {
          const session = sessions.get(id);
          if (!session || session.ended || !session.rooms.has(roomId)) continue;
          await rooms.ban(session, roomId);
          await sessions.remove(session);
          removed.push(id);
        }
        return { sessions: removed };
      },
      mute: async ({ roomId, userId, producerId, muted }) => {
        const done = await media.setPausedByAdmin(roomId, userId, producerId, muted);
        return { hosted: done !== null, producers: done ?? [] };
      },
      'revoke-floor': async ({ roomId }) => ({ revoked: await floor.revoke(roomId) }),
      'end-room': async ({ roomId, reason }) => ({ removed: await rooms.endLocal(roomId, reason) }),
      calls: () => Promise.resolve({ calls: relay.calls.list() }),
    };
  }

  async #room(roomId: string): Promise<AdminRoom | null> {
    const found = await this.#d.rooms.describe(roomId);
    if (!found) return null;
    const { config, speaker, members } = found;
    return {
      roomId,
      name: config.name,
      mode: config.mode,
      maxParticipants: config.maxParticipants,
      members,
      speaker,
    };
  }

  async #existing(roomId: string): Promise<AdminRoom> {
    const room = await this.#room(roomId);
    if (!room) throw new ParleyError('ROOM_NOT_FOUND', `room "${roomId}" does not exist`);
    return room;
  }

  /** The node that terminates a session: from the directory in a cluster, this node otherwise. */
  async #nodeOf(sessionId: string): Promise<string | null> {
    const cluster = this.#d.cluster;
    if (!cluster) return this.#d.nodeId;
    return (await cluster.directory.session(sessionId))?.nodeId ?? null;
  }
}

function checkSize(data: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(data));
  if (bytes > ADMIN_MESSAGE_MAX_BYTES) {
    throw new ParleyError('PAYLOAD_TOO_LARGE', `data is ${bytes} bytes; at most ${ADMIN_MESSAGE_MAX_BYTES}`, {
      path: 'data',
    });
  }
}

function notInRoom(roomId: string, userId: string): ParleyError {
  return new ParleyError('NOT_IN_ROOM', `user "${userId}" is not in room "${roomId}"`, { roomId, userId });
}
