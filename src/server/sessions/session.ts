import type { Participant } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import type { Connection, Frame } from '../signaling/connection.js';

/** Outbound frames kept for a suspended session, bounded so a long outage cannot grow memory. */
export const SUSPENDED_BUFFER_MAX_FRAMES = 256;

/**
 * A user's presence on this server: identity, room memberships and the live connection, if any.
 * It outlives a dropped connection for the resume grace window, buffering what it is sent.
 */
export class Session {
  readonly id: string;
  identity: Identity;
  connection: Connection | null;
  /** roomId → this session's participant entry in that room. */
  readonly rooms = new Map<string, Participant>();
  /** Hash of the current resume token (the token itself is never stored). */
  resumeTokenHash: string | null = null;
  graceTimer: NodeJS.Timeout | null = null;
  /** Frames sent while suspended, replayed on resume. */
  buffered: Frame[] = [];
  /** True when the buffer overflowed and frames were dropped while suspended. */
  missedFrames = false;
  ended = false;

  constructor(id: string, identity: Identity, connection: Connection | null) {
    this.id = id;
    this.identity = identity;
    this.connection = connection;
  }

  get userId(): string {
    return this.identity.userId;
  }

  get suspended(): boolean {
    return this.connection === null && !this.ended;
  }

  /** Delivers to the live connection, or buffers while suspended. */
  deliver(f: Frame): void {
    if (this.connection) {
      this.connection.sendFrame(f);
    } else if (!this.ended) {
      if (this.buffered.length >= SUSPENDED_BUFFER_MAX_FRAMES) {
        this.buffered.shift();
        this.missedFrames = true;
      }
      this.buffered.push(f);
    }
  }
}
