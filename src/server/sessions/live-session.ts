import type { Participant } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import type { Clock, Timer } from '../time/clock.js';
import type { Frame } from '../wire/frame.js';
import type { Session } from './session.js';
import type { SessionLink } from './session-link.js';

/** What every session of a manager shares: one object, not three fields per session. */
export interface LiveSessionOptions {
  /** The clock's timer half (a port, not a closure per session: every idle session holds it). */
  timers: Pick<Clock, 'clearTimeout'>;
  /** Frames held while suspended. Default: defaults.suspendedBufferMaxFrames. */
  maxBufferedFrames?: number;
  /** Bytes held while suspended. Default: defaults.suspendedBufferMaxBytes. */
  maxBufferedBytes?: number;
}

/** What an empty buffer reads as: no array per session until something is buffered. */
const NO_FRAMES: readonly Frame[] = Object.freeze([]);

/**
 * The session manager's session: identity, room memberships and the live connection, if any. It
 * outlives a dropped connection for the resume grace window, buffering what it is sent.
 */
export class LiveSession implements Session {
  readonly id: string;
  identity: Identity;
  connection: SessionLink<LiveSession> | null;
  /** Built at the first join (or read): most idle sessions never join a room. */
  #rooms: Map<string, Participant> | null = null;
  /** Hash of the current resume token (the token itself is never stored). */
  resumeTokenHash: string | null = null;
  graceTimer: Timer | null = null;
  /** When the connection last dropped (the clock's ms); the oldest suspended session goes first at the quota. */
  suspendedAt = 0;
  /** Frames sent while suspended; null until the first (a live session never buffers). */
  #buffered: Frame[] | null = null;
  /** Bytes in `buffered`. */
  #bufferedBytes = 0;
  /** True when the buffer overflowed and frames were dropped while suspended. */
  missedFrames = false;
  #ended = false;
  /** Shared by the manager's sessions. */
  readonly #opts: LiveSessionOptions;

  constructor(
    id: string,
    identity: Identity,
    connection: SessionLink<LiveSession> | null,
    opts: LiveSessionOptions,
  ) {
    this.id = id;
    this.identity = identity;
    this.connection = connection;
    this.#opts = opts;
  }

  /** roomId → this session's participant entry in that room. Kept by the room service. */
  get rooms(): Map<string, Participant> {
    return (this.#rooms ??= new Map());
  }

  /** Frames sent while suspended, replayed on resume (read it; change it through the methods below). */
  get buffered(): readonly Frame[] {
    return this.#buffered ?? NO_FRAMES;
  }

  get userId(): string {
    return this.identity.userId;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get suspended(): boolean {
    return this.connection === null && !this.#ended;
  }

  deliver(f: Frame): void {
    if (this.connection) {
      this.connection.sendFrame(f);
    } else if (!this.#ended) {
      (this.#buffered ??= []).push(f);
      this.#bufferedBytes += f.data.length;
      this.#trim();
    }
  }

  /** Bytes held for a resume. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Hands the buffer over (to a resume or another node) and empties it. */
  takeBuffered(): { frames: Frame[]; missedFrames: boolean } {
    const out = { frames: this.#buffered ?? [], missedFrames: this.missedFrames };
    this.#buffered = null;
    this.#bufferedBytes = 0;
    this.missedFrames = false;
    return out;
  }

  /** Frames from before the ones held here (an old node's buffer for an adopted session). */
  prependBuffered(frames: Frame[]): void {
    this.#buffered = [...frames, ...(this.#buffered ?? [])];
    for (const f of frames) this.#bufferedBytes += f.data.length;
    this.#trim();
  }

  /**
   * The buffer is bounded in frames and in bytes (issue 13, High 3: 256 frames of 60 KB replayed at
   * once dropped the resumed receiver again): the oldest go first, and the resume says missedFrames.
   */
  #trim(): void {
    const buffered = this.#buffered;
    if (!buffered) return;
    const maxFrames = this.#opts.maxBufferedFrames ?? defaults.suspendedBufferMaxFrames;
    const maxBytes = this.#opts.maxBufferedBytes ?? defaults.suspendedBufferMaxBytes;
    while (buffered.length > 0 && (buffered.length > maxFrames || this.#bufferedBytes > maxBytes)) {
      const dropped = buffered.shift();
      if (dropped) this.#bufferedBytes -= dropped.data.length;
      this.missedFrames = true;
    }
  }

  /** Stops the grace timer, if running. */
  cancelGrace(): void {
    if (this.graceTimer) this.#opts.timers.clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  /**
   * Ends the session here: no more deliveries, no grace timer, no buffer. Idempotent and
   * synchronous; what ending means to rooms and calls is the session manager's `end`.
   */
  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.cancelGrace();
    this.#buffered = null;
    this.#bufferedBytes = 0;
  }
}
