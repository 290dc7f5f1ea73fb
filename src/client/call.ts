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
  /**
   * The server refused to ring the callee (CALL_NOT_ALLOWED: with CALL_POLICY=shared-room, the
   * callee shares no room with you); it does not say whether they are online.
   */
  | 'not-allowed'
  /** The other side (or we) lost the connection for good. */
  | 'disconnected'
  /** Media could not be set up, or the connection could not be restored in time. */
  | 'failed'
  /** Incoming: another device of ours accepted or declined the call first. */
  | 'answered-elsewhere';

/** The relayed call messages a Call handles: the protocol registry's `call` relays. */
export type CallMessageType = CallRelayType;
/** One relayed call message, as a union discriminated by `type`. */
export type CallMessage = { [T in CallMessageType]: { type: T; payload: ServerPayload<T> } }[CallMessageType];

export interface CallPeer {
  userId: string;
  name: string;
}

/** What we send as video: the camera, a screen share (which replaces the camera while it lasts), or nothing. */
export interface LocalVideoState {
  camera: boolean;
  screen: boolean;
  /** The track being sent: the screen while sharing, else the camera, else null. */
  track: MediaStreamTrack | null;
}

export type CallEvents = {
  stateChanged: [state: CallState, previous: CallState];
  /**
   * A remote track arrived (audio, or video when the other side turns its camera or a screen share
   * on, again each time it does); it is also in `remoteStream` (video also in `remoteVideoStream`).
   */
  remoteTrack: [track: MediaStreamTrack, stream: MediaStream];
  /** The other side stopped sending a track (e.g. turned its camera off); it left the streams. */
  remoteTrackRemoved: [track: MediaStreamTrack];
  /** Our camera or screen share went on or off (also when the browser's "Stop sharing" ends it). */
  localVideoChanged: [state: LocalVideoState];
  muted: [muted: boolean];
  /** Emitted exactly once. */
  ended: [info: { reason: CallEndReason; error?: ParleyError }];
};

/** What a call needs from its CallManager. */
export interface CallContext {
  signaling: SignalingClient;
  media(): Promise<{ track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration }>;
  /** Opens the camera (`owned`: stopped by the call when it is turned off or the call ends). */
  camera(): Promise<{ track: MediaStreamTrack; owned: boolean }>;
  /** Opens a screen share. */
  screen(): Promise<{ track: MediaStreamTrack; owned: boolean }>;
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
  /** Answer with the camera on. Default false (it can be turned on later: `setCameraEnabled`). */
  video?: boolean;
  /** Send this track as the camera (implies `video`; it is not stopped when the call ends). */
  videoTrack?: MediaStreamTrack;
}

interface VideoSource {
  track: MediaStreamTrack;
  owned: boolean;
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
  /**
   * Everything the other side sends: its audio, and its video while it sends some. Attach it to an
   * `<audio autoplay>` (or use `AudioPlayer`), or to a `<video autoplay playsinline>` for both.
   */
  readonly remoteStream: MediaStream;
  /** The other side's video only (its camera or screen share), for a muted `<video>`; empty without. */
  readonly remoteVideoStream: MediaStream;
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
  #camera: VideoSource | null = null;
  #screen: VideoSource | null = null;
  #videoTransceiver: RTCRtpTransceiver | null = null;
  /** Our video's stream id on the wire: the other side learns of the track's removal through it. */
  #localVideoStream: MediaStream | null = null;
  /** Camera and screen changes, one at a time. */
  #videoChain: Promise<void> = Promise.resolve();
  readonly #watchedStreams = new WeakSet<MediaStream>();
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
    this.remoteVideoStream = new MediaStream();
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

  /** Whether our camera is on (while a screen share replaces it, it stays on underneath). */
  get cameraEnabled(): boolean {
    return this.#camera !== null;
  }

  get screenSharing(): boolean {
    return this.#screen !== null;
  }

  /** The video track we send: the screen while sharing, else the camera, else null. */
  get localVideoTrack(): MediaStreamTrack | null {
    return this.#screen?.track ?? this.#camera?.track ?? null;
  }

  get localVideo(): LocalVideoState {
    return { camera: this.cameraEnabled, screen: this.screenSharing, track: this.localVideoTrack };
  }

  /** The other side's video track while it sends one (its camera or screen share), else null. */
  get remoteVideoTrack(): MediaStreamTrack | null {
    return this.remoteVideoStream.getVideoTracks()[0] ?? null;
  }

  /**
   * Turns our camera on or off, at any time in the call (before `accept` too). Sending video where
   * none was sent renegotiates through Perfect Negotiation; turning it off stops the camera.
   */
  setCameraEnabled(enabled: boolean): Promise<void> {
    return this.#video(async () => {
      if (enabled === this.cameraEnabled) return;
      if (!enabled) {
        this.#dropSource(this.#camera);
        this.#camera = null;
      } else {
        const source = await this.#ctx.camera();
        if (this.#hasEnded() || this.#camera) return void (source.owned && source.track.stop());
        this.#camera = source;
      }
      await this.#applyVideo();
    });
  }

  /**
   * Shares a screen, window or tab (getDisplayMedia) in place of the camera until
   * `stopScreenShare()` or the browser's "Stop sharing"; the camera comes back if it was on.
   */
  startScreenShare(): Promise<void> {
    return this.#video(async () => {
      if (this.#screen) return;
      const source = await this.#ctx.screen();
      if (this.#hasEnded() || this.#screen) return void (source.owned && source.track.stop());
      this.#screen = source;
      source.track.addEventListener('ended', () => {
        if (this.#screen?.track === source.track) void this.stopScreenShare();
      });
      await this.#applyVideo();
    });
  }

  stopScreenShare(): Promise<void> {
    return this.#video(async () => {
      if (!this.#screen) return;
      this.#dropSource(this.#screen);
      this.#screen = null;
      await this.#applyVideo();
    });
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
      [media] = await Promise.all([
        this.#media(options.track),
        options.videoTrack
          ? this.#useCamera({ track: options.videoTrack, owned: false })
          : options.video
            ? this.setCameraEnabled(true)
            : undefined,
      ]);
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
      // The caller's offer created an audio transceiver: send on it, so the answer carries our voice
      // (and our camera on its video transceiver, if it offered one).
      const hooks = first
        ? {
            beforeAnswer: async (pc: RTCPeerConnection) => {
              pc.addTrack(track);
              await this.#applyVideo({ inAnswer: true });
            },
          }
        : {};
      first = false;
      void pcm.handleRemoteDescription({ type: 'offer', sdp: item.sdp }, hooks);
    }
    if (first) {
      pcm.addTrack(track); // no offer kept (cannot happen with our caller, but stay correct)
      void this.#video(() => this.#applyVideo());
    }
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
  startOutgoing(
    media: { track: MediaStreamTrack; owned: boolean; configuration: RTCConfiguration },
    camera: VideoSource | null = null,
  ): void {
    if (this.#state === 'ended') {
      if (media.owned) media.track.stop();
      if (camera?.owned) camera.track.stop();
      return;
    }
    this.#adoptTrack(media);
    this.#camera ??= camera;
    // The caller is impolite: adding the tracks fires negotiationneeded (once, for both: they are
    // added in the same task), whose offer rings the callee.
    this.#createPeer(false, media.configuration).addTrack(media.track);
    void this.#video(() => this.#applyVideo());
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
      else if (err.code === 'CALL_ANSWERED_ELSEWHERE') this.#end('answered-elsewhere', err);
      else if (err.code === 'CALL_NOT_ALLOWED') this.#end('not-allowed', err);
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
    pcm.on('track', (track, streams) => this.#onRemoteTrack(track, streams[0]));
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

  /** Runs camera and screen changes one after another; a failure rejects that change only. */
  #video(op: () => Promise<void>): Promise<void> {
    if (this.#hasEnded()) return Promise.resolve();
    const run = this.#videoChain.then(op);
    this.#videoChain = run.catch(() => undefined);
    return run.catch((err: unknown) => {
      throw ParleyError.from(err, 'MEDIA_ERROR');
    });
  }

  #useCamera(source: VideoSource): Promise<void> {
    return this.#video(async () => {
      this.#dropSource(this.#camera);
      this.#camera = source;
      await this.#applyVideo();
    });
  }

  #dropSource(source: VideoSource | null): void {
    if (source?.owned) source.track.stop();
  }

  /**
   * Puts the video we should send (screen, else camera, else nothing) on our one video
   * transceiver: `replaceTrack` when only the track changes (no renegotiation), a direction change
   * (sendrecv ⇄ recvonly, renegotiated by Perfect Negotiation) when video starts or stops. With
   * `inAnswer`, runs between the caller's offer and our answer, so the answer carries it.
   */
  async #applyVideo({ inAnswer = false } = {}): Promise<void> {
    const pcm = this.#pcm;
    if (!pcm || pcm.closed) return; // applied when the peer is created
    const track = this.localVideoTrack;
    let t = this.#videoTransceiver;
    if (!t) {
      if (!track && !inAnswer) return;
      // A video transceiver the other side's offer made, that we do not send on yet: answer on it.
      t =
        pcm.pc
          .getTransceivers()
          .find((x) => x.receiver.track.kind === 'video' && x.mid !== null && !x.sender.track) ?? null;
      if (!t) {
        if (!track) return;
        this.#localVideoStream ??= new MediaStream();
        this.#videoTransceiver = pcm.pc.addTransceiver(track, {
          direction: 'sendrecv',
          streams: [this.#localVideoStream],
        });
        this.#emitLocalVideo();
        return;
      }
      this.#videoTransceiver = t;
      this.#localVideoStream ??= new MediaStream();
      t.sender.setStreams?.(this.#localVideoStream);
    }
    if (t.sender.track !== track) await t.sender.replaceTrack(track);
    const direction: RTCRtpTransceiverDirection = track ? 'sendrecv' : 'recvonly';
    if (t.direction !== direction && !pcm.closed) t.direction = direction;
    this.#emitLocalVideo();
  }

  #emitLocalVideo(): void {
    this.emit('localVideoChanged', this.localVideo);
  }

  #onRemoteTrack(track: MediaStreamTrack, stream: MediaStream | undefined): void {
    if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
    if (track.kind === 'video' && !this.remoteVideoStream.getTracks().includes(track)) {
      this.remoteVideoStream.addTrack(track);
    }
    // The other side stopping a track (camera off) removes it from its stream: that is our signal.
    if (stream && !this.#watchedStreams.has(stream)) {
      this.#watchedStreams.add(stream);
      stream.addEventListener('removetrack', (e) => this.#onRemoteTrackRemoved(e.track));
    }
    this.emit('remoteTrack', track, stream ?? this.remoteStream);
  }

  #onRemoteTrackRemoved(track: MediaStreamTrack): void {
    if (this.#hasEnded()) return;
    const had = this.remoteStream.getTracks().includes(track);
    this.remoteStream.removeTrack(track);
    this.remoteVideoStream.removeTrack(track);
    if (had) this.emit('remoteTrackRemoved', track);
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
    this.#dropSource(this.#camera);
    this.#dropSource(this.#screen);
    this.#camera = this.#screen = null;
    for (const t of this.remoteStream.getTracks()) this.remoteStream.removeTrack(t);
    for (const t of this.remoteVideoStream.getTracks()) this.remoteVideoStream.removeTrack(t);
    this.#setState('ended');
    this.#ctx.onEnded(this);
    this.emit('ended', error ? { reason, error } : { reason });
  }
}

/** A call message type without a case above does not compile: `msg` would not be `never`. */
function unhandled(msg: never): void {
  void msg;
}
