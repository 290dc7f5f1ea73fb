import { clientDefaults } from './defaults.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { audioStatsFrom, type AudioStats } from './stats.js';

/** How descriptions and candidates reach the other peer (for calls: `call:offer`/`call:answer`/…). */
export interface PeerSignaler {
  sendDescription(description: RTCSessionDescriptionInit): void;
  sendCandidate(candidate: RTCIceCandidateInit): void;
}

export interface PeerConnectionManagerOptions {
  /**
   * Perfect Negotiation role. On an offer collision (glare) the polite peer rolls its own offer
   * back and answers; the impolite peer ignores the incoming offer. Exactly one side must be polite
   * (the Call API makes the callee polite).
   */
  polite: boolean;
  signaler: PeerSignaler;
  /** iceServers, iceTransportPolicy (`'relay'` forces TURN), … */
  configuration?: RTCConfiguration;
  /** Restart ICE by itself when it fails, or stays disconnected. Default true. */
  autoIceRestart?: boolean;
  /** Default 3 000 ms. */
  iceDisconnectedRestartMs?: number;
  /** Another RTCPeerConnection implementation (Node, tests). Default the global one. */
  RTCPeerConnection?: typeof RTCPeerConnection;
}

export interface IceCandidateErrorInfo {
  errorCode: number;
  errorText: string;
  url: string;
  address: string | null;
  port: number | null;
}

export type PeerConnectionEvents = {
  track: [track: MediaStreamTrack, streams: readonly MediaStream[]];
  connectionStateChanged: [state: RTCPeerConnectionState];
  iceConnectionStateChanged: [state: RTCIceConnectionState];
  signalingStateChanged: [state: RTCSignalingState];
  /** Both sides offered at once (glare); resolved per our role. */
  collision: [info: { polite: boolean; resolution: 'ignored-offer' | 'rolled-back' }];
  iceRestart: [];
  /** A STUN/TURN server could not be used (e.g. 401: bad or expired TURN credentials). */
  iceCandidateError: [info: IceCandidateErrorInfo];
  error: [error: ParleyError];
  closed: [];
};

/** Negotiation counters, for UIs and tests. */
export interface NegotiationCounters {
  offersSent: number;
  answersSent: number;
  collisions: number;
  ignoredOffers: number;
  rollbacks: number;
  iceRestarts: number;
}

/**
 * One RTCPeerConnection driven by **Perfect Negotiation** (W3C WebRTC §10.7, "Perfect
 * negotiation example"): either side may change media at any time (`negotiationneeded` makes an
 * offer), and offers that cross are resolved by role — `makingOffer`, `ignoreOffer` and
 * `isSettingRemoteAnswerPending` as in the spec's example. Remote messages are applied one at a
 * time, in order; trickled candidates that arrive before the remote description are queued.
 *
 * ```ts
 * const pcm = new PeerConnectionManager({ polite, signaler, configuration: { iceServers } });
 * pcm.addTrack(micTrack);                        // negotiationneeded → offer → signaler
 * signaling.on('call:answer', (p) => pcm.handleRemoteDescription({ type: 'answer', sdp: p.sdp }));
 * ```
 */
export class PeerConnectionManager extends TypedEmitter<PeerConnectionEvents> {
  readonly pc: RTCPeerConnection;
  readonly polite: boolean;
  readonly counters: NegotiationCounters = {
    offersSent: 0,
    answersSent: 0,
    collisions: 0,
    ignoredOffers: 0,
    rollbacks: 0,
    iceRestarts: 0,
  };
  readonly #signaler: PeerSignaler;
  readonly #autoIceRestart: boolean;
  readonly #iceDisconnectedRestartMs: number;
  #makingOffer = false;
  #ignoreOffer = false;
  #isSettingRemoteAnswerPending = false;
  #pendingCandidates: RTCIceCandidateInit[] = [];
  #chain: Promise<void> = Promise.resolve();
  #disconnectedTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(options: PeerConnectionManagerOptions) {
    super();
    const Ctor = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (!Ctor) throw new ParleyError('MEDIA_ERROR', 'WebRTC is not available here (no RTCPeerConnection)');
    this.polite = options.polite;
    this.#signaler = options.signaler;
    this.#autoIceRestart = options.autoIceRestart ?? true;
    this.#iceDisconnectedRestartMs =
      options.iceDisconnectedRestartMs ?? clientDefaults.iceDisconnectedRestartMs;
    const pc = new Ctor(options.configuration ?? {});
    this.pc = pc;
    pc.onnegotiationneeded = () => void this.#negotiate();
    pc.onicecandidate = ({ candidate }) => {
      // null marks the end of gathering; trickle works without relaying it.
      if (candidate && !this.#closed) this.#signaler.sendCandidate(candidate.toJSON());
    };
    pc.ontrack = ({ track, streams }) => this.emit('track', track, streams);
    pc.onconnectionstatechange = () => this.emit('connectionStateChanged', pc.connectionState);
    pc.onsignalingstatechange = () => this.emit('signalingStateChanged', pc.signalingState);
    pc.oniceconnectionstatechange = () => this.#onIceState(pc.iceConnectionState);
    pc.onicecandidateerror = (e: Event) => {
      const ev = e as RTCPeerConnectionIceErrorEvent;
      this.emit('iceCandidateError', {
        errorCode: ev.errorCode,
        errorText: ev.errorText,
        url: ev.url,
        address: ev.address,
        port: ev.port,
      });
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  get connectionState(): RTCPeerConnectionState {
    return this.pc.connectionState;
  }

  /** The Perfect Negotiation flags, for tests and debugging. */
  get negotiationStateForTesting() {
    return {
      makingOffer: this.#makingOffer,
      ignoreOffer: this.#ignoreOffer,
      isSettingRemoteAnswerPending: this.#isSettingRemoteAnswerPending,
      signalingState: this.pc.signalingState,
      pendingCandidates: this.#pendingCandidates.length,
    };
  }

  /** Adds a local track; negotiation follows by itself. */
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): RTCRtpSender {
    return this.pc.addTrack(track, ...streams);
  }

  /**
   * Swaps the track sent for `track.kind` without renegotiating (e.g. another microphone); with
   * no sender of that kind yet, adds it (which renegotiates). `null` + kind stops sending that kind.
   */
  async replaceTrack(track: MediaStreamTrack | null, kind: string | undefined = track?.kind): Promise<void> {
    const sender = this.pc
      .getTransceivers()
      .find(
        (t) =>
          t.currentDirection !== 'stopped' && t.receiver.track.kind === kind && t.direction !== 'inactive',
      )?.sender;
    if (sender) await sender.replaceTrack(track);
    else if (track) this.pc.addTrack(track);
  }

  /** Mutes or unmutes what we send (the track keeps running; the peer receives silence). */
  setAudioEnabled(enabled: boolean): void {
    for (const sender of this.pc.getSenders()) {
      if (sender.track?.kind === 'audio') sender.track.enabled = enabled;
    }
  }

  /** Restarts ICE (new credentials, new candidates): after a network change, or a failure. */
  restartIce(): void {
    if (this.#closed) return;
    this.counters.iceRestarts++;
    this.emit('iceRestart');
    this.pc.restartIce();
  }

  getStats(selector?: MediaStreamTrack | null): Promise<RTCStatsReport> {
    return this.pc.getStats(selector);
  }

  /** Packets, levels and the selected candidate pair (host, srflx or relay). */
  async getAudioStats(): Promise<AudioStats> {
    return audioStatsFrom(await this.pc.getStats());
  }

  /**
   * Applies the other side's offer or answer. `beforeAnswer` runs after an offer is applied and
   * before our answer is made: the place to attach local tracks to the transceivers the offer
   * created, so that the answer carries them without another round of negotiation.
   */
  handleRemoteDescription(
    description: RTCSessionDescriptionInit,
    hooks: { beforeAnswer?: (pc: RTCPeerConnection) => void | Promise<void> } = {},
  ): Promise<void> {
    return this.#enqueue(async () => {
      const pc = this.pc;
      const readyForOffer =
        !this.#makingOffer && (pc.signalingState === 'stable' || this.#isSettingRemoteAnswerPending);
      const offerCollision = description.type === 'offer' && !readyForOffer;
      this.#ignoreOffer = !this.polite && offerCollision;
      if (offerCollision) {
        this.counters.collisions++;
        this.emit('collision', {
          polite: this.polite,
          resolution: this.#ignoreOffer ? 'ignored-offer' : 'rolled-back',
        });
      }
      if (this.#ignoreOffer) {
        this.counters.ignoredOffers++;
        return;
      }
      this.#isSettingRemoteAnswerPending = description.type === 'answer';
      try {
        if (offerCollision) {
          // Implicit rollback (SRD of an offer in have-local-offer undoes ours): atomic, so no
          // negotiationneeded can slip an extra offer in between. Engines without it get an
          // explicit rollback first.
          this.counters.rollbacks++;
          try {
            await pc.setRemoteDescription(description);
          } catch (err) {
            if (pc.signalingState !== 'have-local-offer') throw err;
            await pc.setLocalDescription({ type: 'rollback' });
            await pc.setRemoteDescription(description);
          }
        } else {
          await pc.setRemoteDescription(description);
        }
      } finally {
        this.#isSettingRemoteAnswerPending = false;
      }
      await this.#flushCandidates();
      if (description.type === 'offer') {
        await hooks.beforeAnswer?.(pc);
        await setLocalDescription(pc);
        const local = pc.localDescription;
        if (local && !this.#closed) {
          this.counters.answersSent++;
          this.#signaler.sendDescription(toInit(local));
        }
      }
    });
  }

  /** Applies a trickled candidate; held until the remote description is set. */
  handleRemoteCandidate(candidate: RTCIceCandidateInit | null): Promise<void> {
    if (!candidate || !candidate.candidate) return Promise.resolve();
    return this.#enqueue(async () => {
      if (!this.pc.remoteDescription) {
        this.#pendingCandidates.push(candidate);
        return;
      }
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        // Candidates of an offer we ignored (glare, impolite side) are expected to fail.
        if (!this.#ignoreOffer) throw err;
      }
    });
  }

  /** Closes the connection. Idempotent and synchronous; emits `closed` once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#disconnectedTimer) clearTimeout(this.#disconnectedTimer);
    this.#disconnectedTimer = null;
    this.#pendingCandidates = [];
    this.pc.close();
    this.emit('closed');
    this.removeAllListeners();
  }

  // ---- internals ------------------------------------------------------------------------------------------

  async #negotiate(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#makingOffer = true;
      await setLocalDescription(this.pc);
      const local = this.pc.localDescription;
      if (local?.type === 'offer' && !this.#closed) {
        this.counters.offersSent++;
        this.#signaler.sendDescription(toInit(local));
      }
    } catch (err) {
      if (!this.#closed) this.emit('error', ParleyError.from(err, 'MEDIA_ERROR'));
    } finally {
      this.#makingOffer = false;
    }
  }

  async #flushCandidates(): Promise<void> {
    const queued = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const c of queued) {
      try {
        await this.pc.addIceCandidate(c);
      } catch {
        // a candidate of an earlier, superseded description
      }
    }
  }

  #enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#closed) return;
      try {
        await op();
      } catch (err) {
        if (!this.#closed) this.emit('error', ParleyError.from(err, 'MEDIA_ERROR'));
      }
    });
    this.#chain = run;
    return run;
  }

  #onIceState(state: RTCIceConnectionState): void {
    this.emit('iceConnectionStateChanged', state);
    if (this.#disconnectedTimer) clearTimeout(this.#disconnectedTimer);
    this.#disconnectedTimer = null;
    if (!this.#autoIceRestart || this.#closed) return;
    if (state === 'failed') {
      this.restartIce();
    } else if (state === 'disconnected') {
      this.#disconnectedTimer = setTimeout(() => {
        this.#disconnectedTimer = null;
        if (this.pc.iceConnectionState === 'disconnected') this.restartIce();
      }, this.#iceDisconnectedRestartMs);
    }
  }
}

/** `setLocalDescription()` without arguments (spec), or create + set where that is unsupported. */
async function setLocalDescription(pc: RTCPeerConnection): Promise<void> {
  try {
    await pc.setLocalDescription();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const desc = pc.signalingState === 'have-remote-offer' ? await pc.createAnswer() : await pc.createOffer();
    await pc.setLocalDescription(desc);
  }
}

function toInit(d: RTCSessionDescription): RTCSessionDescriptionInit {
  return { type: d.type, sdp: d.sdp };
}
