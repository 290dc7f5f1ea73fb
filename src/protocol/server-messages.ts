import { z } from 'zod';
import {
  CallAccept,
  CallAnswer,
  CallHangup,
  CallIceCandidate,
  CallOffer,
  CallReject,
  IceCandidateMessage,
  SdpAnswer,
  SdpOffer,
} from './client-messages.js';
import { CallId, Participant, RoomConfig, RoomId, Recording, Speaker, UserId } from './common.js';
import { message } from './envelope.js';
import { ERROR_CODES, type ErrorBody, type ErrorCode } from './errors.js';
import {
  DtlsParameters,
  MediaId,
  MediaKind,
  RtpCapabilities,
  RtpParameters,
  TrackSource,
  TransportDirection,
} from './media.js';

// Every server message carries a timestamp (server time, ms since epoch). Replies carry the
// request's correlationId.

export const Welcome = message(
  'welcome',
  z.object({
    sessionId: z.string(),
    userId: UserId,
    name: z.string(),
    protocolVersion: z.number().int(),
    serverTime: z.number(),
    heartbeatIntervalMs: z.number().int(),
    heartbeatTimeoutMs: z.number().int(),
    resumeToken: z.string().describe('single-use; send in session:resume after a dropped connection'),
    resumeGraceMs: z.number().int(),
  }),
  'Sent once the connection is authenticated (at once for a token on the upgrade, after auth:response otherwise).',
);
export const AuthResponse = message(
  'auth:response',
  z.object({ userId: UserId, name: z.string() }),
  'Reply to a successful auth:request. A failed one gets error UNAUTHORIZED and close 4401.',
);
export const AuthExpiring = message(
  'auth:expiring',
  z.object({
    expiresAt: z.number().describe('server time (ms since epoch) at which the connection’s token expires'),
    expiresInMs: z.number().int().describe('how long is left, as the server counts it'),
  }),
  'The token this connection authenticated with expires soon (AUTH_EXPIRING_LEAD_MS before its exp). Answer with auth:request {token} carrying a fresh token for the same user; otherwise the connection is closed with 4401 at exp (plus the clock tolerance). The SDK does this with its getToken() option.',
);
export const GrantsReduced = message(
  'auth:grants-reduced',
  z.object({
    rooms: z.array(RoomId).describe('rooms the new token no longer allows: you have left them'),
    publishing: z
      .boolean()
      .describe(
        'true if the new token no longer allows (some of) what you published: those producers are closed, and any floor you held released',
      ),
    closedProducers: z.array(MediaId).describe('your producers the server closed'),
  }),
  'After session:resume or an auth:request refresh with a token whose grants are narrower than the old one: what the server took away (the other members see you leave those rooms as usual).',
);
export const SessionResumed = message(
  'session:resumed',
  z.object({
    sessionId: z.string().describe('the resumed session id (replaces the one in this connection’s welcome)'),
    rooms: z.array(RoomId),
    resumeToken: z.string().describe('a fresh single-use resume token'),
    missedFrames: z
      .boolean()
      .describe('true if messages sent while disconnected overflowed the buffer and some were lost'),
  }),
  'Reply to session:resume. Followed by room:state for each restored room.',
);
export const Pong = message(
  'pong',
  z.object({ serverTime: z.number() }),
  'Reply to ping, with the same correlationId.',
);
export const ErrorMessage = message(
  'error',
  z.object({
    code: z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    details: z
      .object({ path: z.string().optional(), type: z.string().optional() })
      .catchall(z.unknown())
      .optional(),
  }) satisfies z.ZodType<ErrorBody>,
  'Error reply with a stable code from docs/errors.md; carries the failed request’s correlationId.',
);
export const ServerShutdown = message(
  'server:shutdown',
  z.object({
    reconnectInMs: z.number().int().describe('suggested delay before reconnecting (jittered per client)'),
    reason: z.string(),
    resume: z
      .boolean()
      .describe(
        'true in a cluster: the session is handed over, so resume it (through the load balancer, on another node) with the resume token; false: it ends with this server, re-join',
      ),
  }),
  'The server is draining. The socket is closed with 1001 right after.',
);

export const RoomState = message(
  'room:state',
  z.object({
    roomId: RoomId,
    participants: z.array(Participant),
    config: RoomConfig,
    speaker: Speaker.nullable(),
  }),
  'Reply to room:join; also sent for each room after session:resumed.',
);
export const RoomLeft = message('room:left', z.object({ roomId: RoomId }), 'Reply to room:leave.');
export const RoomParticipantJoined = message(
  'room:participant-joined',
  z.object({ roomId: RoomId, participant: Participant }),
  'Broadcast to the other members when someone joins.',
);
export const RoomParticipantLeft = message(
  'room:participant-left',
  z.object({
    roomId: RoomId,
    participant: Participant,
    reason: z.enum(['left', 'disconnected', 'removed']),
  }),
  'Broadcast to the other members when someone leaves, disconnects without resuming in time, or is removed through the server API.',
);
export const RoomEnded = message(
  'room:ended',
  z.object({ roomId: RoomId, reason: z.string().max(256) }),
  'The server API ended the room: you are no longer a member (your media in it is closed). Joining again starts it afresh.',
);

/** An application's JSON, as the server API sends it (size-limited by the API). */
const AppData = z.json().describe('the application’s JSON, as given to the server API');
export const RoomMessage = message(
  'room:message',
  z.object({ roomId: RoomId, topic: z.string().max(64).optional(), data: AppData, sentAt: z.number() }),
  'A message from the application’s backend (server API) to every member of the room.',
);
export const UserMessage = message(
  'user:message',
  z.object({ topic: z.string().max(64).optional(), data: AppData, sentAt: z.number() }),
  'A message from the application’s backend (server API) to every session of your user.',
);

// ---- relayed messages: the client's payload minus its addressing, plus the server-set sender -------

const Sender = {
  senderId: UserId.describe('set by the server from the sender’s token; never taken from the payload'),
  senderName: z.string(),
};

/**
 * Derives a relayed server message from the client message it forwards (see RELAYS in
 * registry.ts): same type, the client's payload without the addressing field `drop`, plus
 * `senderId`/`senderName`. A field added to the client schema is relayed with no second edit.
 */
function relayed<T extends string, P extends z.ZodRawShape, D extends keyof P & string>(
  client: { shape: { type: z.ZodLiteral<T>; payload: z.ZodObject<P> } },
  drop: D,
  description: string,
) {
  const rest: Partial<P> = { ...client.shape.payload.shape };
  delete rest[drop];
  return message(client.shape.type.value, z.object({ ...Sender, ...(rest as Omit<P, D>) }), description);
}

export const CallOfferRelayed = relayed(
  CallOffer,
  'recipientId',
  'Relayed offer. The first one for a callId means the phone is ringing.',
);
export const CallAnswerRelayed = relayed(CallAnswer, 'recipientId', 'Relayed answer.');
export const CallIceCandidateRelayed = relayed(CallIceCandidate, 'recipientId', 'Relayed ICE candidate.');
export const CallAcceptRelayed = relayed(CallAccept, 'recipientId', 'The callee accepted.');
export const CallRejectRelayed = relayed(CallReject, 'recipientId', 'The callee rejected.');
export const CallHangupRelayed = relayed(CallHangup, 'recipientId', 'The other side hung up.');

export const CallAnsweredElsewhere = message(
  'call:answered-elsewhere',
  z.object({
    callId: CallId,
    callerId: UserId.describe('who placed the call'),
    outcome: z
      .enum(['accepted', 'rejected'])
      .describe('what the device that answered first did with the call'),
  }),
  'Sent by the server (not relayed) to each other device of the callee that the call rang, once one of them accepted or rejected it first: stop ringing. Their later call messages for this callId are refused with CALL_ANSWERED_ELSEWHERE.',
);

export const SdpOfferRelayed = relayed(SdpOffer, 'to', 'Relayed in-room offer.');
export const SdpAnswerRelayed = relayed(SdpAnswer, 'to', 'Relayed in-room answer.');
export const IceCandidateRelayed = relayed(IceCandidateMessage, 'to', 'Relayed in-room ICE candidate.');

// ---- SFU media ------------------------------------------------------------------------------------

export const MediaCapabilities = message(
  'media:capabilities',
  z.object({
    roomId: RoomId,
    rtpCapabilities: RtpCapabilities,
    floorProducerId: MediaId.nullable().describe(
      'ptt rooms: the one producer that carries whoever holds the floor; consume it once. null in conference rooms.',
    ),
  }),
  'Reply to media:capabilities.',
);
export const TransportCreated = message(
  'transport:created',
  z.object({
    roomId: RoomId,
    direction: TransportDirection,
    id: MediaId,
    iceParameters: z.looseObject({}),
    iceCandidates: z.array(z.looseObject({})),
    dtlsParameters: DtlsParameters,
  }),
  'Reply to transport:create: what mediasoup-client’s createSendTransport/createRecvTransport needs.',
);
export const TransportConnected = message(
  'transport:connected',
  z.object({ transportId: MediaId }),
  'Reply to transport:connect.',
);
export const TransportIceRestarted = message(
  'transport:ice-restarted',
  z.object({ transportId: MediaId, iceParameters: z.looseObject({}) }),
  'Reply to transport:restart-ice: pass iceParameters to transport.restartIce().',
);
export const Produced = message(
  'produced',
  z.object({ producerId: MediaId, paused: z.boolean() }),
  'Reply to produce.',
);
export const Consumed = message(
  'consumed',
  z.object({
    consumerId: MediaId,
    producerId: MediaId,
    kind: MediaKind,
    rtpParameters: RtpParameters,
    producerPaused: z.boolean(),
  }),
  'Reply to consume. The consumer is paused until consumer:resume.',
);
export const ConsumerResumed = message(
  'consumer:resumed',
  z.object({ consumerId: MediaId }),
  'Reply to consumer:resume.',
);
export const ConsumerPaused = message(
  'consumer:paused',
  z.object({ consumerId: MediaId }),
  'Reply to consumer:pause.',
);
export const ConsumerPreferredLayersSet = message(
  'consumer:preferred-layers-set',
  z.object({
    consumerId: MediaId,
    spatialLayer: z.number().int(),
    temporalLayer: z.number().int().nullable().describe('null: the highest of the spatial layer'),
  }),
  'Reply to consumer:set-preferred-layers: the layers now preferred (the spatial layer is capped at the highest the producer has).',
);
export const RoomActiveSpeaker = message(
  'room:active-speaker',
  z.object({
    roomId: RoomId,
    userId: UserId.nullable(),
    sessionId: z.string().nullable(),
    producerId: MediaId.nullable().describe('the speaker’s microphone producer'),
  }),
  'Conference rooms: who is speaking now (the SFU’s dominant speaker), to every member. Debounced: a speaker stays announced at least ACTIVE_SPEAKER_HOLD_MS before the next change, so it does not flap. All three ids are null when nobody is: the speaker muted, unpublished or left. Sent again (the current one) right after transport:created (recv).',
);
export const ProducerNew = message(
  'producer:new',
  z.object({
    roomId: RoomId,
    producerId: MediaId,
    userId: UserId,
    sessionId: z.string(),
    kind: MediaKind,
    source: TrackSource.optional().describe(
      'microphone, camera or screen, when the publisher said so in produce’s appData.source',
    ),
  }),
  'A member of a conference room published a track; consume it if you want it. Also sent for existing producers right after transport:created (recv).',
);
export const ProducerClosed = message(
  'producer:closed',
  z.object({ roomId: RoomId, producerId: MediaId }),
  'Reply to producer:close; also a notification when a member’s producer goes away.',
);
export const ProducerPaused = message(
  'producer:paused',
  z.object({ roomId: RoomId, producerId: MediaId, userId: UserId, sessionId: z.string() }),
  'Reply to producer:pause; also a notification to the other members of a conference room when a member mutes a track (its consumers stop receiving until producer:resumed).',
);
export const ProducerResumed = message(
  'producer:resumed',
  z.object({ roomId: RoomId, producerId: MediaId, userId: UserId, sessionId: z.string() }),
  'Reply to producer:resume; also a notification to the other members when a member unmutes a track.',
);
export const ConsumerClosed = message(
  'consumer:closed',
  z.object({ consumerId: MediaId, producerId: MediaId, reason: z.string() }),
  'One of your consumers was closed by the server (its producer closed, or its transport).',
);
export const MediaClosed = message(
  'media:closed',
  z.object({ roomId: RoomId, reason: z.enum(['worker-died', 'node-died', 'shutdown', 'suspended']) }),
  'The room’s media plane was torn down (a mediasoup worker died, or the node hosting the room’s media), or your media in the room was released while your session was suspended (`suspended`, sent right after `session:resumed`). Your room membership stands; create transports again and re-publish.',
);

// ---- push-to-talk ------------------------------------------------------------------------------------

const PttSpeaker = z.object({ userId: UserId, name: z.string() });
export const PttGranted = message(
  'ptt:granted',
  z.object({
    roomId: RoomId,
    since: z.number().describe('server time (ms) of the grant'),
    maxTalkMs: z.number().int().describe('the floor is revoked after this long'),
  }),
  'You hold the floor: your audio producer is live. Reply to ptt:start, or unsolicited when your queued request is granted.',
);
export const PttDenied = message(
  'ptt:denied',
  z.object({ roomId: RoomId, speaker: PttSpeaker }),
  'Reply to ptt:start: someone else holds the floor (show "<name> is speaking").',
);
export const PttQueued = message(
  'ptt:queued',
  z.object({ roomId: RoomId, position: z.number().int().min(1), speaker: PttSpeaker.nullable() }),
  'Reply to ptt:start in a queueing room: your place in line (1 = next). Sent again when your position changes.',
);
export const PttStopped = message(
  'ptt:stopped',
  z.object({
    roomId: RoomId,
    held: z
      .boolean()
      .describe('true if you held the floor, false if you only left the queue or held nothing'),
  }),
  'Reply to ptt:stop.',
);
export const PttRevoked = message(
  'ptt:revoked',
  z.object({
    roomId: RoomId,
    reason: z.enum(['max-duration', 'preempted', 'lock-lost', 'media-closed', 'admin']),
    by: PttSpeaker.optional().describe('preempted: who took the floor'),
  }),
  'The server took the floor from you; your producer is paused again.',
);
export const PttSpeakerChanged = message(
  'ptt:speaker-changed',
  z.object({
    roomId: RoomId,
    speaker: Speaker.nullable(),
    at: z.number().describe('server time (ms) of the change'),
  }),
  'Broadcast to every member of a ptt room when the floor changes hands (null: the floor is free).',
);

export const PttRecording = message(
  'ptt:recording',
  Recording,
  'Broadcast to the members of a recorded ptt room (manifest `"record": true`) when a talk burst has been stored. Fetch the audio with GET /api/recordings/:id.',
);

/** Everything the server may send. */
export const ServerMessage = z.discriminatedUnion('type', [
  Welcome,
  AuthResponse,
  AuthExpiring,
  GrantsReduced,
  SessionResumed,
  Pong,
  ErrorMessage,
  ServerShutdown,
  RoomState,
  RoomLeft,
  RoomParticipantJoined,
  RoomParticipantLeft,
  RoomEnded,
  RoomMessage,
  UserMessage,
  CallOfferRelayed,
  CallAnswerRelayed,
  CallIceCandidateRelayed,
  CallAcceptRelayed,
  CallRejectRelayed,
  CallHangupRelayed,
  CallAnsweredElsewhere,
  SdpOfferRelayed,
  SdpAnswerRelayed,
  IceCandidateRelayed,
  MediaCapabilities,
  TransportCreated,
  TransportConnected,
  TransportIceRestarted,
  Produced,
  Consumed,
  ConsumerResumed,
  ConsumerPaused,
  ConsumerPreferredLayersSet,
  RoomActiveSpeaker,
  ProducerNew,
  ProducerClosed,
  ProducerPaused,
  ProducerResumed,
  ConsumerClosed,
  MediaClosed,
  PttGranted,
  PttDenied,
  PttQueued,
  PttStopped,
  PttRevoked,
  PttSpeakerChanged,
  PttRecording,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ServerMessageType = ServerMessage['type'];
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;
export type ServerPayload<T extends ServerMessageType> = ServerMessageOf<T>['payload'];
