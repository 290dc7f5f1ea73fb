import type { ServerPayload } from '../protocol/index.js';
import { Call, type CallContext, type CallEndReason, type CallMessage } from './call.js';
import { clientDefaults } from './defaults.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { openCamera, openScreen } from './camera.js';
import { openMicrophone } from './microphone.js';
import type { SignalingClient } from './signaling-client.js';

export interface CallManagerOptions {
  /** ICE servers for calls, or a function fetching them (e.g. `IceServerProvider.get`). Default none. */
  iceServers?: RTCIceServer[] | (() => Promise<RTCIceServer[]>);
  /** Other RTCConfiguration fields, e.g. `{ iceTransportPolicy: 'relay' }` to force TURN. */
  configuration?: Omit<RTCConfiguration, 'iceServers'>;
  /** Opens the microphone. Default getUserMedia with speech-tuned constraints. */
  getMicrophone?: () => Promise<MediaStreamTrack>;
  /** Opens the camera. Default getUserMedia({video: 1280×720}). */
  getCamera?: () => Promise<MediaStreamTrack>;
  /** Opens a screen share. Default getDisplayMedia({video: true}). */
  getScreen?: () => Promise<MediaStreamTrack>;
  /**
   * Incoming calls while another call is up are declined with reason `busy`. Default true. The
   * server counts that as this device declining: the caller hears `busy` only when every device
   * of ours that rang declined so, and another free device of ours keeps ringing.
   * With false, the call rings (`incoming`) during the other one: call waiting, up to the app.
   */
  rejectWhenBusy?: boolean;
  /** Default 45 000 ms. */
  ringTimeoutMs?: number;
  /** Default 30 000 ms. */
  callConnectTimeoutMs?: number;
  RTCPeerConnection?: typeof RTCPeerConnection;
}

export interface CallOptions {
  /** The callee's display name, for UIs (default their user id). */
  name?: string;
  /** Send this track instead of opening the microphone (it is not stopped when the call ends). */
  track?: MediaStreamTrack;
  /** Start with the camera on. Default false (turn it on later with `call.setCameraEnabled`). */
  video?: boolean;
  /** Send this track as the camera (implies `video`; it is not stopped when the call ends). */
  videoTrack?: MediaStreamTrack;
}

export type CallManagerEvents = {
  /** Someone calls: `call.accept()` or `call.reject()`. */
  incoming: [call: Call];
  callEnded: [call: Call, reason: CallEndReason];
};

/**
 * 1:1 calls of one signaling connection: places calls, turns relayed `call:*` messages into
 * {@link Call}s, and ends them when our session is lost for good.
 *
 * ```ts
 * const calls = new CallManager(signaling, { iceServers: () => ice.get() });
 * calls.on('incoming', (call) => call.accept());
 * const call = await calls.call('bob');
 * call.on('stateChanged', (s) => console.log(s)); // ringing → connecting → active
 * ```
 */
export class CallManager extends TypedEmitter<CallManagerEvents> {
  readonly #signaling: SignalingClient;
  readonly #opts: CallManagerOptions;
  readonly #calls = new Map<string, Call>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  constructor(signaling: SignalingClient, options: CallManagerOptions = {}) {
    super();
    this.#signaling = signaling;
    this.#opts = options;
    const route =
      <T extends 'call:answer' | 'call:ice-candidate' | 'call:accept' | 'call:reject' | 'call:hangup'>(
        type: T,
      ) =>
      (payload: ServerPayload<T>) => {
        const call = this.#calls.get(payload.callId);
        if (call && call.peer.userId === payload.senderId) {
          call.handle({ type, payload } as CallMessage);
        }
      };
    this.#unsubscribe.push(
      signaling.on('call:offer', (payload) => this.#onOffer(payload)),
      signaling.on('call:answer', route('call:answer')),
      signaling.on('call:ice-candidate', route('call:ice-candidate')),
      signaling.on('call:accept', route('call:accept')),
      signaling.on('call:reject', route('call:reject')),
      signaling.on('call:hangup', route('call:hangup')),
      signaling.on('call:answered-elsewhere', ({ callId, callerId }) => {
        // Another device of ours took the call first: stop ringing here.
        const call = this.#calls.get(callId);
        if (call && call.direction === 'incoming' && call.peer.userId === callerId) {
          call.endLocally('answered-elsewhere');
        }
      }),
      signaling.on('reconnected', ({ resumed }) => {
        for (const call of [...this.#calls.values()]) {
          // A new session: the server already hung our calls up on the other side.
          if (resumed) call.signalingResumed();
          else call.endLocally('disconnected', new ParleyError('DISCONNECTED', 'session lost'));
        }
      }),
      signaling.on('disconnected', (reason) => {
        for (const call of [...this.#calls.values()]) call.endLocally('disconnected', reason);
      }),
    );
  }

  /** Calls that have not ended. */
  get calls(): readonly Call[] {
    return [...this.#calls.values()];
  }

  /** Calls `userId` (every device of theirs rings). Resolves once the offer is on its way. */
  async call(userId: string, options: CallOptions = {}): Promise<Call> {
    if (this.#closed) throw new ParleyError('CLOSED');
    if (userId === this.#signaling.userId) throw new ParleyError('CALL_FAILED', 'cannot call yourself');
    const call = new Call(this.#context(), {
      id: randomId(),
      direction: 'outgoing',
      peer: { userId, name: options.name ?? userId },
    });
    this.#calls.set(call.id, call);
    try {
      const wantsCamera = !options.videoTrack && options.video === true;
      const [m, c] = await Promise.allSettled([
        this.#media(),
        wantsCamera ? this.#camera() : Promise.resolve(null),
      ]);
      if (m.status === 'rejected' || c.status === 'rejected') {
        // Whichever opened is not used: close it again.
        if (m.status === 'fulfilled' && m.value.owned) m.value.track.stop();
        if (c.status === 'fulfilled' && c.value?.owned) c.value.track.stop();
        throw m.status === 'rejected' ? m.reason : (c as PromiseRejectedResult).reason;
      }
      const [media, camera] = [m.value, c.value];
      const track = options.track;
      if (track && media.owned) media.track.stop();
      const video = options.videoTrack ? { track: options.videoTrack, owned: false } : camera;
      call.startOutgoing(track ? { ...media, track, owned: false } : media, video);
    } catch (err) {
      const error = ParleyError.from(err, 'MEDIA_ERROR');
      call.endLocally('failed', error);
      throw error;
    }
    return call;
  }

  /** Hangs up every call and stops listening. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of [...this.#calls.values()]) call.hangup();
    for (const off of this.#unsubscribe.splice(0)) off();
    this.removeAllListeners();
  }

  #onOffer(payload: ServerPayload<'call:offer'>): void {
    const existing = this.#calls.get(payload.callId);
    if (existing) {
      if (existing.peer.userId === payload.senderId) existing.handle({ type: 'call:offer', payload });
      return;
    }
    if (this.#closed) return;
    const busy = [...this.#calls.values()].some((c) => c.state !== 'ended');
    if (busy && (this.#opts.rejectWhenBusy ?? true)) {
      this.#signaling.send('call:reject', {
        recipientId: payload.senderId,
        callId: payload.callId,
        reason: 'busy',
      });
      return;
    }
    const call = new Call(this.#context(), {
      id: payload.callId,
      direction: 'incoming',
      peer: { userId: payload.senderId, name: payload.senderName },
    });
    this.#calls.set(call.id, call);
    call.handle({ type: 'call:offer', payload });
    this.emit('incoming', call);
  }

  #context(): CallContext {
    return {
      signaling: this.#signaling,
      media: () => this.#media(),
      camera: () => this.#camera(),
      screen: async () =>
        this.#opts.getScreen
          ? { track: await this.#opts.getScreen(), owned: false }
          : { track: await openScreen(), owned: true },
      options: {
        ringTimeoutMs: this.#opts.ringTimeoutMs ?? clientDefaults.ringTimeoutMs,
        callConnectTimeoutMs: this.#opts.callConnectTimeoutMs ?? clientDefaults.callConnectTimeoutMs,
        ...(this.#opts.RTCPeerConnection ? { RTCPeerConnection: this.#opts.RTCPeerConnection } : {}),
      },
      onEnded: (call) => {
        this.#calls.delete(call.id);
        if (call.endReason) this.emit('callEnded', call, call.endReason);
      },
    };
  }

  async #camera(): Promise<{ track: MediaStreamTrack; owned: boolean }> {
    return this.#opts.getCamera
      ? { track: await this.#opts.getCamera(), owned: false }
      : { track: await openCamera(), owned: true };
  }

  async #media(): Promise<{ track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration }> {
    const ice = this.#opts.iceServers;
    const [track, iceServers] = await Promise.all([
      this.#opts.getMicrophone ? this.#opts.getMicrophone() : openMicrophone(),
      typeof ice === 'function' ? ice() : Promise.resolve(ice ?? []),
    ]);
    return {
      track,
      owned: !this.#opts.getMicrophone,
      configuration: { ...this.#opts.configuration, iceServers },
    };
  }
}

function randomId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
