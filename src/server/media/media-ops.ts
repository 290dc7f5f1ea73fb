import type { ClientPayload, ServerPayload } from '../../protocol/index.js';

/**
 * The media operations one node forwards to the node that hosts a room's media, with the payload
 * each carries and the result it answers with. The RPC client, the RPC server's handler table and
 * the bus header are all typed from this one table: an op added here without a handler on the
 * serving side fails to compile.
 */
export interface MediaOps {
  'media:capabilities': { payload: { roomId: string }; result: ServerPayload<'media:capabilities'> };
  'transport:create': {
    payload: ClientPayload<'transport:create'>;
    result: ServerPayload<'transport:created'>;
  };
  'transport:connect': { payload: ClientPayload<'transport:connect'>; result: null };
  'transport:restart-ice': {
    payload: ClientPayload<'transport:restart-ice'>;
    result: ServerPayload<'transport:ice-restarted'>;
  };
  produce: { payload: ClientPayload<'produce'>; result: ServerPayload<'produced'> };
  consume: { payload: ClientPayload<'consume'>; result: ServerPayload<'consumed'> };
  'consumer:resume': { payload: ClientPayload<'consumer:resume'>; result: null };
  'consumer:pause': { payload: ClientPayload<'consumer:pause'>; result: ServerPayload<'consumer:paused'> };
  'consumer:set-preferred-layers': {
    payload: ClientPayload<'consumer:set-preferred-layers'>;
    result: ServerPayload<'consumer:preferred-layers-set'>;
  };
  'producer:close': { payload: ClientPayload<'producer:close'>; result: ServerPayload<'producer:closed'> };
  'producer:pause': { payload: ClientPayload<'producer:pause'>; result: ServerPayload<'producer:paused'> };
  'producer:resume': { payload: ClientPayload<'producer:resume'>; result: ServerPayload<'producer:resumed'> };
  'floor-granted': { payload: { roomId: string }; result: null };
  'floor-released': { payload: { roomId: string }; result: null };
}

export type MediaOp = keyof MediaOps;
export type MediaOpPayload<K extends MediaOp> = MediaOps[K]['payload'];
export type MediaOpResult<K extends MediaOp> = MediaOps[K]['result'];
