import type { Participant, Recording, RoomConfig, ServerPayload, Speaker } from '../protocol/index.js';
import type { AudioPlayer } from './audio-player.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { fetchRecordingAudio, fetchRecordings, type RecordingQuery } from './http-api.js';
import { openPttMicrophone, PttMedia, type MediaState } from './ptt-media.js';
import type { SignalingClient } from './signaling-client.js';
import type { AudioStats } from './stats.js';

export type { MediaState };

/** How far before a dropped connection a missed burst may have started (a long talk burst). */
const MISSED_LOOKBACK_MS = 120_000;

/**
 * - `idle`: not talking
 * - `requesting`: `ptt:start` sent, no answer yet (audio already flows to the SFU, which drops it
 *   until the floor is granted: the grant costs no extra round trip)
 * - `queued`: waiting in the room's floor queue (`queuePosition`)
 * - `talking`: we hold the floor; everyone hears us
 */
export type TalkState = 'idle' | 'requesting' | 'queued' | 'talking';
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
  participantLeft: [participant: Participant, reason: 'left' | 'disconnected' | 'removed'];
  participantsChanged: [participants: readonly Participant[]];
  mediaStateChanged: [state: MediaState];
  /**
   * A talk burst of this (recorded) channel was stored. `missed`: it was spoken while our
   * connection was down (found after reconnecting, or delivered late by the session resume).
   */
  recording: [recording: Recording, info: { missed: boolean }];
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
  /**
   * Recorded channels: after a reconnect, play the bursts spoken while the connection was down, in
   * order, through the channel's audio output. Default false (they are still emitted as
   * `recording` events with `missed: true`).
   */
  autoPlayMissed?: boolean;
  /** The fetch used for the recordings API (default the global one). */
  fetch?: typeof fetch;
}

/**
 * A push-to-talk channel on the SFU: joins the room, publishes the microphone as one audio
 * producer (paused until the floor is granted), consumes the room's single floor producer and plays
 * it, and turns the floor protocol into state and events. The channel holds the room (members) and
 * the floor (talk state, grant, queue, speaker); {@link PttMedia} holds the media.
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
  #config: RoomConfig;
  readonly #participants = new Map<string, Participant>();
  #speaker: Speaker | null;
  #talkState: TalkState = 'idle';
  #queuePosition: number | null = null;
  readonly #media: PttMedia;
  /** The user still holds the button (pressed and not released). */
  #wantTalk = false;
  /** Bumped by every press and release: a late answer to an old press changes nothing. */
  #pressGen = 0;
  #grant: { since: number; maxTalkMs: number } | null = null;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #options: PttChannelOptions;
  /** Server time our connection dropped; null while connected. */
  #offlineSince: number | null = null;
  /** Recordings already announced (a resumed session replays buffered ptt:recording). */
  readonly #seenRecordings = new Set<string>();
  /** Replays run one after another. */
  #replayChain: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    signaling: SignalingClient,
    state: ServerPayload<'room:state'>,
    options: PttChannelOptions,
  ) {
    super();
    this.#signaling = signaling;
    this.#options = options;
    this.roomId = state.roomId;
    this.#config = state.config;
    this.#speaker = state.speaker;
    for (const p of state.participants) this.#participants.set(p.sessionId, p);
    this.#media = new PttMedia(signaling, this.roomId, options, {
      transmitting: () => this.#wantTalk && this.#talkState === 'talking',
      mediaLost: () => {
        if (this.#talkState !== 'idle') this.#loseFloor('connection-lost');
      },
      stateChanged: (mediaState) => this.emit('mediaStateChanged', mediaState),
      error: (error) => this.emit('error', error),
      playbackBlocked: () => this.emit('playbackBlocked'),
    });
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
    const mic = openPttMicrophone(options.microphone);
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
    try {
      await channel.#media.start(await mic);
    } catch (err) {
      channel.leave().catch(() => undefined);
      throw ParleyError.from(err, 'MEDIA_ERROR');
    }
    return channel;
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
    return this.#media.state;
  }

  /** Why the microphone could not be opened: the channel is listen-only. */
  get microphoneError(): ParleyError | null {
    return this.#media.microphoneError;
  }

  /** False when listen-only (no microphone, or no `canPublish` grant). */
  get canTalk(): boolean {
    return this.#media.canTransmit;
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
    if (!this.#media.canTransmit) {
      throw (
        this.#media.microphoneError ??
        new ParleyError('FORBIDDEN', 'this channel is listen-only (no microphone or no grant)')
      );
    }
    this.#wantTalk = true;
    if (this.#talkState === 'talking' && this.#grant) return { result: 'granted', ...this.#grant };
    const gen = ++this.#pressGen;
    this.#setTalkState('requesting');
    this.#media.resumeProducer();
    let reply;
    try {
      reply = await this.#signaling.request('ptt:start', { roomId: this.roomId });
    } catch (err) {
      if (gen === this.#pressGen) {
        this.#media.pauseProducer();
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
        this.#media.pauseProducer();
        this.#setTalkState('idle');
        this.emit('denied', { speaker: reply.payload.speaker });
        return { result: 'denied', speaker: reply.payload.speaker };
      case 'ptt:queued':
        this.#media.pauseProducer();
        this.#onQueued(reply.payload);
        return { result: 'queued', position: reply.payload.position, speaker: reply.payload.speaker };
    }
  }

  /** Releases the floor, or leaves the queue (release). Safe to call in any state. */
  async stopTalking(): Promise<void> {
    this.#wantTalk = false;
    this.#pressGen++;
    if (this.#talkState === 'idle' || this.#closed) return;
    this.#media.pauseProducer();
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
  getStats(): Promise<{ inbound: AudioStats | null; outbound: AudioStats | null }> {
    return this.#media.getStats();
  }

  /** Output volume of the channel, 0..1. */
  setVolume(volume: number): void {
    this.#media.setVolume(volume);
  }

  setOutputMuted(muted: boolean): void {
    this.#media.setOutputMuted(muted);
  }

  /** Retries audio playback after `playbackBlocked`; call it from a click or key press. */
  resumeAudio(): void {
    this.#media.resumeAudio();
  }

  /**
   * The channel's recorded talk bursts, newest first (`GET /api/rooms/:roomId/recordings`).
   * Rejects with FORBIDDEN when the token has `canReplay: false`.
   */
  history(query: RecordingQuery = {}): Promise<Recording[]> {
    return fetchRecordings(
      this.#signaling.httpBase,
      () => this.#signaling.bearerToken(),
      this.roomId,
      query,
      this.#options.fetch,
    );
  }

  /**
   * Plays recording `id` through the channel's audio output (the same volume and mute as live
   * audio). Replays queue: each starts when the previous one has finished. Resolves when it has
   * played. Rejects with RECORDING_NOT_FOUND or FORBIDDEN from the server, or if it cannot play.
   */
  replay(id: string): Promise<void> {
    if (this.#closed) return Promise.reject(new ParleyError('CLOSED'));
    const run = this.#replayChain.then(async () => {
      if (this.#closed) throw new ParleyError('CLOSED');
      const clip = await fetchRecordingAudio(
        this.#signaling.httpBase,
        () => this.#signaling.bearerToken(),
        id,
        this.#options.fetch,
      );
      await this.#media.playClip(clip);
    });
    this.#replayChain = run.catch(() => undefined);
    return run;
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
    this.#media.close();
    this.emit('closed');
    this.removeAllListeners();
  }

  #onGranted(payload: ServerPayload<'ptt:granted'>): void {
    this.#grant = { since: payload.since, maxTalkMs: payload.maxTalkMs };
    this.#queuePosition = null;
    this.#media.resumeIfPaused();
    this.#setTalkState('talking');
    this.emit('granted', { since: payload.since, maxTalkMs: payload.maxTalkMs });
  }

  #onQueued(payload: ServerPayload<'ptt:queued'>): void {
    this.#queuePosition = payload.position;
    this.#setTalkState('queued');
    this.emit('queued', { position: payload.position, speaker: payload.speaker });
  }

  #loseFloor(reason: RevokeReason, by?: FloorSpeaker): void {
    this.#media.pauseProducer();
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
      // The server API ended the room: we are out of it already.
      s.on(
        'room:ended',
        mine(() => this.#close(false)),
      ),
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
        mine(() => this.#media.rebuild()),
      ),
      s.on(
        'ptt:recording',
        mine((p) => this.#announceRecording(p, this.#offlineSince !== null)),
      ),
      s.on('reconnecting', () => {
        this.#offlineSince ??= this.#signaling.serverNow();
      }),
      s.on('consumer:closed', (p) => this.#media.serverClosedConsumer(p.consumerId)),
      s.on('reconnected', ({ resumed, rooms }) => {
        if (this.#closed) return;
        if (!rooms.includes(this.roomId)) return; // roomLost handles it
        this.#media.signalingRestored(resumed);
        const since = this.#offlineSince;
        this.#offlineSince = null;
        if (since !== null) void this.#catchUp(since);
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
        this.#media.fail();
        this.emit('error', reason);
      }),
    );
  }

  #announceRecording(recording: Recording, missed: boolean): void {
    if (this.#seenRecordings.has(recording.id)) return;
    this.#seenRecordings.add(recording.id);
    this.emit('recording', recording, { missed });
    if (missed && this.#options.autoPlayMissed) this.replay(recording.id).catch(() => undefined);
  }

  /** After a reconnect: the bursts that ended after our connection dropped, oldest first. */
  async #catchUp(offlineSince: number): Promise<void> {
    let missed: Recording[];
    try {
      // A burst may have started before the drop: look back one maximum talk burst.
      missed = await this.history({ since: offlineSince - MISSED_LOOKBACK_MS, limit: 100 });
    } catch {
      return; // not a recorded channel we may replay; nothing to catch up
    }
    for (const r of missed.reverse()) {
      if (this.#closed) return;
      if (r.startedAt + r.durationMs >= offlineSince) this.#announceRecording(r, true);
    }
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
}
