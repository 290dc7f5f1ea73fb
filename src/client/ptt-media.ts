import type { types } from 'mediasoup-client';
import { AudioPlayer } from './audio-player.js';
import { clientDefaults } from './defaults.js';
import { ParleyError } from './errors.js';
import { openMicrophone } from './microphone.js';
import { SfuSession } from './sfu-session.js';
import type { SignalingClient } from './signaling-client.js';
import { audioStatsFrom, type AudioStats } from './stats.js';

/** The SFU side: transports being set up, up, recovering after a drop, or given up. */
export type MediaState = 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed';

export interface PttMediaOptions {
  /** The microphone: a track (not stopped on close), a function opening one, or `false` to listen only. */
  microphone?: MediaStreamTrack | (() => Promise<MediaStreamTrack>) | false;
  /** Where remote audio plays: an AudioPlayer, a container element, or `false` for none. */
  audio?: AudioPlayer | HTMLElement | false;
  iceServers?: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
}

/** What the media side needs from its channel. */
export interface PttMediaPort {
  /** Whether the floor is ours and the user still holds the button (then a new producer is not paused). */
  transmitting(): boolean;
  /** The media was torn down to be rebuilt: whatever the floor state, we are not heard any more. */
  mediaLost(): void;
  stateChanged(state: MediaState): void;
  /** Rebuilding failed. */
  error(error: ParleyError): void;
  playbackBlocked(): void;
}

export interface OpenedMicrophone {
  track: MediaStreamTrack | null;
  /** Opened by us, so stopped on close. */
  owned: boolean;
  /** Why it could not be opened: the channel is listen-only. */
  error: ParleyError | null;
}

/** Opens the microphone per the `microphone` option; never rejects (a failure is listen-only). */
export async function openPttMicrophone(mic: PttMediaOptions['microphone']): Promise<OpenedMicrophone> {
  if (mic === false) return { track: null, owned: false, error: null };
  if (mic && typeof mic !== 'function') return { track: mic, owned: false, error: null };
  try {
    return { track: await (mic ? mic() : openMicrophone()), owned: true, error: null };
  } catch (err) {
    return { track: null, owned: false, error: ParleyError.from(err, 'MEDIA_ERROR') };
  }
}

/**
 * The media of a PTT channel on the SFU: the microphone, published as one audio producer (paused
 * until the floor is granted), the room's floor producer consumed and played, and their recovery
 * (ICE restart on the same session, a rebuild on a new one).
 */
export class PttMedia {
  readonly #signaling: SignalingClient;
  readonly #roomId: string;
  readonly #opts: PttMediaOptions;
  readonly #port: PttMediaPort;
  #state: MediaState = 'connecting';
  #micTrack: MediaStreamTrack | null = null;
  #ownsMic = false;
  #micError: ParleyError | null = null;
  #sfu: SfuSession | null = null;
  #producer: types.Producer | null = null;
  /** True once #setup has consumed the floor and produced the microphone: only then is `connected` reported. */
  #setUp = false;
  #consumer: types.Consumer | null = null;
  readonly #player: AudioPlayer | null;
  readonly #ownsPlayer: boolean;
  #gen = 0;
  #closed = false;

  constructor(signaling: SignalingClient, roomId: string, options: PttMediaOptions, port: PttMediaPort) {
    this.#signaling = signaling;
    this.#roomId = roomId;
    this.#opts = options;
    this.#port = port;
    ({ player: this.#player, owned: this.#ownsPlayer } = AudioPlayer.resolve(options.audio));
    this.#player?.on('playbackBlocked', () => port.playbackBlocked());
  }

  get state(): MediaState {
    return this.#state;
  }

  get microphoneError(): ParleyError | null {
    return this.#micError;
  }

  /** False when listen-only (no microphone, or no `canPublish` grant). */
  get canTransmit(): boolean {
    return this.#producer !== null;
  }

  /** Sets up the microphone, transports and the floor consumer. */
  async start(mic: OpenedMicrophone): Promise<void> {
    this.#micTrack = mic.track;
    this.#ownsMic = mic.owned;
    this.#micError = mic.error;
    await this.#setup(this.#gen);
  }

  /** Audio flows to the SFU (which drops it until the floor is granted). */
  resumeProducer(): void {
    const p = this.#producer;
    if (!p || p.closed) return;
    p.resume();
    this.#micOnSender(p);
  }

  /** The floor was granted: make sure we are heard. */
  resumeIfPaused(): void {
    const p = this.#producer;
    if (p && !p.closed && p.paused) {
      p.resume();
      this.#micOnSender(p);
    }
  }

  /** The producer is published without its track (see #setup): the first talk puts it on. */
  #micOnSender(p: types.Producer): void {
    const sender = p.rtpSender;
    if (sender && sender.track === null && this.#micTrack) {
      sender.replaceTrack(this.#micTrack).catch(() => undefined);
    }
  }

  pauseProducer(): void {
    const p = this.#producer;
    if (p && !p.closed && !p.paused) p.pause();
  }

  /** What we receive (the floor consumer's inbound-rtp) and send (our producer's outbound-rtp). */
  async getStats(): Promise<{ inbound: AudioStats | null; outbound: AudioStats | null }> {
    const consumer = this.#consumer;
    const producer = this.#producer;
    const [inbound, outbound] = await Promise.all([
      consumer && !consumer.closed ? consumer.getStats().then(audioStatsFrom) : null,
      producer && !producer.closed ? producer.getStats().then(audioStatsFrom) : null,
    ]);
    return { inbound, outbound };
  }

  setVolume(volume: number): void {
    this.#player?.setVolume(volume);
  }

  setOutputMuted(muted: boolean): void {
    this.#player?.setMuted(muted);
  }

  resumeAudio(): void {
    this.#player?.resume();
  }

  /** Plays a recorded clip through the channel's audio output (volume, mute, container). */
  playClip(clip: Blob): Promise<void> {
    if (!this.#player)
      return Promise.reject(new ParleyError('MEDIA_ERROR', 'this channel has no audio output'));
    return this.#player.playClip(clip);
  }

  /** The server closed a consumer (e.g. its producer went away). */
  serverClosedConsumer(consumerId: string): void {
    this.#sfu?.serverClosedConsumer(consumerId);
  }

  /** The signaling connection came back: same session, check ICE; a new session, rebuild. */
  signalingRestored(resumed: boolean): void {
    if (this.#closed) return;
    if (!resumed || !this.#sfu) return this.rebuild(); // a new session: the old transports are gone
    // Same session: the transports live on. If ICE suffered too (a network change), restart it.
    const sfu = this.#sfu;
    const healthy = [sfu.recvTransport, sfu.sendTransport].every(
      (t) => !t || !this.#usedBy(t) || t.connectionState === 'connected',
    );
    if (healthy) this.#setState('connected');
    else void sfu.restartIce().catch(() => undefined);
  }

  /** Reconnecting gave up: media stays in place in case the app reconnects. */
  fail(): void {
    this.#setState('failed');
  }

  /** The server's media for us is gone (failed resume, worker death): build it again. */
  rebuild(): void {
    if (this.#closed) return;
    const gen = ++this.#gen;
    this.#teardown();
    this.#port.mediaLost();
    this.#setState('reconnecting');
    setTimeout(() => {
      if (this.#closed || gen !== this.#gen) return;
      if (this.#signaling.state !== 'connected') return; // `reconnected` will call us again
      this.#setup(gen).catch((err: unknown) => {
        if (gen !== this.#gen || this.#closed) return;
        this.#setState('failed');
        this.#port.error(ParleyError.from(err, 'MEDIA_ERROR'));
      });
    }, clientDefaults.mediaRetryDelayMs);
  }

  /** Idempotent and synchronous. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#teardown();
    if (this.#ownsMic) this.#micTrack?.stop();
    this.#micTrack = null;
    if (this.#ownsPlayer) this.#player?.close();
    this.#setState('closed');
  }

  async #setup(gen: number): Promise<void> {
    this.#setUp = false;
    this.#setState('connecting');
    const { iceServers, iceTransportPolicy } = this.#opts;
    const sfu = await SfuSession.open({
      signaling: this.#signaling,
      roomId: this.#roomId,
      ...(iceServers ? { iceServers } : {}),
      ...(iceTransportPolicy ? { iceTransportPolicy } : {}),
    });
    if (this.#closed || gen !== this.#gen) {
      sfu.close();
      return;
    }
    this.#sfu = sfu;
    sfu.on('transportStateChanged', (_direction, state) => this.#onTransportState(sfu, state));
    sfu.on('consumerClosed', (consumer) => {
      if (consumer === this.#consumer) this.rebuild();
    });
    // Listen first: hearing the channel matters more than being able to talk.
    if (sfu.floorProducerId && sfu.recvTransport) {
      const consumer = await sfu.consume(sfu.floorProducerId);
      if (sfu.closed) return;
      this.#consumer = consumer;
      this.#player?.attach(consumer.track);
    }
    if (this.#micTrack && sfu.sendTransport) {
      const producer = await sfu.produce(this.#micTrack, {
        appData: { source: 'microphone' },
        // Published silent: the sender loses its track the moment it exists, before the transport
        // connects, so not a packet leaves before the first talk (not even during the produce
        // round trip, before pause() could act). Talking puts the microphone on (#micOnSender);
        // after that, pause() (zeroRtpOnPause: the sender goes inactive) keeps it silent.
        onRtpSender: (sender) => void sender.replaceTrack(null).catch(() => undefined),
      });
      if (sfu.closed) return;
      this.#producer = producer;
      if (this.#port.transmitting()) this.#micOnSender(producer);
      else producer.pause();
    }
    this.#setUp = true;
    if (!sfu.recvTransport && !sfu.sendTransport) this.#setState('connected');
    else if (
      [sfu.recvTransport, sfu.sendTransport].every(
        (t) => !t || t.connectionState === 'connected' || !this.#usedBy(t),
      )
    ) {
      this.#setState('connected');
    }
  }

  /** Whether a transport carries anything yet (mediasoup-client connects a transport on first use). */
  #usedBy(t: types.Transport): boolean {
    return t === this.#sfu?.recvTransport ? this.#consumer !== null : this.#producer !== null;
  }

  #onTransportState(sfu: SfuSession, state: types.ConnectionState): void {
    if (sfu !== this.#sfu || this.#closed) return;
    // `connected` means ready to talk: not before the microphone's producer exists (the receive
    // transport connects while it is still being created; pressing talk then would be refused).
    if (state === 'connected' && !this.#setUp) return;
    if (state === 'connected') {
      const all = [sfu.recvTransport, sfu.sendTransport].every(
        (t) => !t || !this.#usedBy(t) || t.connectionState === 'connected',
      );
      if (all) this.#setState('connected');
    } else if (state === 'disconnected' || state === 'failed') {
      this.#setState('reconnecting');
    }
  }

  #teardown(): void {
    this.#setUp = false;
    this.#producer = null;
    if (this.#consumer) this.#player?.detach(this.#consumer.track);
    this.#consumer = null;
    this.#sfu?.close();
    this.#sfu = null;
  }

  #setState(state: MediaState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#port.stateChanged(state);
  }
}
