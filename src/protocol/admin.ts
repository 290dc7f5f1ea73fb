/**
 * The server API (`/api/admin/…`): one table of endpoints, each with its method, path, parameters,
 * body and response as Zod schemas. The server's router and handler table, the OpenAPI document at
 * `/api/admin/openapi.json`, docs/server-api.md and the Node server SDK are all derived from it: an
 * endpoint added here without a handler does not compile.
 */
import { z } from 'zod';
import { RoomId, RoomMode, Speaker, UserId } from './common.js';
import { MediaId, MediaKind, TrackSource } from './media.js';

/** Largest JSON (serialised, in bytes) the server API sends as `room:message` / `user:message`. 16 KiB. */
export const ADMIN_MESSAGE_MAX_BYTES = 16 * 1024;
/** Lifetime of a token minted by the server API: default and maximum, in seconds. */
export const ADMIN_TOKEN_TTL_DEFAULT_S = 600;
export const ADMIN_TOKEN_TTL_MAX_S = 86_400;

export const AdminRoom = z.object({
  roomId: RoomId,
  name: z.string(),
  mode: RoomMode,
  maxParticipants: z.number().int(),
  members: z.number().int().describe('sessions in the room, on every node'),
  speaker: Speaker.nullable().describe('ptt rooms: who holds the floor now'),
});
export type AdminRoom = z.infer<typeof AdminRoom>;

export const AdminProducer = z.object({
  producerId: MediaId,
  kind: MediaKind,
  paused: z.boolean(),
});
export type AdminProducer = z.infer<typeof AdminProducer>;

export const AdminParticipant = z.object({
  sessionId: z.string(),
  userId: UserId,
  name: z.string(),
  node: z.string().nullable().describe('the node that terminates the session’s WebSocket (null: unknown)'),
  joinedAt: z.number().describe('server time (ms) of the join'),
  producers: z.array(AdminProducer).describe('the session’s SFU producers in this room'),
  muted: z.boolean().describe('true when the session has producers and every one of them is paused'),
});
export type AdminParticipant = z.infer<typeof AdminParticipant>;

export const AdminCall = z.object({
  callId: z.string(),
  users: z.array(UserId).length(2).describe('the two parties (user ids)'),
  startedAt: z.number().describe('server time (ms) the call was first seen'),
});
export type AdminCall = z.infer<typeof AdminCall>;

export const MuteBody = z
  .object({
    muted: z.boolean().describe('true pauses, false resumes'),
    producerId: MediaId.optional().describe('only this producer (default: every producer of the user)'),
  })
  .strict();

export const MessageBody = z
  .object({
    data: z.json().describe(`the application’s JSON, at most ${ADMIN_MESSAGE_MAX_BYTES} bytes serialised`),
    topic: z.string().min(1).max(64).optional().describe('a label for the application to route on'),
  })
  .strict();

export const MintTokenBody = z
  .object({
    sub: UserId.describe('the user id'),
    name: z.string().min(1).max(128).optional(),
    rooms: z.array(z.string().min(1).max(64)).max(1_000).optional(),
    canPublish: z.boolean().optional(),
    canPublishSources: z
      .array(TrackSource)
      .max(3)
      .optional()
      .describe('what the user may publish (absent: every source); the CLI’s --sources'),
    canSubscribe: z.boolean().optional(),
    pttPriority: z.number().int().min(0).max(100).optional(),
    canReplay: z.boolean().optional().describe('may list and play PTT recordings (default true)'),
    admin: z.boolean().optional(),
    ttlS: z
      .number()
      .int()
      .min(1)
      .max(ADMIN_TOKEN_TTL_MAX_S)
      .default(ADMIN_TOKEN_TTL_DEFAULT_S)
      .describe('lifetime in seconds'),
  })
  .strict();

const RoomParams = z.object({ roomId: RoomId });
const RoomUserParams = z.object({ roomId: RoomId, userId: UserId });
const UserParams = z.object({ userId: UserId });

/** One endpoint of the server API. Path parameters are written `{name}`. */
export interface AdminEndpoint {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: `/api/admin/${string}`;
  readonly summary: string;
  readonly params?: z.ZodObject;
  readonly body?: z.ZodType;
  readonly response: z.ZodType;
}

export const ADMIN_API = {
  listRooms: {
    method: 'GET',
    path: '/api/admin/rooms',
    summary: 'Rooms with members, on every node: member count, mode and current speaker.',
    response: z.object({ rooms: z.array(AdminRoom) }),
  },
  getRoom: {
    method: 'GET',
    path: '/api/admin/rooms/{roomId}',
    summary:
      'One room and its participants: user id, name, node, joined at, producers and muted state. 404 ROOM_NOT_FOUND for a room that does not exist.',
    params: RoomParams,
    response: z.object({ room: AdminRoom, participants: z.array(AdminParticipant) }),
  },
  endRoom: {
    method: 'DELETE',
    path: '/api/admin/rooms/{roomId}',
    summary:
      'Ends a room: every member gets room:ended and is taken out of it (their media in it closes). They may join again.',
    params: RoomParams,
    response: z.object({ roomId: RoomId, removed: z.number().int().describe('sessions taken out') }),
  },
  removeParticipant: {
    method: 'DELETE',
    path: '/api/admin/rooms/{roomId}/participants/{userId}',
    summary:
      'Removes a user from a room: each of their sessions in it is ended and its WebSocket closed with 4410 (REMOVED); the others see room:participant-left {reason:"removed"}. The same token cannot join that room again. 404 NOT_IN_ROOM if the user is not a member.',
    params: RoomUserParams,
    response: z.object({ roomId: RoomId, userId: UserId, sessions: z.array(z.string()) }),
  },
  muteParticipant: {
    method: 'POST',
    path: '/api/admin/rooms/{roomId}/participants/{userId}/mute',
    summary:
      'Mutes (pauses) or unmutes (resumes) a user’s producers in a conference room; every member, the user included, gets producer:paused / producer:resumed. 409 NOT_CONFERENCE_ROOM in a ptt room (revoke the floor instead).',
    params: RoomUserParams,
    body: MuteBody,
    response: z.object({
      roomId: RoomId,
      userId: UserId,
      muted: z.boolean(),
      producers: z.array(MediaId).describe('producers whose state changed or already matched'),
    }),
  },
  revokeFloor: {
    method: 'POST',
    path: '/api/admin/rooms/{roomId}/floor/revoke',
    summary:
      'Takes the PTT floor from whoever holds it: they get ptt:revoked {reason:"admin"}, everyone ptt:speaker-changed {speaker:null}. 409 NOT_PTT_ROOM in a conference room.',
    params: RoomParams,
    response: z.object({
      roomId: RoomId,
      revoked: Speaker.nullable().describe('who lost the floor (null: nobody held it)'),
    }),
  },
  sendRoomMessage: {
    method: 'POST',
    path: '/api/admin/rooms/{roomId}/messages',
    summary: `Sends room:message with the application’s JSON to every member of the room. 413 PAYLOAD_TOO_LARGE beyond ${ADMIN_MESSAGE_MAX_BYTES} bytes.`,
    params: RoomParams,
    body: MessageBody,
    response: z.object({ roomId: RoomId, members: z.number().int().describe('sessions it was sent to') }),
  },
  sendUserMessage: {
    method: 'POST',
    path: '/api/admin/users/{userId}/messages',
    summary: `Sends user:message with the application’s JSON to every session of the user, on any node. 404 RECIPIENT_OFFLINE if they have none; 413 PAYLOAD_TOO_LARGE beyond ${ADMIN_MESSAGE_MAX_BYTES} bytes.`,
    params: UserParams,
    body: MessageBody,
    response: z.object({ userId: UserId, sessions: z.number().int().describe('sessions it was sent to') }),
  },
  mintToken: {
    method: 'POST',
    path: '/api/admin/tokens',
    summary: `Mints a short-lived token for a user, with the same claims as the token CLI (default ${ADMIN_TOKEN_TTL_DEFAULT_S} s, at most ${ADMIN_TOKEN_TTL_MAX_S} s). 503 SERVICE_UNAVAILABLE when the server verifies RS256/ES256 tokens (it holds no private key).`,
    body: MintTokenBody,
    response: z.object({
      token: z.string(),
      userId: UserId,
      expiresAt: z.number().describe('ms since epoch'),
    }),
  },
  listCalls: {
    method: 'GET',
    path: '/api/admin/calls',
    summary: 'Active 1:1 calls, on every node.',
    response: z.object({ calls: z.array(AdminCall) }),
  },
} as const satisfies Record<string, AdminEndpoint>;

export type AdminOperation = keyof typeof ADMIN_API;
type Endpoint<K extends AdminOperation> = (typeof ADMIN_API)[K];
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;
type In<S> = S extends z.ZodType ? z.input<S> : undefined;
/** What a handler of operation `K` receives (after validation). */
export type AdminInput<K extends AdminOperation> = {
  params: Endpoint<K> extends { params: infer P } ? Out<P> : Record<string, never>;
  body: Endpoint<K> extends { body: infer B } ? Out<B> : undefined;
};
/** What a caller of operation `K` sends. */
export type AdminRequest<K extends AdminOperation> = (Endpoint<K> extends { params: infer P }
  ? In<P>
  : unknown) &
  (Endpoint<K> extends { body: infer B } ? { body: In<B> } : unknown);
/** What operation `K` answers with on success. */
export type AdminResponse<K extends AdminOperation> = z.output<Endpoint<K>['response']>;

export const ADMIN_OPENAPI_PATH = '/api/admin/openapi.json';
