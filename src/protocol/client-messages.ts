import { z } from 'zod';
import { CallId, DisplayName, IceCandidate, RoomId, Sdp, UserId } from './common.js';
import { EmptyPayload, message } from './envelope.js';
import {
  DtlsParameters,
  MediaId,
  MediaKind,
  RtpCapabilities,
  RtpParameters,
  TransportDirection,
} from './media.js';

// ---- auth, session, heartbeat ---------------------------------------------------------------

export const AuthRequest = message(
  'auth:request',
  z.object({ token: z.string().min(1).max(8_192) }),
  'In-band authentication for a connection opened without a token. Must come before anything else, within the auth deadline. Reply: auth:response, then welcome.',
);
export const SessionResume = message(
  'session:resume',
  z.object({ resumeToken: z.string().min(1).max(256) }),
  'Resume a dropped session within the grace window: restores identity and room memberships without telling the rooms. Reply: session:resumed, then room:state for each room.',
);
export const Ping = message('ping', EmptyPayload, 'Application-level ping. Reply: pong.');

// ---- rooms ------------------------------------------------------------------------------------

export const RoomJoin = message(
  'room:join',
  z.object({ roomId: RoomId, displayName: DisplayName.optional() }),
  'Join a room. Reply: room:state. Others get room:participant-joined. Joining a room you are in returns room:state again.',
);
export const RoomLeave = message(
  'room:leave',
  z.object({ roomId: RoomId }),
  'Leave a room. Reply: room:left. Others get room:participant-left.',
);

// ---- 1:1 calls (relayed to every connection of recipientId, with senderId set by the server) ----

const CallTarget = { recipientId: UserId, callId: CallId };
export const CallOffer = message(
  'call:offer',
  z.object({ ...CallTarget, sdp: Sdp }),
  'Offer (or renegotiation offer) for a 1:1 call; the first offer of a callId rings the callee. A callId names one call: once it has ended (hung up, rejected, or one side left for good), its offers, answers and accepts are refused (CALL_NOT_FOUND, details.ended) for endedCallTtlMs (1 min), and its late candidates and hang-ups dropped silently. No reply on success; error RECIPIENT_OFFLINE if the recipient is not connected.',
);
export const CallAnswer = message(
  'call:answer',
  z.object({ ...CallTarget, sdp: Sdp }),
  'Answer to a call:offer. No reply on success; error RECIPIENT_OFFLINE if the recipient is not connected.',
);
export const CallIceCandidate = message(
  'call:ice-candidate',
  z.object({ ...CallTarget, candidate: IceCandidate }),
  'Trickled ICE candidate (null = end of candidates). Dropped silently if the recipient is offline.',
);
export const CallAccept = message(
  'call:accept',
  z.object(CallTarget),
  'Callee accepts a ringing call. No reply on success; error RECIPIENT_OFFLINE if the caller is gone.',
);
export const CallReject = message(
  'call:reject',
  z.object({ ...CallTarget, reason: z.string().max(256).optional() }),
  'Callee rejects a ringing call. No reply on success; error RECIPIENT_OFFLINE if the caller is gone.',
);
export const CallHangup = message(
  'call:hangup',
  z.object({ ...CallTarget, reason: z.string().max(256).optional() }),
  'Either side ends the call. No reply on success; error RECIPIENT_OFFLINE if the other side is gone.',
);

// ---- in-room peer-to-peer relay (only between members of the same room) -------------------------

const RoomTarget = { roomId: RoomId, to: UserId };
export const SdpOffer = message(
  'sdp:offer',
  z.object({ ...RoomTarget, sdp: Sdp }),
  'In-room P2P offer to member `to` (a userId). Sender and recipient must both be members of roomId, else NOT_IN_ROOM.',
);
export const SdpAnswer = message(
  'sdp:answer',
  z.object({ ...RoomTarget, sdp: Sdp }),
  'In-room P2P answer to member `to`. Same membership rules as sdp:offer.',
);
export const IceCandidateMessage = message(
  'ice:candidate',
  z.object({ ...RoomTarget, candidate: IceCandidate }),
  'In-room trickled ICE candidate to member `to`. Same membership rules as sdp:offer.',
);

// ---- SFU media (mediasoup) -------------------------------------------------------------------------

export const MediaCapabilitiesRequest = message(
  'media:capabilities',
  z.object({ roomId: RoomId }),
  'Router RTP capabilities of a room you are in (load them into a mediasoup-client Device). Reply: media:capabilities.',
);
export const TransportCreate = message(
  'transport:create',
  z.object({ roomId: RoomId, direction: TransportDirection }),
  'Create a WebRTC transport on the room’s SFU: one `send` to publish, one `recv` to subscribe. Reply: transport:created.',
);
export const TransportConnect = message(
  'transport:connect',
  z.object({ transportId: MediaId, dtlsParameters: DtlsParameters }),
  'Complete DTLS on one of your transports. Reply: transport:connected.',
);
export const TransportRestartIce = message(
  'transport:restart-ice',
  z.object({ transportId: MediaId }),
  'Restart ICE on one of your transports after a network change. Reply: transport:ice-restarted.',
);
export const Produce = message(
  'produce',
  z.object({
    transportId: MediaId,
    kind: MediaKind,
    rtpParameters: RtpParameters,
    appData: z.record(z.string(), z.unknown()).optional(),
  }),
  'Publish a track on your send transport. `appData.source` (microphone, camera or screen) is passed on to the others in producer:new. Needs canPublish, and a token that names canPublishSources must name the source (a missing source counts as microphone for audio, camera for video). `kind` must match the codec (PRODUCE_ERROR otherwise); video producers per room are capped (MAX_VIDEO_PRODUCERS_PER_ROOM). In a ptt room: audio only, one per session, and it starts paused until you hold the floor. Reply: produced; other members get producer:new (conference rooms).',
);
export const Consume = message(
  'consume',
  z.object({ producerId: MediaId, transportId: MediaId, rtpCapabilities: RtpCapabilities }),
  'Subscribe to a producer of a room you are in, on your recv transport. Needs canSubscribe. The consumer starts paused: send consumer:resume once it is set up. Reply: consumed.',
);
export const ConsumerResume = message(
  'consumer:resume',
  z.object({ consumerId: MediaId }),
  'Resume one of your consumers. Reply: consumer:resumed.',
);
export const ConsumerPause = message(
  'consumer:pause',
  z.object({ consumerId: MediaId }),
  'Pause one of your consumers: the SFU stops forwarding its media to you (e.g. a video tile scrolled out of view). consumer:resume starts it again. Reply: consumer:paused.',
);
export const ConsumerSetPreferredLayers = message(
  'consumer:set-preferred-layers',
  z.object({
    consumerId: MediaId,
    spatialLayer: z
      .number()
      .int()
      .min(0)
      .max(15)
      .describe('0 = lowest simulcast layer (rid q); higher than the producer has means its highest'),
    temporalLayer: z
      .number()
      .int()
      .min(0)
      .max(15)
      .optional()
      .describe('absent: the highest temporal layer of that spatial layer'),
  }),
  'Choose the simulcast (or SVC) layer one of your video consumers receives, e.g. a lower one for a small tile. The SFU switches once the layer is available. Only for a simulcast or SVC video consumer, else CONSUME_ERROR. Reply: consumer:preferred-layers-set.',
);
export const ProducerClose = message(
  'producer:close',
  z.object({ producerId: MediaId }),
  'Close one of your producers. Reply: producer:closed; consumers elsewhere get consumer:closed.',
);
export const ProducerPause = message(
  'producer:pause',
  z.object({ producerId: MediaId }),
  'Mute: pause one of your producers on the server (conference rooms; in a ptt room the floor does this). Reply: producer:paused; the other members get producer:paused too.',
);
export const ProducerResume = message(
  'producer:resume',
  z.object({ producerId: MediaId }),
  'Unmute: resume one of your paused producers. Reply: producer:resumed; the other members get producer:resumed too.',
);

// ---- push-to-talk floor control ---------------------------------------------------------------------

export const PttStart = message(
  'ptt:start',
  z.object({ roomId: RoomId }),
  'Ask for the floor of a ptt room. Reply: ptt:granted, ptt:denied {speaker}, or ptt:queued {position} when the room queues requests. A strictly higher pttPriority pre-empts the current speaker. FORBIDDEN when the token does not grant publishing the microphone (canPublish false, or canPublishSources without it).',
);
export const PttStop = message(
  'ptt:stop',
  z.object({ roomId: RoomId }),
  'Release the floor (or leave the queue). Reply: ptt:stopped; everyone gets ptt:speaker-changed {speaker:null} if you held it.',
);

/** Everything a client may send. Dispatch with an exhaustive switch on `type`. */
export const ClientMessage = z.discriminatedUnion('type', [
  AuthRequest,
  SessionResume,
  Ping,
  RoomJoin,
  RoomLeave,
  CallOffer,
  CallAnswer,
  CallIceCandidate,
  CallAccept,
  CallReject,
  CallHangup,
  SdpOffer,
  SdpAnswer,
  IceCandidateMessage,
  MediaCapabilitiesRequest,
  TransportCreate,
  TransportConnect,
  TransportRestartIce,
  Produce,
  Consume,
  ConsumerResume,
  ConsumerPause,
  ConsumerSetPreferredLayers,
  ProducerClose,
  ProducerPause,
  ProducerResume,
  PttStart,
  PttStop,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type ClientMessageType = ClientMessage['type'];
export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;
export type ClientPayload<T extends ClientMessageType> = ClientMessageOf<T>['payload'];

/** Schema lookup by type, derived from the union so there is one source of truth. */
export const CLIENT_SCHEMAS: ReadonlyMap<string, (typeof ClientMessage.options)[number]> = new Map(
  ClientMessage.options.map((schema) => [schema.shape.type.value, schema]),
);
