import type { CallRelayType, ServerPayload } from '../protocol/index.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { PeerConnectionManager, type PeerSignaler } from './peer-connection-manager.js';
import type { SignalingClient } from './signaling-client.js';
import type { AudioStats } from './stats.js';

/**
 * - `ringing`: outgoing: the other side is ringing; incoming: our phone rings (accept or reject)
 * - `connecting`: accepted; media is being set up
 * - `active`: audio flows
 * - `ended`: see `endReason`
 */
export type CallState = 'ringing' | 'connecting' | 'active' | 'ended';
export type CallDirection = 'outgoing' | 'incoming';
export type CallEndReason =
  /** We hung up. */
  | 'hangup'
  /** The other side hung up. */
  | 'remote-hangup'
  /** Outgoing: the callee rejected. Incoming: we rejected. */
  | 'rejected'
  /** The callee was in another call. */
  | 'busy'
  /** Nobody answered within the ring timeout. */
  | 'no-answer'
  /** Incoming: the caller hung up before we answered. */
  | 'cancelled'
  /** The callee is not connected. */
  | 'offline'
  /** The other side (or we) lost the connection for good. */
  | 'disconnected'
  /** Media could not be set up, or the connection could not be restored in time. */
  | 'failed';

/** The relayed call messages a Call handles: the protocol registry's `call` relays. */
export type CallMessageType = CallRelayType;
/** One relayed call message, as a union discriminated by `type`. */
export type CallMessage = { [T in CallMessageType]: { type: T; payload: ServerPayload<T> } }[CallMessageType];

export interface CallPeer {
  userId: string;
  name: string;
}

export type CallEvents = {
  stateChanged: [state: CallState, previous: CallState];
  /** A remote track arrived; it is also in `remoteStream`. */
  remoteTrack: [track: MediaStreamTrack, stream: MediaStream];
  muted: [muted: boolean];
  /** Emitted exactly once. */
  ended: [info: { reason: CallEndReason; error?: ParleyError }];
};

/** What a call needs from its CallManager. */
export interface CallContext {
  signaling: SignalingClient;
  media(): Promise<{ track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration }>;
  options: {
    ringTimeoutMs: number;
    callConnectTimeoutMs: number;
    RTCPeerConnection?: typeof RTCPeerConnection;
  };
  onEnded(call: Call): void;
}

export interface AcceptOptions {
  /** Send this track instead of opening the microphone (it is not stopped when the call ends). */
  track?: MediaStreamTrack;
}

/**
 * A 1:1 call over a peer-to-peer RTCPeerConnection (Perfect Negotiation; the caller is impolite,
 * the callee polite), signaled through the server's call relay. Get one from
 * `CallManager.call()` or its `incoming` event.
 */
export class Call extends TypedEmitter<CallEvents> {
  readonly id: string;
  readonly direction: CallDirection;
  readonly peer: CallPeer;
  /** The other side's audio; attach it to an `<audio autoplay>` (or use `AudioPlayer`). */
  readonly remoteStream: MediaStream;
  #state: CallState = 'ringing';
  #endReason: CallEndReason | null = null;
  #startedAt: number | null = null;
  #muted = false;
  #pcm: PeerConnectionManager | null = null;
  #localTrack: MediaStreamTrack | null = null;
  #ownsTrack = false;
  /** Incoming, before accept: what the caller sent, applied in order on accept. */
  #early: ({ kind: 'description'; sdp: string } | { kind: 'candidate'; candidate: RTCIceCandidateInit })[] =
    [];
  #ringTimer: ReturnType<typeof setTimeout> | null = null;
  #failTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #ctx: CallContext;

  /** @internal Created by CallManager. */
  constructor(ctx: CallContext, init: { id: string; direction: CallDirection; peer: CallPeer }) {
    super();
    this.#ctx = ctx;
    this.id = init.id;
    this.direction = init.direction;
    this.peer = init.peer;
    this.remoteStream = new MediaStream();
    this.#ringTimer = setTimeout(() => {
      if (this.#state !== 'ringing') return;
      if (this.direction === 'outgoing') this.#sendAndEnd('call:hangup', 'no-answer', 'no-answer');
      else this.#end('no-answer');
    }, ctx.options.ringTimeoutMs);
  }

  get state(): CallState {
    return this.#state;
  }

  get endReason(): CallEndReason | null {
    return this.#endReason;
  }

  /** When audio started flowing (ms since epoch), for call timers. */
  get startedAt(): number | null {
    return this.#startedAt;
  }

  get muted(): boolean {
    return this.#muted;
  }

  /** The peer connection, once media is being set up (null while an incoming call rings). */
  get peerConnection(): PeerConnectionManager | null {
    return this.#pcm;
  }

  /** Incoming: answer. Opens the microphone (unless a track is given) and sets up media. */
  async accept(options: AcceptOptions = {}): Promise<void> {
    if (this.direction !== 'incoming')
      throw new ParleyError('CALL_FAILED', 'only incoming calls are accepted');
    if (this.#state !== 'ringing') throw new ParleyError('CALL_FAILED', `the call is ${this.#state}`);
    this.#clearRing();
    this.#setState('connecting');
    let media: { track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration };
    try {
      media = await this.#media(options.track);
    } catch (err) {
      const error = ParleyError.from(err, 'MEDIA_ERROR');
      this.#sendAndEnd('call:hangup', 'failed', 'failed', error);
      throw error;
    }
    if (this.#hasEnded()) {
      if (media.owned) media.track.stop();
      return;
    }
    this.#adoptTrack(media);
    const pcm = this.#createPeer(true, media.configuration);
    this.#ctx.signaling.send(
      'call:accept',
      { recipientId: this.peer.userId, callId: this.id },
      this.#onSendError,
    );
    const track = media.track;
    let first = true;
    for (const item of this.#early.splice(0)) {
      if (item.kind === 'candidate') {
        void pcm.handleRemoteCandidate(item.candidate);
        continue;
      }
      // The caller's offer created an audio transceiver: send on it, so the answer carries our voice.
      const hooks = first ? { beforeAnswer: (pc: RTCPeerConnection) => void pc.addTrack(track) } : {};
      first = false;
      void pcm.handleRemoteDescription({ type: 'offer', sdp: item.sdp }, hooks);
    }
    if (first) pcm.addTrack(track); // no offer kept (cannot happen with our caller, but stay correct)
  }

  /** Incoming, ringing: decline. The caller sees `rejected` (or `busy` with that reason). */
  reject(reason?: string): void {
    if (this.#state === 'ended') return;
    if (this.direction !== 'incoming' || this.#state !== 'ringing') return this.hangup();
    this.#sendAndEnd('call:reject', 'rejected', reason);
  }

  /** Ends the call (an incoming call that still rings is rejected). Idempotent. */
  hangup(reason?: string): void {
    if (this.#state === 'ended') return;
    if (this.direction === 'incoming' && this.#state === 'ringing') return this.reject(reason);
    this.#sendAndEnd('call:hangup', 'hangup', reason);
  }

  /** Mutes our microphone (the other side hears silence). */
  setMuted(muted: boolean): void {
    if (this.#muted === muted) return;
    this.#muted = muted;
    if (this.#localTrack) this.#localTrack.enabled = !muted;
    this.#pcm?.setAudioEnabled(!muted);
    this.emit('muted', muted);
  }

  /** Packets each way and the selected candidate pair (host, srflx or relay). */
  async getAudioStats(): Promise<AudioStats | null> {
    return this.#pcm ? this.#pcm.getAudioStats() : null;
  }

  // ---- driven by CallManager ---------------------------------------------------------------------------

  /** @internal */
  startOutgoing(media: { track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration }): void {
    if (this.#state === 'ended') {
      if (media.owned) media.track.stop();
      return;
    }
    this.#adoptTrack(media);
    // The caller is impolite: adding the track fires negotiationneeded, whose offer rings the callee.
    this.#createPeer(false, media.configuration).addTrack(media.track);
  }

  /** @internal A relayed call message for this call. */
  handle(msg: CallMessage): void {
    if (this.#state === 'ended') return;
    switch (msg.type) {
      case 'call:offer':
      case 'call:answer': {
        const { sdp } = msg.payload;
        if (msg.type === 'call:offer' && !this.#pcm) this.#early.push({ kind: 'description', sdp });
        else
          void this.#pcm?.handleRemoteDescription({
            type: msg.type === 'call:offer' ? 'offer' : 'answer',
            sdp,
          });
        return;
      }
      case 'call:ice-candidate': {
        const { candidate } = msg.payload;
        if (!candidate) return;
        if (this.#pcm) void this.#pcm.handleRemoteCandidate(candidate);
        else this.#early.push({ kind: 'candidate', candidate });
        return;
      }
      case 'call:accept':
        if (this.direction === 'outgoing' && this.#state === 'ringing') {
          this.#clearRing();
          this.#setState('connecting');
          this.#armFailTimer();
        }
        return;
      case 'call:reject':
        return this.#end(msg.payload.reason === 'busy' ? 'busy' : 'rejected');
      case 'call:hangup': {
        const { reason } = msg.payload;
        if (this.direction === 'incoming' && this.#state === 'ringing') return this.#end('cancelled');
        if (reason === 'disconnected') return this.#end('disconnected');
        if (reason === 'no-answer') return this.#end('no-answer');
        return this.#end('remote-hangup');
      }
      default:
        return unhandled(msg);
    }
  }

  /** @internal The signaling connection came back (resumed): make sure media recovers too. */
  signalingResumed(): void {
    const state = this.#pcm?.pc.iceConnectionState;
    if (state === 'disconnected' || state === 'failed') this.#pcm?.restartIce();
  }

  /** @internal Ends without telling the other side (e.g. our session is gone, so the server did). */
  endLocally(reason: CallEndReason, error?: ParleyError): void {
    this.#end(reason, error);
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** (A method, not a field comparison: the state changes across awaits.) */
  #hasEnded(): boolean {
    return this.#state === 'ended';
  }

  readonly #onSendError = {
    onError: (err: ParleyError) => {
      if (err.code === 'RECIPIENT_OFFLINE')
        this.#end(this.#state === 'ringing' ? 'offline' : 'disconnected', err);
      else this.#end('failed', err);
    },
  };

  async #media(track?: MediaStreamTrack) {
    const media = await this.#ctx.media();
    if (!track) return media;
    if (media.owned) media.track.stop();
    return { ...media, track, owned: false };
  }

  #adoptTrack(media: { track: MediaStreamTrack; owned: boolean }): void {
    this.#localTrack = media.track;
    this.#ownsTrack = media.owned;
    if (this.#muted) media.track.enabled = false;
  }

  #createPeer(polite: boolean, configuration: RTCConfiguration): PeerConnectionManager {
    const recipient = { recipientId: this.peer.userId, callId: this.id };
    const signaling = this.#ctx.signaling;
    const signaler: PeerSignaler = {
      sendDescription: (d) => {
        const sdp = d.sdp ?? '';
        const type = d.type === 'offer' ? 'call:offer' : d.type === 'answer' ? 'call:answer' : null;
        // Not even queued: the signaling connection is gone for good.
        if (type && !signaling.send(type, { ...recipient, sdp }, this.#onSendError)) {
          this.#end('disconnected', new ParleyError('DISCONNECTED', 'no signaling connection'));
        }
      },
      sendCandidate: (c) => {
        signaling.send('call:ice-candidate', {
          ...recipient,
          candidate: {
            candidate: c.candidate ?? '',
            sdpMid: c.sdpMid ?? null,
            sdpMLineIndex: c.sdpMLineIndex ?? null,
            usernameFragment: c.usernameFragment ?? null,
          },
        });
      },
    };
    const pcm = new PeerConnectionManager({
      polite,
      signaler,
      configuration,
      ...(this.#ctx.options.RTCPeerConnection
        ? { RTCPeerConnection: this.#ctx.options.RTCPeerConnection }
        : {}),
    });
    this.#pcm = pcm;
    pcm.on('track', (track, streams) => {
      const stream = this.remoteStream;
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
      this.emit('remoteTrack', track, streams[0] ?? stream);
    });
    pcm.on('connectionStateChanged', (state) => {
      if (state === 'connected') {
        this.#clearFailTimer();
        if (this.#state === 'connecting' || this.#state === 'ringing') {
          this.#clearRing();
          this.#startedAt ??= Date.now();
          this.#setState('active');
        }
      } else if (state === 'failed' || state === 'disconnected') {
        this.#armFailTimer(); // ICE restarts by itself meanwhile
      }
    });
    return pcm;
  }

  #armFailTimer(): void {
    if (this.#failTimer || this.#state === 'ended') return;
    this.#failTimer = setTimeout(() => {
      this.#failTimer = null;
      if (this.#pcm?.connectionState !== 'connected') {
        this.#sendAndEnd(
          'call:hangup',
          'failed',
          'failed',
          new ParleyError('CALL_FAILED', 'no media connection'),
        );
      }
    }, this.#ctx.options.callConnectTimeoutMs);
  }

  #clearFailTimer(): void {
    if (this.#failTimer) clearTimeout(this.#failTimer);
    this.#failTimer = null;
  }

  #clearRing(): void {
    if (this.#ringTimer) clearTimeout(this.#ringTimer);
    this.#ringTimer = null;
  }

  #sendAndEnd(
    type: 'call:hangup' | 'call:reject',
    reason: CallEndReason,
    wireReason?: string,
    error?: ParleyError,
  ): void {
    if (this.#state === 'ended') return;
    const payload = {
      recipientId: this.peer.userId,
      callId: this.id,
      ...(wireReason ? { reason: wireReason } : {}),
    };
    this.#ctx.signaling.send(type, payload);
    this.#end(reason, error);
  }

  #setState(state: CallState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('stateChanged', state, previous);
  }

  #end(reason: CallEndReason, error?: ParleyError): void {
    if (this.#state === 'ended') return;
    this.#endReason = reason;
    this.#clearRing();
    this.#clearFailTimer();
    this.#early = [];
    this.#pcm?.close();
    if (this.#ownsTrack) this.#localTrack?.stop();
    for (const t of this.remoteStream.getTracks()) this.remoteStream.removeTrack(t);
    this.#setState('ended');
    this.#ctx.onEnded(this);
    this.emit('ended', error ? { reason, error } : { reason });
  }
}

/** A call message type without a case above does not compile: `msg` would not be `never`. */
function unhandled(msg: never): void {
  void msg;
}
