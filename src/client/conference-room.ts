import type { types } from 'mediasoup-client';
import type { Participant, ServerPayload } from '../protocol/index.js';
import { AudioPlayer } from './audio-player.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { LocalTracks, type LocalTrackState, type SendLayerStats, type TrackSource } from './local-tracks.js';
import { SfuSession } from './sfu-session.js';
import type { SignalingClient } from './signaling-client.js';

export type { LocalTrackState, SendLayerStats, TrackSource };

/** What `ConferenceRoom.trackStats` reports of a received track (frame fields are 0 for audio). */
export interface TrackStats {
  packetsReceived: number;
  bytesReceived: number;
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
}

/** A track another member publishes, as this client receives it. */
export interface RemoteTrack {
  readonly producerId: string;
  readonly kind: 'audio' | 'video';
  /** What the publisher says it is; null if it did not say. */
  readonly source: TrackSource | null;
  /** The publisher paused it (muted): no media flows until it is resumed. */
  readonly muted: boolean;
  /** Attach to a `<video>` (or let the room play audio: the `audio` option). */
  readonly track: MediaStreamTrack;
}

/** A member of the room (one entry per connection), with the tracks we receive from it. */
export interface ConferenceParticipant extends Participant {
  /** This client's own entry. */
  readonly isLocal: boolean;
  /** Tracks received from this member, by producer id (empty for the local participant). */
  readonly tracks: ReadonlyMap<string, RemoteTrack>;
}

export type ConferenceRoomEvents = {
  participantJoined: [participant: ConferenceParticipant];
  participantLeft: [participant: ConferenceParticipant, reason: 'left' | 'disconnected' | 'removed'];
  participantsChanged: [participants: readonly ConferenceParticipant[]];
  /** A member's track is ready to play (subscribed automatically). */
  trackSubscribed: [track: RemoteTrack, participant: ConferenceParticipant];
  /** It is gone (unpublished, or its member left). */
  trackUnsubscribed: [track: RemoteTrack, participant: ConferenceParticipant];
  trackMuted: [track: RemoteTrack, participant: ConferenceParticipant];
  trackUnmuted: [track: RemoteTrack, participant: ConferenceParticipant];
  /**
   * The room's active speaker changed (the server's debounced dominant speaker; null: nobody, e.g.
   * they muted). The participant may be the local one.
   */
  activeSpeakerChanged: [speaker: ActiveSpeaker | null];
  /** One of our own sources changed: `off`, `on` or `muted`. */
  localTrackChanged: [source: TrackSource, state: LocalTrackState];
  /** The room's media was rebuilt after a reconnect that could not resume, or a media server loss. */
  mediaRebuilt: [];
  /** The browser blocked audio playback until a user gesture: call `resumeAudio()` from a click. */
  playbackBlocked: [];
  error: [error: ParleyError];
  /** Emitted exactly once. */
  closed: [];
};

export interface ConferenceRoomOptions {
  /** Display name in this room (default the token's name). */
  displayName?: string;
  /** Publish the microphone on join. Default true (a room still joins, muted, if it cannot be opened). */
  microphone?: boolean;
  /** Publish the camera on join. Default false. */
  camera?: boolean;
  /** Where remote audio plays: an AudioPlayer, a container element, or `false` for none. Default document.body. */
  audio?: AudioPlayer | HTMLElement | false;
  /** Opens local media (default `navigator.mediaDevices.getUserMedia` / `getDisplayMedia`). */
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
  getDisplayMedia?: (options: DisplayMediaStreamOptions) => Promise<MediaStream>;
  iceServers?: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
}

/** Who speaks now in the room (`room:active-speaker`). */
export interface ActiveSpeaker {
  readonly participant: ConferenceParticipant;
  /** The speaker's microphone producer. */
  readonly producerId: string;
}

interface Member {
  participant: Participant;
  tracks: Map<string, RemoteTrack & { consumer: types.Consumer; hidden?: boolean }>;
}

/** Height of the camera's full layer (local-tracks.ts opens it at 1280×720; layers ÷4, ÷2, ÷1). */
const CAMERA_FULL = { width: 1280, height: 720 };

/**
 * The simulcast spatial layer that suits a video rendered at `width`×`height` device pixels, for
 * a camera published the SDK's way (layers q, h, f at a quarter, half and full 1280×720): the
 * smallest layer at least as large as the tile. `layers` caps it (a producer with fewer layers).
 */
export function simulcastLayerFor(width: number, height: number, layers = 3): number {
  const ratio = Math.max(width / CAMERA_FULL.width, height / CAMERA_FULL.height);
  const layer = ratio <= 0.25 ? 0 : ratio <= 0.5 ? 1 : 2;
  return Math.max(0, Math.min(layer, layers - 1));
}

/** Spatial layers of a consumer, from mediasoup's scalabilityMode (e.g. L3T3); 1 if it has none. */
function spatialLayersOf(consumer: types.Consumer): number {
  const mode = consumer.rtpParameters.encodings?.[0]?.scalabilityMode;
  const m = mode ? /^[LS](\d+)T/.exec(mode) : null;
  return m ? Number(m[1]) : 1;
}

/**
 * A conference room on the SFU (mediasoup-demo's and LiveKit's model): everyone may publish a
 * microphone, a camera and a screen, and everyone receives everyone. It joins the room, subscribes
 * to every track the others publish (and drops it when it closes), keeps the members with their
 * tracks, turns mute into pausing the producer on the server (the others get `trackMuted`), and
 * rebuilds its media by itself after a reconnect that could not resume.
 *
 * ```ts
 * const room = await ConferenceRoom.join(parley.signaling, 'lobby', { camera: true });
 * room.on('trackSubscribed', (t, who) => t.kind === 'video' && (tileOf(who).srcObject = new MediaStream([t.track])));
 * muteButton.onclick = () => room.setMicrophoneEnabled(room.localState('microphone') !== 'on');
 * ```
 */
export class ConferenceRoom extends TypedEmitter<ConferenceRoomEvents> {
  readonly roomId: string;
  readonly #signaling: SignalingClient;
  readonly #opts: ConferenceRoomOptions;
  readonly #members = new Map<string, Member>();
  readonly #player: AudioPlayer | null;
  readonly #ownsPlayer: boolean;
  readonly #local: LocalTracks;
  readonly #unsubscribe: (() => void)[] = [];
  /** Producers announced while the media was (re)building: consumed once it is up. */
  readonly #announced = new Map<string, ServerPayload<'producer:new'>>();
  #sfu: SfuSession | null = null;
  #activeSpeaker: ServerPayload<'room:active-speaker'> | null = null;
  #microphoneError: ParleyError | null = null;
  /** The media (re)build in progress; later operations wait for it. */
  #building: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    signaling: SignalingClient,
    state: ServerPayload<'room:state'>,
    options: ConferenceRoomOptions,
  ) {
    super();
    this.#signaling = signaling;
    this.#opts = options;
    this.roomId = state.roomId;
    this.#reconcile(state.participants, false);
    ({ player: this.#player, owned: this.#ownsPlayer } = AudioPlayer.resolve(options.audio));
    this.#player?.on('playbackBlocked', () => this.emit('playbackBlocked'));
    this.#local = new LocalTracks(options, () => this.#sfu, {
      changed: (source, s) => this.emit('localTrackChanged', source, s),
      error: (error) => this.emit('error', error),
    });
    this.#subscribe();
  }

  /**
   * Joins `roomId` (a `conference` room), sets up media and publishes what the options ask for.
   * Rejects with ROOM_NOT_FOUND, FORBIDDEN, ROOM_FULL…, or INVALID_MESSAGE for a ptt room (use
   * PttChannel there).
   */
  static async join(
    signaling: SignalingClient,
    roomId: string,
    options: ConferenceRoomOptions = {},
  ): Promise<ConferenceRoom> {
    const state = (await signaling.joinRoom(roomId, options.displayName)).payload;
    if (state.config.mode !== 'conference') {
      void signaling.leaveRoom(roomId).catch(() => undefined);
      throw new ParleyError(
        'INVALID_MESSAGE',
        `"${state.config.name}" is a ${state.config.mode} room: use PttChannel`,
      );
    }
    const room = new ConferenceRoom(signaling, state, options);
    try {
      await room.#rebuild(false);
      if (options.microphone ?? true) {
        // No microphone (denied, absent) does not stop the join: the room stays, listen-only.
        await room.#local.enable('microphone').catch((err: unknown) => {
          room.#microphoneError = ParleyError.from(err, 'MEDIA_ERROR');
        });
      }
      if (options.camera) await room.#local.enable('camera');
    } catch (err) {
      room.close();
      throw ParleyError.from(err, 'MEDIA_ERROR');
    }
    return room;
  }

  /** Everyone in the room, ourselves included (one entry per connection), in join order. */
  get participants(): readonly ConferenceParticipant[] {
    return [...this.#members.values()].map((m) => this.#view(m)).sort((a, b) => a.joinedAt - b.joinedAt);
  }

  /** Why the microphone could not be opened at join (the room joined without it), if so. */
  get microphoneError(): ParleyError | null {
    return this.#microphoneError;
  }

  /** `off` (not published), `on`, or `muted` (published, paused on the server). */
  localState(source: TrackSource): LocalTrackState {
    return this.#local.state(source);
  }

  /** Our own published track of a source, if any (e.g. for a self-view). */
  localTrack(source: TrackSource): MediaStreamTrack | null {
    return this.#local.track(source);
  }

  /**
   * What the browser sends of our own source, one entry per encoding (the camera's three simulcast
   * layers): frame size, frames and bytes sent, and why the encoder limits quality (e.g. `cpu`,
   * when a busy machine makes it drop or shrink layers). Empty when the source is not published.
   */
  sendStats(source: TrackSource): Promise<SendLayerStats[]> {
    return this.#local.sendStats(source);
  }

  /** The microphone: first call publishes it; later calls mute (pause on the server) and unmute. */
  async setMicrophoneEnabled(enabled: boolean): Promise<void> {
    await this.#building;
    await (enabled ? this.#local.enable('microphone') : this.#local.mute('microphone'));
  }

  /** The camera: publishes it, or unpublishes it and turns the camera off. */
  async setCameraEnabled(enabled: boolean): Promise<void> {
    await this.#building;
    await (enabled ? this.#local.enable('camera') : this.#local.disable('camera'));
  }

  /** Screen sharing through getDisplayMedia; it also stops when the browser's "Stop sharing" is used. */
  async setScreenShareEnabled(enabled: boolean): Promise<void> {
    await this.#building;
    await (enabled ? this.#local.enable('screen') : this.#local.disable('screen'));
  }

  /** Who speaks now (the server's debounced dominant speaker), or null. */
  get activeSpeaker(): ActiveSpeaker | null {
    return this.#speakerView();
  }

  /**
   * Hide or show a received track (e.g. a video tile scrolled out of view or minimised): a hidden
   * track is paused on the server, so its media stops flowing to us. Idempotent; no-op for a
   * track we do not receive.
   */
  async setTrackVisibility(producerId: string, visible: boolean): Promise<void> {
    await this.#building;
    const sfu = this.#sfu;
    const track = this.#track(producerId);
    if (!sfu || !track || track.consumer.closed || !track.hidden === visible) return;
    track.hidden = !visible;
    try {
      await (visible ? sfu.resumeConsumer(track.consumer) : sfu.pauseConsumer(track.consumer));
    } catch (err) {
      track.hidden = visible;
      throw ParleyError.from(err, 'CONSUME_ERROR');
    }
  }

  /**
   * Which simulcast layer of a received camera track to get: 0 is the lowest (a quarter of the
   * resolution), 2 the full one. Resolves with the spatial layer the server now prefers; rejects
   * with CONSUME_ERROR for a track without layers (audio, a screen share).
   */
  async setPreferredLayers(
    producerId: string,
    spatialLayer: number,
    temporalLayer?: number,
  ): Promise<number> {
    await this.#building;
    const sfu = this.#sfu;
    const track = this.#track(producerId);
    if (!sfu || !track) throw new ParleyError('CONSUME_ERROR', 'no such received track');
    return (await sfu.setPreferredLayers(track.consumer, spatialLayer, temporalLayer)).spatialLayer;
  }

  /**
   * Tells the room how large a received video is drawn (CSS pixels; multiplied by the device
   * pixel ratio), so it gets the simulcast layer that suits it (`simulcastLayerFor`). A track
   * without layers (a screen share, audio) is left as it is. Resolves with the layer chosen, or
   * null for such a track.
   */
  async setRenderedSize(producerId: string, width: number, height: number): Promise<number | null> {
    await this.#building;
    const track = this.#track(producerId);
    if (!track || track.kind !== 'video') return null;
    const layers = spatialLayersOf(track.consumer);
    if (layers < 2) return null;
    const dpr = typeof globalThis.devicePixelRatio === 'number' ? globalThis.devicePixelRatio : 1;
    return this.setPreferredLayers(producerId, simulcastLayerFor(width * dpr, height * dpr, layers));
  }

  /**
   * Receive statistics of a subscribed track (inbound RTP), e.g. to show a link's health; for video
   * also the frames decoded and the size of the last one (which simulcast layer arrives).
   */
  async trackStats(producerId: string): Promise<TrackStats | null> {
    const t = this.#track(producerId);
    if (!t) return null;
    const out: TrackStats = {
      packetsReceived: 0,
      bytesReceived: 0,
      framesDecoded: 0,
      frameWidth: 0,
      frameHeight: 0,
    };
    for (const s of (await t.consumer.getStats()).values() as IterableIterator<Record<string, unknown>>) {
      if (s.type !== 'inbound-rtp') continue;
      out.packetsReceived += Number(s.packetsReceived ?? 0);
      out.bytesReceived += Number(s.bytesReceived ?? 0);
      out.framesDecoded += Number(s.framesDecoded ?? 0);
      out.frameWidth = Math.max(out.frameWidth, Number(s.frameWidth ?? 0));
      out.frameHeight = Math.max(out.frameHeight, Number(s.frameHeight ?? 0));
    }
    return out;
  }

  /** Starts audio the browser blocked (call from a click handler after `playbackBlocked`). */
  resumeAudio(): void {
    this.#player?.resume();
  }

  /** Leaves the room: media closes, local devices stop, the others see us leave. Idempotent. */
  async leave(): Promise<void> {
    if (this.#closed) return;
    const leaving = this.#signaling.leaveRoom(this.roomId);
    this.#close();
    try {
      await leaving;
    } catch (err) {
      if (!(err instanceof ParleyError) || (err.code !== 'NOT_IN_ROOM' && !err.retryable)) throw err;
    }
  }

  /** Closes media and leaves the room without waiting. Idempotent and synchronous; emits `closed` once. */
  close(): void {
    if (this.#closed) return;
    if (this.#signaling.rooms.has(this.roomId)) this.#signaling.leaveRoom(this.roomId).catch(() => undefined);
    this.#close();
  }

  // ---- internals ----------------------------------------------------------------------------------

  #subscribe(): void {
    const s = this.#signaling;
    const mine = (roomId: string) => roomId === this.roomId && !this.#closed;
    this.#unsubscribe.push(
      s.on('room:participant-joined', ({ roomId, participant }) => {
        if (!mine(roomId) || this.#members.has(participant.sessionId)) return;
        const member = { participant, tracks: new Map() };
        this.#members.set(participant.sessionId, member);
        this.emit('participantJoined', this.#view(member));
        this.emit('participantsChanged', this.participants);
      }),
      s.on('room:participant-left', ({ roomId, participant, reason }) => {
        if (!mine(roomId)) return;
        this.#removeMember(participant.sessionId, reason);
      }),
      // After a resume the server sends a fresh snapshot: it is authoritative.
      s.on('room:state', ({ roomId, participants }) => {
        if (mine(roomId)) this.#reconcile(participants, true);
      }),
      s.on('producer:new', (p) => {
        if (!mine(p.roomId) || p.sessionId === s.sessionId) return;
        this.#announced.set(p.producerId, p);
        void this.#building.then(() => this.#consumeAnnounced());
      }),
      s.on('producer:closed', ({ roomId, producerId }) => {
        if (mine(roomId)) this.#dropTrack(producerId);
      }),
      s.on('consumer:closed', ({ producerId }) => this.#dropTrack(producerId)),
      // Ours (the server API muted us) or another member's.
      s.on('producer:paused', (p) => mine(p.roomId) && this.#producerMuted(p, true)),
      s.on('producer:resumed', (p) => mine(p.roomId) && this.#producerMuted(p, false)),
      s.on('room:active-speaker', (p) => {
        if (!mine(p.roomId) || this.#activeSpeaker?.producerId === p.producerId) return;
        this.#activeSpeaker = p.producerId === null ? null : p;
        this.emit('activeSpeakerChanged', this.#speakerView());
      }),
      s.on('media:closed', ({ roomId }) => {
        if (mine(roomId)) this.#scheduleRebuild();
      }),
      s.on('reconnected', ({ resumed, rooms }) => {
        // Resumed: the server kept our transports; ICE restarts by itself if it must. Otherwise the
        // room was joined afresh and its media is gone on the server: rebuild it.
        if (!resumed && rooms.includes(this.roomId)) this.#scheduleRebuild();
      }),
      // The server API ended the room: we are out of it already.
      s.on('room:ended', ({ roomId }) => {
        if (mine(roomId)) this.#close();
      }),
      s.on('roomLost', (roomId) => {
        if (roomId === this.roomId) this.#close();
      }),
      s.on('disconnected', () => this.#close()),
    );
  }

  #scheduleRebuild(): void {
    this.#building = this.#building
      .then(() => this.#rebuild(true))
      .catch((err: unknown) => {
        this.emit('error', ParleyError.from(err, 'MEDIA_ERROR'));
      });
  }

  /** Opens the room's media; on a rebuild, drops what the old media received and republishes. */
  async #rebuild(again: boolean): Promise<void> {
    if (this.#closed) return;
    if (again) {
      this.#sfu?.close();
      this.#sfu = null;
      for (const member of this.#members.values())
        for (const producerId of [...member.tracks.keys()]) this.#dropTrack(producerId);
    }
    const sfu = await SfuSession.open({
      signaling: this.#signaling,
      roomId: this.roomId,
      ...(this.#opts.iceServers ? { iceServers: this.#opts.iceServers } : {}),
      ...(this.#opts.iceTransportPolicy ? { iceTransportPolicy: this.#opts.iceTransportPolicy } : {}),
    });
    if (this.#closed) {
      sfu.close();
      return;
    }
    this.#sfu = sfu;
    if (again) {
      await this.#local.republish();
      this.emit('mediaRebuilt');
    }
    await this.#consumeAnnounced();
  }

  /** Subscribes to every announced producer not consumed yet. */
  async #consumeAnnounced(): Promise<void> {
    const sfu = this.#sfu;
    if (!sfu || sfu.closed) return;
    for (const [producerId, p] of [...this.#announced]) {
      this.#announced.delete(producerId);
      let consumer: types.Consumer;
      try {
        consumer = await sfu.consume(producerId);
      } catch (err) {
        // A producer that closed meanwhile is not an error worth reporting.
        if (!(err instanceof ParleyError && err.code === 'CONSUME_ERROR')) {
          this.emit('error', ParleyError.from(err, 'CONSUME_ERROR'));
        }
        continue;
      }
      if (this.#closed || sfu !== this.#sfu) {
        consumer.close();
        return;
      }
      const member = this.#memberFor(p);
      const track = {
        producerId,
        kind: consumer.kind,
        source: p.source ?? null,
        muted: consumer.appData.producerPaused === true,
        track: consumer.track,
        consumer,
      };
      member.tracks.set(producerId, track);
      if (track.kind === 'audio') this.#player?.attach(track.track);
      this.emit('trackSubscribed', publicTrack(track), this.#view(member));
    }
  }

  #track(producerId: string) {
    for (const member of this.#members.values()) {
      const track = member.tracks.get(producerId);
      if (track) return track;
    }
    return undefined;
  }

  #speakerView(): ActiveSpeaker | null {
    const s = this.#activeSpeaker;
    const member = s?.sessionId ? this.#members.get(s.sessionId) : undefined;
    if (!s?.producerId || !member) return null;
    return { participant: this.#view(member), producerId: s.producerId };
  }

  #memberFor(p: ServerPayload<'producer:new'>): Member {
    let member = this.#members.get(p.sessionId);
    if (!member) {
      // Announced before its member's join reached us: the join (or the next snapshot) fills the name in.
      member = {
        participant: { sessionId: p.sessionId, userId: p.userId, name: p.userId, joinedAt: Date.now() },
        tracks: new Map(),
      };
      this.#members.set(p.sessionId, member);
    }
    return member;
  }

  #dropTrack(producerId: string): void {
    this.#announced.delete(producerId);
    for (const member of this.#members.values()) {
      const track = member.tracks.get(producerId);
      if (!track) continue;
      member.tracks.delete(producerId);
      if (track.kind === 'audio') this.#player?.detach(track.track);
      if (!track.consumer.closed) track.consumer.close();
      this.emit('trackUnsubscribed', publicTrack(track), this.#view(member));
    }
  }

  #producerMuted(p: { producerId: string; sessionId: string }, muted: boolean): void {
    if (p.sessionId === this.#signaling.sessionId) this.#local.followServer(p.producerId, muted);
    else this.#setMuted(p.producerId, muted);
  }

  #setMuted(producerId: string, muted: boolean): void {
    for (const member of this.#members.values()) {
      const track = member.tracks.get(producerId);
      if (!track || track.muted === muted) continue;
      const updated = { ...track, muted };
      member.tracks.set(producerId, updated);
      this.emit(muted ? 'trackMuted' : 'trackUnmuted', publicTrack(updated), this.#view(member));
    }
  }

  #removeMember(sessionId: string, reason: 'left' | 'disconnected' | 'removed'): void {
    const member = this.#members.get(sessionId);
    if (!member) return;
    for (const producerId of [...member.tracks.keys()]) this.#dropTrack(producerId);
    this.#members.delete(sessionId);
    this.emit('participantLeft', this.#view(member), reason);
    this.emit('participantsChanged', this.participants);
  }

  /** Brings the members in line with a snapshot (join, or after a resume). */
  #reconcile(participants: readonly Participant[], announce: boolean): void {
    const present = new Set(participants.map((p) => p.sessionId));
    for (const sessionId of [...this.#members.keys()]) {
      if (!present.has(sessionId)) this.#removeMember(sessionId, 'disconnected');
    }
    let changed = false;
    for (const participant of participants) {
      const member = this.#members.get(participant.sessionId);
      if (member) {
        member.participant = participant;
        continue;
      }
      const added = { participant, tracks: new Map() };
      this.#members.set(participant.sessionId, added);
      changed = true;
      if (announce) this.emit('participantJoined', this.#view(added));
    }
    if (announce && changed) this.emit('participantsChanged', this.participants);
  }

  #view(member: Member): ConferenceParticipant {
    const tracks = new Map<string, RemoteTrack>();
    for (const [id, t] of member.tracks) tracks.set(id, publicTrack(t));
    return {
      ...member.participant,
      isLocal: member.participant.sessionId === this.#signaling.sessionId,
      tracks,
    };
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#local.close();
    this.#sfu?.close();
    this.#sfu = null;
    if (this.#ownsPlayer) this.#player?.close();
    this.#members.clear();
    this.#announced.clear();
    this.emit('closed');
    this.removeAllListeners();
  }
}

function publicTrack(t: RemoteTrack): RemoteTrack {
  return { producerId: t.producerId, kind: t.kind, source: t.source, muted: t.muted, track: t.track };
}
