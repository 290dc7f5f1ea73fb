import type { types } from 'mediasoup-client';
import type { Participant, RoomConfig, ServerPayload, Speaker } from '../protocol/index.js';
import { AudioPlayer } from './audio-player.js';
import { openMicrophone } from './microphone.js';
import { clientDefaults } from './defaults.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { SfuSession } from './sfu-session.js';
import type { SignalingClient } from './signaling-client.js';
import { audioStatsFrom, type AudioStats } from './stats.js';

/**
 * - `idle`: not talking
 * - `requesting`: `ptt:start` sent, no answer yet (audio already flows to the SFU, which drops it
 *   until the floor is granted: the grant costs no extra round trip)
 * - `queued`: waiting in the room's floor queue (`queuePosition`)
 * - `talking`: we hold the floor; everyone hears us
 */
export type TalkState = 'idle' | 'requesting' | 'queued' | 'talking';
/** The SFU side: transports being set up, up, recovering after a drop, or given up. */
export type MediaState = 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed';
/** Why we lost the floor: the server's reasons, or our connection dropped while talking. */
export type RevokeReason = ServerPayload<'ptt:revoked'>['reason'] | 'connection-lost';
export type FloorSpeaker = ServerPayload<'ptt:denied'>['speaker'];

export type TalkResult =
  | { result: 'granted'; since: number; maxTalkMs: number }
  | { result: 'denied'; speaker: FloorSpeaker }
  | { result: 'queued'; position: number; speaker: FloorSpeaker | null }
  /** Released (`stopTalking`) before the server answered. */
  | { result: 'cancelled' };

export type PttChannelEvents = {
  granted: [info: { since: number; maxTalkMs: number }];
  /** Someone else holds the floor: show "<speaker.name> is speaking". */
  denied: [info: { speaker: FloorSpeaker }];
  queued: [info: { position: number; speaker: FloorSpeaker | null }];
  revoked: [info: { reason: RevokeReason; by?: FloorSpeaker }];
  talkStateChanged: [state: TalkState, previous: TalkState];
  /** Who holds the floor now (null: free). `since` is server time: see `SignalingClient.serverNow()`. */
  speakerChanged: [speaker: Speaker | null, previous: Speaker | null];
  participantJoined: [participant: Participant];
  participantLeft: [participant: Participant, reason: 'left' | 'disconnected'];
  participantsChanged: [participants: readonly Participant[]];
  mediaStateChanged: [state: MediaState];
  /** The browser blocked audio playback until a user gesture: call `resumeAudio()` from a click. */
  playbackBlocked: [];
  error: [error: ParleyError];
  /** Emitted exactly once. */
  closed: [];
};

export interface PttChannelOptions {
  /** Display name in this room (default the token's name). */
  displayName?: string;
  /**
   * The microphone: a track (not stopped on close), a function opening one, or `false` to listen
   * only. Default: getUserMedia with speech-tuned constraints. If it cannot be opened, the channel
   * still joins, listen-only, with `microphoneError` set.
   */
  microphone?: MediaStreamTrack | (() => Promise<MediaStreamTrack>) | false;
  /** Where remote audio plays: an AudioPlayer, a container element, or `false` for none. Default document.body. */
  audio?: AudioPlayer | HTMLElement | false;
  /** ICE servers for the SFU transports (rarely needed). */
  iceServers?: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
}

/**
 * A push-to-talk channel on the SFU: joins the room, publishes the microphone as one audio
 * producer (paused until the floor is granted), consumes the room's single floor producer and plays
 * it, and turns the floor protocol into state and events.
 *
 * ```ts
 * const channel = await PttChannel.join(signaling, 'dispatch');
 * channel.on('speakerChanged', (s) => (banner.textContent = s ? `${s.name} is speaking` : ''));
 * button.onpointerdown = () => channel.startTalking();
 * button.onpointerup = () => channel.stopTalking();
 * ```
 */
export class PttChannel extends TypedEmitter<PttChannelEvents> {
  readonly roomId: string;
  readonly #signaling: SignalingClient;
  readonly #opts: PttChannelOptions;
  #config: RoomConfig;
  readonly #participants = new Map<string, Participant>();
  #speaker: Speaker | null;
  #talkState: TalkState = 'idle';
  #queuePosition: number | null = null;
  #mediaState: MediaState = 'connecting';
  #micTrack: MediaStreamTrack | null = null;
  #ownsMic = false;
  #micError: ParleyError | null = null;
  #sfu: SfuSession | null = null;
  #producer: types.Producer | null = null;
  #consumer: types.Consumer | null = null;
  readonly #player: AudioPlayer | null;
  readonly #ownsPlayer: boolean;
  /** The user still holds the button (pressed and not released). */
  #wantTalk = false;
  /** Bumped by every press and release: a late answer to an old press changes nothing. */
  #pressGen = 0;
  #mediaGen = 0;
  #grant: { since: number; maxTalkMs: number } | null = null;
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  private constructor(
    signaling: SignalingClient,
    state: ServerPayload<'room:state'>,
    options: PttChannelOptions,
  ) {
    super();
    this.#signaling = signaling;
    this.#opts = options;
    this.roomId = state.roomId;
    this.#config = state.config;
    this.#speaker = state.speaker;
    for (const p of state.participants) this.#participants.set(p.sessionId, p);
    const audio = options.audio;
    if (audio instanceof AudioPlayer) {
      this.#player = audio;
      this.#ownsPlayer = false;
    } else if (audio === false || !globalThis.document) {
      this.#player = null;
      this.#ownsPlayer = false;
    } else {
      this.#player = new AudioPlayer(audio);
      this.#ownsPlayer = true;
    }
    this.#player?.on('playbackBlocked', () => this.emit('playbackBlocked'));
    this.#subscribe();
  }

  /**
   * Joins `roomId` (a `ptt` room) and sets up media: microphone, transports, the floor consumer.
   * Rejects with NOT_PTT_ROOM for a conference room.
   */
  static async join(
    signaling: SignalingClient,
    roomId: string,
    options: PttChannelOptions = {},
  ): Promise<PttChannel> {
    const mic = PttChannel.#openMic(options.microphone);
    let state: ServerPayload<'room:state'>;
    try {
      state = (await signaling.joinRoom(roomId, options.displayName)).payload;
      if (state.config.mode !== 'ptt') {
        void signaling.leaveRoom(roomId).catch(() => undefined);
        throw new ParleyError('NOT_PTT_ROOM', `"${state.config.name}" is a ${state.config.mode} room`);
      }
    } catch (err) {
      void mic.then((m) => m.owned && m.track?.stop());
      throw err;
    }
    const channel = new PttChannel(signaling, state, options);
    const { track, owned, error } = await mic;
    channel.#micTrack = track;
    channel.#ownsMic = owned;
    channel.#micError = error;
    try {
      await channel.#setupMedia(channel.#mediaGen);
    } catch (err) {
      channel.leave().catch(() => undefined);
      throw ParleyError.from(err, 'MEDIA_ERROR');
    }
    return channel;
  }

  static async #openMic(
    mic: PttChannelOptions['microphone'],
  ): Promise<{ track: MediaStreamTrack | null; owned: boolean; error: ParleyError | null }> {
    if (mic === false) return { track: null, owned: false, error: null };
    if (mic && typeof mic !== 'function') return { track: mic, owned: false, error: null };
    try {
      return { track: await (mic ? mic() : openMicrophone()), owned: true, error: null };
    } catch (err) {
      return { track: null, owned: false, error: ParleyError.from(err, 'MEDIA_ERROR') };
    }
  }

  get config(): RoomConfig {
    return this.#config;
  }

  /** Everyone in the room (one entry per connection), in join order. */
  get participants(): readonly Participant[] {
    return [...this.#participants.values()].sort((a, b) => a.joinedAt - b.joinedAt);
  }

  /** Who holds the floor (null: free). */
  get speaker(): Speaker | null {
    return this.#speaker;
  }

  /** Our own session id in this room's participant list. */
  get sessionId(): string | null {
    return this.#signaling.sessionId;
  }

  get talkState(): TalkState {
    return this.#talkState;
  }

  get isTalking(): boolean {
    return this.#talkState === 'talking';
  }

  /** Our place in the floor queue while `talkState` is `queued` (1 = next). */
  get queuePosition(): number | null {
    return this.#queuePosition;
  }

  /** The current grant (server time of the grant and the longest allowed talk burst). */
  get grant(): { since: number; maxTalkMs: number } | null {
    return this.#grant;
  }

  get mediaState(): MediaState {
    return this.#mediaState;
  }

  /** Why the microphone could not be opened: the channel is listen-only. */
  get microphoneError(): ParleyError | null {
    return this.#micError;
  }

  /** False when listen-only (no microphone, or no `canPublish` grant). */
  get canTalk(): boolean {
    return this.#producer !== null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Asks for the floor (press). Resolves with the server's answer: `granted` (we are live),
   * `denied` with who speaks, or `queued` with our position. Call `stopTalking()` on release,
   * whatever the answer was.
   */
  async startTalking(): Promise<TalkResult> {
    if (this.#closed) throw new ParleyError('CLOSED');
    const producer = this.#producer;
    if (!producer) {
      throw (
        this.#micError ??
        new ParleyError('FORBIDDEN', 'this channel is listen-only (no microphone or no grant)')
      );
    }
    this.#wantTalk = true;
    if (this.#talkState === 'talking' && this.#grant) return { result: 'granted', ...this.#grant };
    const gen = ++this.#pressGen;
    this.#setTalkState('requesting');
    producer.resume();
    let reply;
    try {
      reply = await this.#signaling.request('ptt:start', { roomId: this.roomId });
    } catch (err) {
      if (gen === this.#pressGen) {
        this.#pauseProducer();
        this.#setTalkState('idle');
      }
      throw ParleyError.from(err, 'INTERNAL');
    }
    if (gen !== this.#pressGen || !this.#wantTalk) return { result: 'cancelled' };
    switch (reply.type) {
      case 'ptt:granted':
        this.#onGranted(reply.payload);
        return { result: 'granted', since: reply.payload.since, maxTalkMs: reply.payload.maxTalkMs };
      case 'ptt:denied':
        this.#pauseProducer();
        this.#setTalkState('idle');
        this.emit('denied', { speaker: reply.payload.speaker });
        return { result: 'denied', speaker: reply.payload.speaker };
      case 'ptt:queued':
        this.#pauseProducer();
        this.#onQueued(reply.payload);
        return { result: 'queued', position: reply.payload.position, speaker: reply.payload.speaker };
    }
  }

  /** Releases the floor, or leaves the queue (release). Safe to call in any state. */
  async stopTalking(): Promise<void> {
    this.#wantTalk = false;
    this.#pressGen++;
    if (this.#talkState === 'idle' || this.#closed) return;
    this.#pauseProducer();
    this.#grant = null;
    this.#queuePosition = null;
    this.#setTalkState('idle');
    try {
      await this.#signaling.request('ptt:stop', { roomId: this.roomId });
    } catch (err) {
      // A dropped connection releases the floor on the server by itself.
      if (!(err instanceof ParleyError) || !err.retryable) throw err;
    }
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

  /** Output volume of the channel, 0..1. */
  setVolume(volume: number): void {
    this.#player?.setVolume(volume);
  }

  setOutputMuted(muted: boolean): void {
    this.#player?.setMuted(muted);
  }

  /** Retries audio playback after `playbackBlocked`; call it from a click or key press. */
  resumeAudio(): void {
    this.#player?.resume();
  }

  /** Leaves the room (others see us go) and closes. */
  async leave(): Promise<void> {
    if (this.#closed) return;
    const leaving = this.#signaling.leaveRoom(this.roomId);
    this.#close(false);
    try {
      await leaving;
    } catch (err) {
      if (!(err instanceof ParleyError) || (err.code !== 'NOT_IN_ROOM' && !err.retryable)) throw err;
    }
  }

  /** Closes media and leaves the room without waiting. Idempotent and synchronous; emits `closed` once. */
  close(): void {
    this.#close(true);
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #close(sendLeave: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    if (sendLeave && this.#signaling.rooms.has(this.roomId)) {
      this.#signaling.leaveRoom(this.roomId).catch(() => undefined);
    }
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#teardownMedia();
    if (this.#ownsMic) this.#micTrack?.stop();
    this.#micTrack = null;
    if (this.#ownsPlayer) this.#player?.close();
    this.#setMediaState('closed');
    this.emit('closed');
    this.removeAllListeners();
  }

  async #setupMedia(gen: number): Promise<void> {
    this.#setMediaState('connecting');
    const { iceServers, iceTransportPolicy } = this.#opts;
    const sfu = await SfuSession.open({
      signaling: this.#signaling,
      roomId: this.roomId,
      ...(iceServers ? { iceServers } : {}),
      ...(iceTransportPolicy ? { iceTransportPolicy } : {}),
    });
    if (this.#closed || gen !== this.#mediaGen) {
      sfu.close();
      return;
    }
    this.#sfu = sfu;
    sfu.on('transportStateChanged', (_direction, state) => this.#onTransportState(sfu, state));
    sfu.on('consumerClosed', (consumer) => {
      if (consumer === this.#consumer) this.#rebuildMedia();
    });
    // Listen first: hearing the channel matters more than being able to talk.
    if (sfu.floorProducerId && sfu.recvTransport) {
      const consumer = await sfu.consume(sfu.floorProducerId);
      if (sfu.closed) return;
      this.#consumer = consumer;
      this.#player?.attach(consumer.track);
    }
    if (this.#micTrack && sfu.sendTransport) {
      const producer = await sfu.produce(this.#micTrack, { appData: { source: 'microphone' } });
      if (sfu.closed) return;
      this.#producer = producer;
      // Talking resumes it; until then not a single packet leaves (zeroRtpOnPause).
      if (!this.#wantTalk || this.#talkState !== 'talking') producer.pause();
    }
    if (!sfu.recvTransport && !sfu.sendTransport) this.#setMediaState('connected');
    else if (
      [sfu.recvTransport, sfu.sendTransport].every(
        (t) => !t || t.connectionState === 'connected' || !this.#usedBy(t),
      )
    ) {
      this.#setMediaState('connected');
    }
  }

  /** Whether a transport carries anything yet (mediasoup-client connects a transport on first use). */
  #usedBy(t: types.Transport): boolean {
    return t === this.#sfu?.recvTransport ? this.#consumer !== null : this.#producer !== null;
  }

  #onTransportState(sfu: SfuSession, state: types.ConnectionState): void {
    if (sfu !== this.#sfu || this.#closed) return;
    if (state === 'connected') {
      const all = [sfu.recvTransport, sfu.sendTransport].every(
        (t) => !t || !this.#usedBy(t) || t.connectionState === 'connected',
      );
      if (all) this.#setMediaState('connected');
    } else if (state === 'disconnected' || state === 'failed') {
      this.#setMediaState('reconnecting');
    }
  }

  #teardownMedia(): void {
    this.#producer = null;
    if (this.#consumer) this.#player?.detach(this.#consumer.track);
    this.#consumer = null;
    this.#sfu?.close();
    this.#sfu = null;
  }

  /** The server's media for us is gone (failed resume, worker death): build it again. */
  #rebuildMedia(): void {
    if (this.#closed) return;
    const gen = ++this.#mediaGen;
    this.#teardownMedia();
    if (this.#talkState !== 'idle') this.#loseFloor('connection-lost');
    this.#setMediaState('reconnecting');
    setTimeout(() => {
      if (this.#closed || gen !== this.#mediaGen) return;
      if (this.#signaling.state !== 'connected') return; // `reconnected` will call us again
      this.#setupMedia(gen).catch((err: unknown) => {
        if (gen !== this.#mediaGen || this.#closed) return;
        this.#setMediaState('failed');
        this.emit('error', ParleyError.from(err, 'MEDIA_ERROR'));
      });
    }, clientDefaults.mediaRetryDelayMs);
  }

  #pauseProducer(): void {
    const p = this.#producer;
    if (p && !p.closed && !p.paused) p.pause();
  }

  #onGranted(payload: ServerPayload<'ptt:granted'>): void {
    this.#grant = { since: payload.since, maxTalkMs: payload.maxTalkMs };
    this.#queuePosition = null;
    const p = this.#producer;
    if (p && !p.closed && p.paused) p.resume();
    this.#setTalkState('talking');
    this.emit('granted', { since: payload.since, maxTalkMs: payload.maxTalkMs });
  }

  #onQueued(payload: ServerPayload<'ptt:queued'>): void {
    this.#queuePosition = payload.position;
    this.#setTalkState('queued');
    this.emit('queued', { position: payload.position, speaker: payload.speaker });
  }

  #loseFloor(reason: RevokeReason, by?: FloorSpeaker): void {
    this.#pauseProducer();
    this.#grant = null;
    this.#queuePosition = null;
    const wasTalking = this.#talkState === 'talking';
    this.#setTalkState('idle');
    if (wasTalking) this.emit('revoked', by ? { reason, by } : { reason });
  }

  #subscribe(): void {
    const s = this.#signaling;
    const mine =
      <P extends { roomId: string }>(fn: (p: P) => void) =>
      (p: P) => {
        if (p.roomId === this.roomId && !this.#closed) fn(p);
      };
    this.#unsubscribe.push(
      s.on(
        'room:state',
        mine((p) => {
          // After a resume or a re-join: the authoritative snapshot.
          this.#config = p.config;
          this.#participants.clear();
          for (const x of p.participants) this.#participants.set(x.sessionId, x);
          this.emit('participantsChanged', this.participants);
          this.#setSpeaker(p.speaker);
        }),
      ),
      s.on(
        'room:participant-joined',
        mine((p) => {
          this.#participants.set(p.participant.sessionId, p.participant);
          this.emit('participantJoined', p.participant);
          this.emit('participantsChanged', this.participants);
        }),
      ),
      s.on(
        'room:participant-left',
        mine((p) => {
          this.#participants.delete(p.participant.sessionId);
          this.emit('participantLeft', p.participant, p.reason);
          this.emit('participantsChanged', this.participants);
        }),
      ),
      s.on(
        'ptt:speaker-changed',
        mine((p) => this.#setSpeaker(p.speaker)),
      ),
      s.on(
        'ptt:granted',
        mine((p) => {
          // Unsolicited: our queued request reached the head of the queue.
          if (this.#wantTalk) this.#onGranted(p);
          else void this.#signaling.request('ptt:stop', { roomId: this.roomId }).catch(() => undefined);
        }),
      ),
      s.on(
        'ptt:queued',
        mine((p) => {
          if (this.#talkState === 'queued') this.#onQueued(p);
        }),
      ),
      s.on(
        'ptt:revoked',
        mine((p) => this.#loseFloor(p.reason, p.by)),
      ),
      s.on(
        'media:closed',
        mine(() => this.#rebuildMedia()),
      ),
      s.on('consumer:closed', (p) => this.#sfu?.serverClosedConsumer(p.consumerId)),
      s.on('reconnected', ({ resumed, rooms }) => {
        if (this.#closed) return;
        if (!rooms.includes(this.roomId)) return; // roomLost handles it
        if (!resumed || !this.#sfu) return this.#rebuildMedia(); // a new session: the old transports are gone
        // Same session: the transports live on. If ICE suffered too (a network change), restart it.
        const sfu = this.#sfu;
        const healthy = [sfu.recvTransport, sfu.sendTransport].every(
          (t) => !t || !this.#usedBy(t) || t.connectionState === 'connected',
        );
        if (healthy) this.#setMediaState('connected');
        else void sfu.restartIce().catch(() => undefined);
      }),
      s.on('roomLost', (roomId, error) => {
        if (roomId !== this.roomId) return;
        this.emit('error', error);
        this.#close(false);
      }),
      s.on('disconnected', (reason) => {
        if (reason.code === 'CLOSED') return this.#close(false);
        // Reconnecting gave up. The server released our floor; the channel waits, media in place,
        // in case the app calls `signaling.reconnect()` (then `reconnected` brings it back).
        if (this.#talkState !== 'idle') this.#loseFloor('connection-lost');
        this.#setMediaState('failed');
        this.emit('error', reason);
      }),
    );
  }

  #setSpeaker(speaker: Speaker | null): void {
    const previous = this.#speaker;
    const same =
      previous === speaker ||
      (previous !== null &&
        speaker !== null &&
        previous.sessionId === speaker.sessionId &&
        previous.since === speaker.since);
    this.#speaker = speaker;
    // The floor moved away from us without a ptt:revoked: our connection dropped meanwhile.
    if (this.#talkState === 'talking' && speaker?.sessionId !== this.sessionId)
      this.#loseFloor('connection-lost');
    if (!same) this.emit('speakerChanged', speaker, previous);
  }

  #setTalkState(state: TalkState): void {
    const previous = this.#talkState;
    if (previous === state) return;
    this.#talkState = state;
    this.emit('talkStateChanged', state, previous);
  }

  #setMediaState(state: MediaState): void {
    if (this.#mediaState === state) return;
    this.#mediaState = state;
    this.emit('mediaStateChanged', state);
  }
}
