import type { types } from 'mediasoup-client';
import type { TrackSource } from '../protocol/media.js';
import { voiceConstraints } from './defaults.js';
import { ParleyError } from './errors.js';
import type { SfuSession } from './sfu-session.js';

export type { TrackSource };
/** `off`: not published; `on`: published and live; `muted`: published, paused on the server. */
export type LocalTrackState = 'off' | 'on' | 'muted';

/** Camera simulcast: three layers, so the SFU can send each subscriber what its link carries. */
const CAMERA_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

export interface LocalMediaOptions {
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
  getDisplayMedia?: (options: DisplayMediaStreamOptions) => Promise<MediaStream>;
}

export interface LocalTracksPort {
  changed: (source: TrackSource, state: LocalTrackState) => void;
  error: (error: ParleyError) => void;
}

/** One encoding of a published track as the browser sends it (a camera has three: simulcast). */
export interface SendLayerStats {
  /** The simulcast layer's rid (`q`, `h`, `f`), or null for a track sent in one encoding. */
  rid: string | null;
  bytesSent: number;
  framesSent: number;
  /** Size of the frames this encoding sends now: the encoder lowers it when the CPU or link limits. */
  frameWidth: number;
  frameHeight: number;
  /** The browser's `qualityLimitationReason` (`none`, `cpu`, `bandwidth`, `other`), or null for audio. */
  qualityLimitationReason: string | null;
}

interface Published {
  track: MediaStreamTrack;
  producer: types.Producer | null;
  muted: boolean;
}

/**
 * What this client publishes in a conference room: the microphone, the camera and the screen, each
 * opened on demand, produced with its `source` (so the others know which is which), muted by
 * pausing the producer on the server, and republished on fresh media after a rebuild.
 */
export class LocalTracks {
  readonly #opts: LocalMediaOptions;
  readonly #sfu: () => SfuSession | null;
  readonly #port: LocalTracksPort;
  readonly #published = new Map<TrackSource, Published>();
  #closed = false;

  constructor(opts: LocalMediaOptions, sfu: () => SfuSession | null, port: LocalTracksPort) {
    this.#opts = opts;
    this.#sfu = sfu;
    this.#port = port;
  }

  state(source: TrackSource): LocalTrackState {
    const p = this.#published.get(source);
    return !p ? 'off' : p.muted ? 'muted' : 'on';
  }

  track(source: TrackSource): MediaStreamTrack | null {
    return this.#published.get(source)?.track ?? null;
  }

  /** Outbound statistics of a published source, one entry per encoding; empty when not published. */
  async sendStats(source: TrackSource): Promise<SendLayerStats[]> {
    const producer = this.#published.get(source)?.producer;
    if (!producer || producer.closed) return [];
    const out: SendLayerStats[] = [];
    for (const s of (await producer.getStats()).values() as IterableIterator<Record<string, unknown>>) {
      if (s.type !== 'outbound-rtp') continue;
      out.push({
        rid: typeof s.rid === 'string' ? s.rid : null,
        bytesSent: Number(s.bytesSent ?? 0),
        framesSent: Number(s.framesSent ?? 0),
        frameWidth: Number(s.frameWidth ?? 0),
        frameHeight: Number(s.frameHeight ?? 0),
        qualityLimitationReason:
          typeof s.qualityLimitationReason === 'string' ? s.qualityLimitationReason : null,
      });
    }
    return out;
  }

  /** Publishes `source`, or unmutes it if it is published and muted. */
  async enable(source: TrackSource): Promise<void> {
    const existing = this.#published.get(source);
    if (existing) {
      if (!existing.muted) return;
      if (existing.producer) await this.#sfuOrThrow().resumeProducer(existing.producer);
      existing.muted = false;
      this.#port.changed(source, 'on');
      return;
    }
    const track = await this.#open(source);
    if (this.#closed) {
      track.stop();
      return;
    }
    const entry: Published = { track, producer: null, muted: false };
    this.#published.set(source, entry);
    // The browser's own "Stop sharing" (or an unplugged camera) ends the track: unpublish it.
    track.addEventListener('ended', () => {
      if (this.#published.get(source) === entry) void this.disable(source).catch(() => undefined);
    });
    try {
      entry.producer = await this.#produce(source, track);
    } catch (err) {
      this.#published.delete(source);
      track.stop();
      throw ParleyError.from(err, 'PRODUCE_ERROR');
    }
    this.#port.changed(source, 'on');
  }

  /** Mutes a published source: its producer pauses on the server and the others are told. */
  async mute(source: TrackSource): Promise<void> {
    const p = this.#published.get(source);
    if (!p || p.muted) return;
    if (p.producer) await this.#sfuOrThrow().pauseProducer(p.producer);
    p.muted = true;
    this.#port.changed(source, 'muted');
  }

  /**
   * The server paused or resumed one of our producers without our asking (the server API's mute):
   * follow it, so that what we show matches what the room hears. Unmuting afterwards resumes it.
   */
  followServer(producerId: string, muted: boolean): void {
    for (const [source, p] of this.#published) {
      if (p.producer?.id !== producerId || p.muted === muted) continue;
      p.muted = muted;
      this.#port.changed(source, muted ? 'muted' : 'on');
    }
  }

  /** Unpublishes a source and stops its device. */
  async disable(source: TrackSource): Promise<void> {
    const p = this.#published.get(source);
    if (!p) return;
    this.#published.delete(source);
    p.track.stop();
    const sfu = this.#sfu();
    if (p.producer && sfu && !sfu.closed) await sfu.closeProducer(p.producer).catch(() => undefined);
    this.#port.changed(source, 'off');
  }

  /** After the room's media was rebuilt: publish every source again, muted ones paused. */
  async republish(): Promise<void> {
    for (const [source, p] of this.#published) {
      if (p.track.readyState === 'ended') {
        this.#published.delete(source);
        this.#port.changed(source, 'off');
        continue;
      }
      try {
        p.producer = await this.#produce(source, p.track);
        if (p.muted) await this.#sfuOrThrow().pauseProducer(p.producer);
      } catch (err) {
        this.#port.error(ParleyError.from(err, 'PRODUCE_ERROR'));
      }
    }
  }

  /** Stops every local device. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#published.values()) p.track.stop();
    this.#published.clear();
  }

  #produce(source: TrackSource, track: MediaStreamTrack): Promise<types.Producer> {
    return this.#sfuOrThrow().produce(track, {
      appData: { source },
      ...(source === 'camera' ? { encodings: CAMERA_ENCODINGS } : {}),
    });
  }

  #sfuOrThrow(): SfuSession {
    const sfu = this.#sfu();
    if (!sfu || sfu.closed) throw new ParleyError('MEDIA_ERROR', 'the room’s media is not up');
    return sfu;
  }

  async #open(source: TrackSource): Promise<MediaStreamTrack> {
    const devices = globalThis.navigator?.mediaDevices;
    try {
      if (source === 'screen') {
        const display = this.#opts.getDisplayMedia ?? devices?.getDisplayMedia?.bind(devices);
        if (!display) throw new ParleyError('MEDIA_ERROR', 'screen sharing is not available here');
        return firstTrack(await display({ video: true, audio: false }), 'video');
      }
      const open = this.#opts.getUserMedia ?? devices?.getUserMedia?.bind(devices);
      if (!open) {
        throw new ParleyError(
          'MEDIA_ERROR',
          'no camera or microphone access here (needs https or localhost)',
        );
      }
      return source === 'microphone'
        ? firstTrack(await open({ audio: voiceConstraints, video: false }), 'audio')
        : firstTrack(await open({ audio: false, video: { width: 1280, height: 720 } }), 'video');
    } catch (err) {
      throw ParleyError.from(err, 'MEDIA_ERROR');
    }
  }
}

function firstTrack(stream: MediaStream, kind: 'audio' | 'video'): MediaStreamTrack {
  const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  if (!track) throw new ParleyError('MEDIA_ERROR', `no ${kind} track`);
  return track;
}
