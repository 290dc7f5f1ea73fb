import type { Participant } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import type { Clock, Timer } from '../time/clock.js';
import type { Frame } from '../wire/frame.js';
import type { Session } from './session.js';
import type { SessionLink } from './session-link.js';

/**
 * The session manager's session: identity, room memberships and the live connection, if any. It
 * outlives a dropped connection for the resume grace window, buffering what it is sent.
 */
export class LiveSession implements Session {
  readonly id: string;
  identity: Identity;
  connection: SessionLink<LiveSession> | null;
  readonly rooms = new Map<string, Participant>();
  /** Hash of the current resume token (the token itself is never stored). */
  resumeTokenHash: string | null = null;
  graceTimer: Timer | null = null;
  /** When the connection last dropped (the clock's ms); the oldest suspended session goes first at the quota. */
  suspendedAt = 0;
  /** Frames sent while suspended, replayed on resume (read it; change it through the methods below). */
  buffered: Frame[] = [];
  /** Bytes in `buffered`. */
  #bufferedBytes = 0;
  /** True when the buffer overflowed and frames were dropped while suspended. */
  missedFrames = false;
  #ended = false;
  readonly #maxBuffered: number;
  readonly #maxBufferedBytes: number;
  /** The clock's timer half (a port, not a closure per session: every idle session holds it). */
  readonly #timers: Pick<Clock, 'clearTimeout'>;

  constructor(
    id: string,
    identity: Identity,
    connection: SessionLink<LiveSession> | null,
    opts: { timers: Pick<Clock, 'clearTimeout'>; maxBufferedFrames?: number; maxBufferedBytes?: number },
  ) {
    this.id = id;
    this.identity = identity;
    this.connection = connection;
    this.#timers = opts.timers;
    this.#maxBuffered = opts.maxBufferedFrames ?? defaults.suspendedBufferMaxFrames;
    this.#maxBufferedBytes = opts.maxBufferedBytes ?? defaults.suspendedBufferMaxBytes;
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
      this.buffered.push(f);
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
    const out = { frames: this.buffered, missedFrames: this.missedFrames };
    this.buffered = [];
    this.#bufferedBytes = 0;
    this.missedFrames = false;
    return out;
  }

  /** Frames from before the ones held here (an old node's buffer for an adopted session). */
  prependBuffered(frames: Frame[]): void {
    this.buffered = [...frames, ...this.buffered];
    for (const f of frames) this.#bufferedBytes += f.data.length;
    this.#trim();
  }

  /**
   * The buffer is bounded in frames and in bytes (issue 13, High 3: 256 frames of 60 KB replayed at
   * once dropped the resumed receiver again): the oldest go first, and the resume says missedFrames.
   */
  #trim(): void {
    while (
      this.buffered.length > 0 &&
      (this.buffered.length > this.#maxBuffered || this.#bufferedBytes > this.#maxBufferedBytes)
    ) {
      const dropped = this.buffered.shift();
      if (dropped) this.#bufferedBytes -= dropped.data.length;
      this.missedFrames = true;
    }
  }

  /** Stops the grace timer, if running. */
  cancelGrace(): void {
    if (this.graceTimer) this.#timers.clearTimeout(this.graceTimer);
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
    this.buffered = [];
    this.#bufferedBytes = 0;
  }
}
