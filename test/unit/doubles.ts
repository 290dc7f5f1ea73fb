/**
 * In-process stand-ins for the ports that unit tests drive (RoomFanout, FloorMedia, Session): they
 * record what the component under test did, so a test asserts on it (RecordingLink: a session's
 * connection). The components themselves
 * and the state store are the real ones.
 */
import type { ServerMessage } from '../../src/protocol/index.js';
import type { Identity } from '../../src/server/auth/claims.js';
import type { FloorMedia } from '../../src/server/ptt/floor-media.js';
import type { RoomFanout } from '../../src/server/rooms/room-fanout.js';
import type { LiveSession } from '../../src/server/sessions/live-session.js';
import type { Session } from '../../src/server/sessions/session.js';
import type { SessionLink } from '../../src/server/sessions/session-link.js';
import type { Frame } from '../../src/server/wire/frame.js';

export function decodeFrame(f: Frame): ServerMessage {
  return JSON.parse(f.data.toString('utf8')) as ServerMessage;
}

export function identity(userId: string, over: Partial<Identity> = {}): Identity {
  return {
    userId,
    name: userId.toUpperCase(),
    rooms: null,
    canPublish: true,
    publishSources: null,
    canSubscribe: true,
    pttPriority: 0,
    canReplay: true,
    admin: false,
    expiresAt: null,
    ...over,
  };
}

/** A session that records what it is sent. */
export class RecordingSession implements Session {
  readonly rooms = new Map<string, { sessionId: string; userId: string; name: string; joinedAt: number }>();
  readonly received: ServerMessage[] = [];
  ended = false;
  suspended = false;
  constructor(
    readonly id: string,
    readonly identity: Identity,
  ) {}
  get userId(): string {
    return this.identity.userId;
  }
  join(roomId: string): this {
    this.rooms.set(roomId, {
      sessionId: this.id,
      userId: this.userId,
      name: this.identity.name,
      joinedAt: 0,
    });
    return this;
  }
  deliver(f: Frame): void {
    this.received.push(decodeFrame(f));
  }
  types(): string[] {
    return this.received.map((m) => m.type);
  }
}

/** Rooms whose members are the sessions given; broadcasts are recorded and delivered. */
export class RecordingFanout implements RoomFanout {
  readonly broadcasts: ServerMessage[] = [];
  readonly #members = new Map<string, Set<Session>>();
  add(roomId: string, ...sessions: Session[]): void {
    const set = this.#members.get(roomId) ?? new Set();
    for (const s of sessions) set.add(s);
    this.#members.set(roomId, set);
  }
  broadcast(roomId: string, f: Frame, except?: { id: string }): void {
    this.broadcasts.push(decodeFrame(f));
    this.deliverLocal(roomId, f, except?.id);
  }
  deliverLocal(roomId: string, f: Frame, exceptSessionId?: string): void {
    for (const s of this.#members.get(roomId) ?? []) if (s.id !== exceptSessionId) s.deliver(f);
  }
  localMembers(roomId: string): ReadonlySet<Session> | undefined {
    return this.#members.get(roomId);
  }
}

/** Media that follows the floor, recorded as `granted:<session>` / `released:<session>`. */
export class RecordingFloorMedia implements FloorMedia {
  readonly calls: string[] = [];
  floorGranted(session: Session): Promise<void> {
    this.calls.push(`granted:${session.id}`);
    return Promise.resolve();
  }
  floorReleased(session: Session): Promise<void> {
    this.calls.push(`released:${session.id}`);
    return Promise.resolve();
  }
}

/** A session's connection that records what it is sent and how it was closed. */
export class RecordingLink implements SessionLink<LiveSession> {
  static next = 0;
  readonly id = `conn-${++RecordingLink.next}`;
  closed = false;
  session: LiveSession | null = null;
  readonly sent: Frame[] = [];
  closedWith: number | null = null;
  constructor(readonly identity: Identity = aliceIdentity()) {}
  sendFrame(f: Frame): void {
    this.sent.push(f);
  }
  close(code: number): void {
    this.closed = true;
    this.closedWith = code;
  }
}

function aliceIdentity(): Identity {
  return identity('alice');
}
