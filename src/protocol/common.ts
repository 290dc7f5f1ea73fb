import { z } from 'zod';

/** Bumped on breaking wire changes. Sent in `welcome`. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket subprotocol the server selects. Browsers offer it together with the token. */
export const SUBPROTOCOL = 'parley';

/**
 * The subprotocol of the calls-service adapter (docs/migration.md): offered instead of `parley`
 * (with the token beside it, as for `parley`), it makes the server speak the earlier calls
 * service's hyphenated `call-*` names and `call-error` on that connection.
 */
export const CALLS_V0_SUBPROTOCOL = 'parley.v0-calls';
/** The same adapter chosen by query: `/ws?compat=v0-calls` (for clients that cannot offer subprotocols). */
export const CALLS_V0_COMPAT = 'v0-calls';

export const RoomId = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'room ids are 1-64 characters of A-Z a-z 0-9 _ . : -');
export const UserId = z.string().min(1).max(128);
export const CallId = z.string().min(1).max(128);
export const DisplayName = z.string().trim().min(1).max(64);
/** SDP text. Bounded well under the frame limit; never logged. */
export const Sdp = z.string().min(1).max(60_000);

/** An ICE candidate as produced by `RTCIceCandidate.toJSON()`; `null` signals end-of-candidates. */
export const IceCandidate = z
  .object({
    candidate: z.string().max(2_048),
    sdpMid: z.string().max(64).nullish(),
    sdpMLineIndex: z.number().int().min(0).max(1_024).nullish(),
    usernameFragment: z.string().max(256).nullish(),
  })
  .nullable();
export type IceCandidate = z.infer<typeof IceCandidate>;

export const RoomMode = z.enum(['ptt', 'conference']);
export type RoomMode = z.infer<typeof RoomMode>;

/** The public part of a room's configuration, as sent in `room:state` and `/api/station`. */
export const RoomConfig = z.object({
  id: RoomId,
  name: z.string().min(1).max(128),
  mode: RoomMode,
  maxParticipants: z.number().int().min(1).max(100_000),
});
export type RoomConfig = z.infer<typeof RoomConfig>;

/** One connection's membership of a room. A user with two devices appears twice, with two sessionIds. */
export const Participant = z.object({
  sessionId: z.string(),
  userId: UserId,
  name: z.string(),
  joinedAt: z.number().describe('server time (ms since epoch) of the join'),
  nameVerified: z
    .literal(false)
    .optional()
    .describe(
      'false: the name was chosen by the client (room:join displayName; its token carries no name), so do not trust it; absent: the name comes from the token',
    ),
});
export type Participant = z.infer<typeof Participant>;

/** Who holds a PTT floor. */
export const Speaker = z.object({
  userId: UserId,
  name: z.string(),
  sessionId: z.string(),
  since: z.number().describe('server time (ms) the floor was granted'),
  nameVerified: z
    .literal(false)
    .optional()
    .describe('false: a client-chosen name, as in the speaker’s participant entry; absent: from the token'),
});
export type Speaker = z.infer<typeof Speaker>;

/**
 * One recorded PTT talk burst (a channel with `"record": true`): what `ptt:recording`, the
 * `recording.ready` webhook and `GET /api/rooms/:roomId/recordings` carry. The audio is at
 * `GET /api/recordings/:id` (Ogg Opus).
 */
export const Recording = z.object({
  id: z.string().min(1).max(64),
  roomId: RoomId,
  speaker: z.object({ userId: UserId, name: z.string() }),
  startedAt: z.number().describe('server time (ms) the burst started'),
  durationMs: z.number().int().min(0).describe('audio in the file'),
  bytes: z.number().int().min(0).describe('size of the Ogg Opus file'),
  partial: z
    .boolean()
    .optional()
    .describe('true: the recording node died mid-burst; the file holds what was written until then'),
});
export type Recording = z.infer<typeof Recording>;
