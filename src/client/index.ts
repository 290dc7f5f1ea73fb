/**
 * Parley browser SDK. Three layers, as in LiveKit's client:
 * - the wire: {@link SignalingClient} (requests, typed events, reconnect + resume);
 * - the engines: {@link PeerConnectionManager} (1:1, Perfect Negotiation) and {@link SfuSession} (mediasoup-client);
 * - the public model: {@link ParleyClient}, {@link CallManager}/{@link Call}, {@link PttChannel}.
 *
 * See docs/sdk.md.
 */
export { ParleyClient, type ParleyClientOptions } from './parley-client.js';
export {
  SignalingClient,
  CLIENT_PROTOCOL_VERSION,
  type AuthMode,
  type ConnectionState,
  type ReconnectedInfo,
  type ReconnectingInfo,
  type RelayType,
  type ReplyTo,
  type ReplyTypes,
  type RequestOptions,
  type RequestType,
  type SendOptions,
  type SignalingClientOptions,
  type SignalingEvents,
} from './signaling-client.js';
export {
  DefaultReconnectPolicy,
  type DefaultReconnectPolicyOptions,
  type ReconnectContext,
  type ReconnectPolicy,
} from './reconnect-policy.js';
export { ParleyError, CLIENT_ERRORS, type ClientErrorCode, type ParleyErrorCode } from './errors.js';
export {
  PeerConnectionManager,
  type IceCandidateErrorInfo,
  type NegotiationCounters,
  type PeerConnectionEvents,
  type PeerConnectionManagerOptions,
  type PeerSignaler,
} from './peer-connection-manager.js';
export {
  Call,
  type AcceptOptions,
  type CallDirection,
  type CallEndReason,
  type CallEvents,
  type CallPeer,
  type CallState,
  type LocalVideoState,
} from './call.js';
export {
  CallManager,
  type CallManagerEvents,
  type CallManagerOptions,
  type CallOptions,
} from './call-manager.js';
export { openMicrophone } from './microphone.js';
export { openCamera, openScreen } from './camera.js';
export {
  PttChannel,
  type FloorSpeaker,
  type MediaState,
  type PttChannelEvents,
  type PttChannelOptions,
  type RevokeReason,
  type TalkResult,
  type TalkState,
} from './ptt-channel.js';
export {
  ConferenceRoom,
  simulcastLayerFor,
  type ActiveSpeaker,
  type ConferenceParticipant,
  type ConferenceRoomEvents,
  type ConferenceRoomOptions,
  type LocalTrackState,
  type RemoteTrack,
  type TrackSource,
  type TrackStats,
} from './conference-room.js';
export { SfuSession, type SfuSessionEvents, type SfuSessionOptions } from './sfu-session.js';
export { AudioPlayer, type AudioPlayerEvents } from './audio-player.js';
export {
  fetchRecordingAudio,
  fetchRecordings,
  fetchStation,
  fetchTurnCredentials,
  iceServersFrom,
  IceServerProvider,
  type IceServerProviderOptions,
  type Recording,
  type RecordingQuery,
  type StationInfo,
  type TurnCredentials,
} from './http-api.js';
export { audioStatsFrom, type AudioStats, type SelectedCandidatePair } from './stats.js';
export { TypedEmitter, type EventMap, type Listener } from './emitter.js';
export {
  jwtExpiry,
  toHttpBase,
  toWebSocketUrl,
  type WebSocketFactory,
  type WebSocketLike,
} from './websocket.js';
export {
  devToken,
  resolveToken,
  tokenFrom,
  type DevTokenOptions,
  type TokenSource,
  type TokenValue,
} from './token.js';
export { serverUrls, ACCEPTED_URL_FORMS, type ServerUrls } from './server-url.js';
export { clientDefaults, voiceConstraints } from './defaults.js';
// Protocol types the SDK's API speaks in.
export type {
  Participant,
  RoomConfig,
  Speaker,
  ServerMessage,
  ServerMessageType,
  ServerPayload,
  ClientMessageType,
  ClientPayload,
  ErrorCode,
} from '../protocol/index.js';
