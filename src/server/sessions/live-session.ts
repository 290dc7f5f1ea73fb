import type { Participant } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import type { Timer } from '../time/clock.js';
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
  /** Frames sent while suspended, replayed on resume. */
  buffered: Frame[] = [];
  /** True when the buffer overflowed and frames were dropped while suspended. */
  missedFrames = false;
  #ended = false;
  readonly #maxBuffered: number;
  readonly #clearTimer: (t: Timer) => void;

  constructor(
    id: string,
    identity: Identity,
    connection: SessionLink<LiveSession> | null,
    opts: { clearTimer: (t: Timer) => void; maxBufferedFrames?: number },
  ) {
    this.id = id;
    this.identity = identity;
    this.connection = connection;
    this.#clearTimer = opts.clearTimer;
    this.#maxBuffered = opts.maxBufferedFrames ?? defaults.suspendedBufferMaxFrames;
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
      if (this.buffered.length >= this.#maxBuffered) {
        this.buffered.shift();
        this.missedFrames = true;
      }
      this.buffered.push(f);
    }
  }

  /** Stops the grace timer, if running. */
  cancelGrace(): void {
    if (this.graceTimer) this.#clearTimer(this.graceTimer);
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
  }
}
