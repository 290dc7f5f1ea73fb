/**
 * Which SDK method puts each client message on the wire. The table is checked against the protocol
 * registry: a message type added to REQUESTS or RELAYS without an entry here fails to compile, and
 * so does an entry naming a method that does not exist (e.g. after a rename).
 * test/client/coverage.test.ts also checks each named method at run time.
 *
 * Types without a dedicated method name the generic `SignalingClient.request` / `.send`: that is a
 * decision, written down, not an oversight.
 */
import type { RelayType, RequestType } from '../protocol/registry.js';
import type { Call } from './call.js';
import type { ConferenceRoom } from './conference-room.js';
import type { CallManager } from './call-manager.js';
import type { Heartbeat } from './heartbeat.js';
import type { PttChannel } from './ptt-channel.js';
import type { SessionResume } from './session-resume.js';
import type { SfuSession } from './sfu-session.js';
import type { SignalingClient } from './signaling-client.js';

/** `'Name.method'` for each public method (instance or static) of a class. */
type MethodsOf<Name extends string, C> = {
  [K in keyof C & string]: C[K] extends (...args: never[]) => unknown ? `${Name}.${K}` : never;
}[keyof C & string];

/** The SDK classes whose methods send client messages, by name. */
export interface SenderClasses {
  SignalingClient: typeof SignalingClient;
  SessionResume: typeof SessionResume;
  Heartbeat: typeof Heartbeat;
  SfuSession: typeof SfuSession;
  PttChannel: typeof PttChannel;
  ConferenceRoom: typeof ConferenceRoom;
  CallManager: typeof CallManager;
  Call: typeof Call;
}

export type SdkMethod = {
  [N in keyof SenderClasses]: MethodsOf<N, SenderClasses[N]> | MethodsOf<N, SenderClasses[N]['prototype']>;
}[keyof SenderClasses];

/** Client message type → the SDK methods that send it (the first is the main one). */
export const MESSAGE_SENDERS = {
  // Requests
  /** No dedicated method: the SDK authenticates with the subprotocol when it connects, and refreshes its token with it on `auth:expiring` (the `getToken` option). */
  'auth:request': ['SignalingClient.request'],
  'session:resume': ['SessionResume.restore'],
  ping: ['Heartbeat.ping'],
  'room:join': ['SignalingClient.joinRoom', 'SessionResume.restore'],
  'room:leave': ['SignalingClient.leaveRoom'],
  'media:capabilities': ['SfuSession.open'],
  'transport:create': ['SfuSession.open'],
  /** From the transports' `connect` handler (set up in `open`), on their first produce or consume. */
  'transport:connect': ['SfuSession.open'],
  'transport:restart-ice': ['SfuSession.restartIce'],
  produce: ['SfuSession.produce'],
  consume: ['SfuSession.consume'],
  'consumer:resume': ['SfuSession.consume', 'SfuSession.resumeConsumer', 'ConferenceRoom.setTrackVisibility'],
  'consumer:pause': ['SfuSession.pauseConsumer', 'ConferenceRoom.setTrackVisibility'],
  'consumer:set-preferred-layers': [
    'SfuSession.setPreferredLayers',
    'ConferenceRoom.setPreferredLayers',
    'ConferenceRoom.setRenderedSize',
  ],
  'producer:close': ['SfuSession.closeProducer'],
  'producer:pause': ['SfuSession.pauseProducer', 'ConferenceRoom.setMicrophoneEnabled'],
  'producer:resume': ['SfuSession.resumeProducer', 'ConferenceRoom.setMicrophoneEnabled'],
  'ptt:start': ['PttChannel.startTalking'],
  'ptt:stop': ['PttChannel.stopTalking'],
  // Relays
  /** Also renegotiation offers, when video starts or stops mid-call. */
  'call:offer': [
    'CallManager.call',
    'Call.setCameraEnabled',
    'Call.startScreenShare',
    'Call.stopScreenShare',
  ],
  'call:answer': ['Call.accept'],
  'call:ice-candidate': ['CallManager.call', 'Call.accept'],
  'call:accept': ['Call.accept'],
  /** Also sent by CallManager itself, `busy`, when a call comes in during another. */
  'call:reject': ['Call.reject'],
  'call:hangup': ['Call.hangup'],
  /** No dedicated method: in-room peer-to-peer media is the app's, wired through a PeerSignaler. */
  'sdp:offer': ['SignalingClient.send'],
  'sdp:answer': ['SignalingClient.send'],
  'ice:candidate': ['SignalingClient.send'],
} as const satisfies { readonly [K in RequestType | RelayType]: readonly [SdkMethod, ...SdkMethod[]] };
