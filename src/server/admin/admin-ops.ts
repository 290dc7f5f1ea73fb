import type { AdminProducer, Speaker } from '../../protocol/index.js';
import type { CallInfo } from '../calls/call-registry.js';

/**
 * What one node asks another to do for the server API, with the payload each op carries and the
 * result it answers with. The RPC, the serving node's handler table and the bus header are typed
 * from this one table: an op added here without a handler fails to compile.
 */
export interface AdminOps {
  /** The room's producers, if this node hosts its media. */
  'room-media': {
    payload: { roomId: string };
    result: { hosted: boolean; producers: Record<string, AdminProducer[]> };
  };
  /** Removes these sessions of this node (they were found in the room). */
  remove: { payload: { roomId: string; sessionIds: string[] }; result: { sessions: string[] } };
  /** Mutes or unmutes a user's producers, if this node hosts the room's media. */
  mute: {
    payload: { roomId: string; userId: string; producerId?: string; muted: boolean };
    result: { hosted: boolean; producers: string[] };
  };
  /** Takes the floor from its holder, if the holder is a session of this node. */
  'revoke-floor': { payload: { roomId: string }; result: { revoked: Speaker | null } };
  /** Ends the room for this node's members. */
  'end-room': { payload: { roomId: string; reason: string }; result: { removed: number } };
  /** The calls this node tracks. */
  calls: { payload: Record<string, never>; result: { calls: CallInfo[] } };
}

export type AdminOp = keyof AdminOps;
export type AdminOpPayload<K extends AdminOp> = AdminOps[K]['payload'];
export type AdminOpResult<K extends AdminOp> = AdminOps[K]['result'];
export type AdminOpHandlers = { [K in AdminOp]: (payload: AdminOpPayload<K>) => Promise<AdminOpResult<K>> };
