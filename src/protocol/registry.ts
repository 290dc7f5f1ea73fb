/**
 * The protocol's registry: what each client message is for. Every client message type is exactly
 * one of
 * - a **request**: the server answers with one of the listed reply types (or `error`), carrying the
 *   request's correlationId;
 * - a **relay**: the server forwards it to a peer with the sender set by the server, and answers
 *   only on failure.
 *
 * The server's dispatcher and the SDK's request map are both derived from these tables, so a new
 * message type that is missing from either side is a compile error (see docs/architecture.md,
 * "Adding a message type").
 *
 * This module imports types only: the browser SDK imports its values without pulling in Zod.
 */
import type { ClientMessageType } from './client-messages.js';
import type { ServerMessageOf, ServerMessageType } from './server-messages.js';

/** Request type → the reply types that answer it on success. */
export const REQUESTS = {
  'auth:request': ['auth:response'],
  'session:resume': ['session:resumed'],
  ping: ['pong'],
  'room:join': ['room:state'],
  'room:leave': ['room:left'],
  'media:capabilities': ['media:capabilities'],
  'transport:create': ['transport:created'],
  'transport:connect': ['transport:connected'],
  'transport:restart-ice': ['transport:ice-restarted'],
  produce: ['produced'],
  consume: ['consumed'],
  'consumer:resume': ['consumer:resumed'],
  'consumer:pause': ['consumer:paused'],
  'consumer:set-preferred-layers': ['consumer:preferred-layers-set'],
  'producer:close': ['producer:closed'],
  'producer:pause': ['producer:paused'],
  'producer:resume': ['producer:resumed'],
  'ptt:start': ['ptt:granted', 'ptt:denied', 'ptt:queued'],
  'ptt:stop': ['ptt:stopped'],
} as const satisfies { readonly [K in ClientMessageType]?: readonly ServerMessageType[] };

/**
 * Relay type → how its recipient is addressed: `call` (every session of `recipientId`, on any
 * node) or `room` (member `to` of `roomId`, which the sender must be in too). The relayed server
 * message has the same type, the client payload minus the addressing field, plus
 * `senderId`/`senderName` (see `relayed()` in server-messages.ts).
 */
export const RELAYS = {
  'call:offer': 'call',
  'call:answer': 'call',
  'call:ice-candidate': 'call',
  'call:accept': 'call',
  'call:reject': 'call',
  'call:hangup': 'call',
  'sdp:offer': 'room',
  'sdp:answer': 'room',
  'ice:candidate': 'room',
} as const satisfies { readonly [K in ClientMessageType]?: 'call' | 'room' };

export type RequestType = keyof typeof REQUESTS;
export type RelayType = keyof typeof RELAYS;
export type CallRelayType = { [K in RelayType]: (typeof RELAYS)[K] extends 'call' ? K : never }[RelayType];
export type RoomRelayType = Exclude<RelayType, CallRelayType>;
/** The reply types of request `T`. */
export type ReplyType<T extends RequestType> = (typeof REQUESTS)[T][number];
/** The reply messages of request `T`. */
export type ReplyTo<T extends RequestType> = ServerMessageOf<ReplyType<T>>;

// Compile-time proof that the two tables partition the client messages: a client message type in
// neither table, or in both, makes one of these lines fail to type-check and names the type.
type Unclassified = Exclude<ClientMessageType, RequestType | RelayType>;
type Ambiguous = RequestType & RelayType;
const everyTypeClassified: [Unclassified] extends [never]
  ? true
  : `${Unclassified} is neither in REQUESTS nor in RELAYS` = true;
const noTypeInBoth: [Ambiguous] extends [never] ? true : `${Ambiguous} is in both REQUESTS and RELAYS` = true;
void everyTypeClassified;
void noTypeInBoth;

export const CALL_RELAY_TYPES = Object.keys(RELAYS).filter(
  (t) => RELAYS[t as RelayType] === 'call',
) as readonly CallRelayType[];
export const ROOM_RELAY_TYPES = Object.keys(RELAYS).filter(
  (t) => RELAYS[t as RelayType] === 'room',
) as readonly RoomRelayType[];

export function isRequestType(type: string): type is RequestType {
  return Object.hasOwn(REQUESTS, type);
}
