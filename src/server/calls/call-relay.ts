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
import { CallRegistry } from './call-registry.js';

/**
 * Peer-to-peer signaling relay: 1:1 calls (to every connection of a user) and in-room relay (to a
 * member of a room the sender is in). The sender is always the authenticated session; any
 * identity field in the payload is dropped by the schema and replaced here.
 */
export class CallRelay {
  readonly #sessions: SessionManager;
  readonly #rooms: RoomService;
  readonly #metrics: Metrics;
  readonly calls: CallRegistry;

  constructor(sessions: SessionManager, rooms: RoomService, metrics: Metrics, log: Logger) {
    this.#sessions = sessions;
    this.#rooms = rooms;
    this.#metrics = metrics;
    this.calls = new CallRegistry(log);
  }

  /** call:* — deliver to every session of recipientId (but never back to the sending session). */
  relayCall(session: Session, msg: ClientMessageOf<CallRelayType>, receivedAt: number): void {
    const { recipientId, ...rest } = msg.payload;
    const recipients = this.#sessions.sessionsOf(recipientId);
    const reachable = recipients !== undefined && (recipients.size > 1 || !recipients.has(session));
    if (!reachable) {
      // Trickled candidates for someone gone are noise, not an error worth a reply.
      if (msg.type === 'call:ice-candidate') return;
      if (msg.type === 'call:hangup' || msg.type === 'call:reject')
        this.calls.end(session.userId, recipientId, rest.callId);
      throw new ParleyError('RECIPIENT_OFFLINE', `user "${recipientId}" is not connected`);
    }
    this.calls.track(msg.type, session.userId, recipientId, rest.callId);
    const f = encodeRelay(msg.type, { ...rest, senderId: session.userId, senderName: session.identity.name });
    for (const s of recipients) if (s !== session) s.deliver(f);
    this.#metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
  }

  /** sdp:offer / sdp:answer / ice:candidate — both sides must be members of roomId. */
  relayInRoom(session: Session, msg: ClientMessageOf<RoomRelayType>, receivedAt: number): void {
    const { roomId, to, ...rest } = msg.payload;
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    const members = this.#rooms.localMembers(roomId);
    let f: Frame | null = null;
    let delivered = 0;
    if (members) {
      for (const s of members) {
        if (s.userId !== to || s === session) continue;
        f ??= encodeRelay(msg.type, {
          ...rest,
          roomId,
          senderId: session.userId,
          senderName: session.identity.name,
        });
        s.deliver(f);
        delivered++;
      }
    }
    if (delivered === 0) {
      throw new ParleyError('NOT_IN_ROOM', `user "${to}" is not in room "${roomId}"`, { roomId, to });
    }
    this.#metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
  }

  /** Session-end listener: the other side of each of the user's calls gets a hang-up. */
  readonly onSessionEnded = (session: Session): void => {
    if (this.#sessions.sessionsOf(session.userId)?.size) return; // still online elsewhere
    for (const call of this.calls.endAllOf(session.userId)) {
      const peers = this.#sessions.sessionsOf(call.peerId);
      if (!peers) continue;
      const f = encodeRelay('call:hangup', {
        callId: call.callId,
        senderId: session.userId,
        senderName: session.identity.name,
        reason: 'disconnected',
      });
      for (const s of peers) s.deliver(f);
    }
  };
}

function encodeRelay(type: ServerMessageType, payload: Record<string, unknown>): Frame {
  // Relayed payloads were validated on the way in; the server only adds senderId/senderName.
  return { type, data: Buffer.from(JSON.stringify({ type, payload, timestamp: Date.now() })) };
}
