import type { ClientPayload, ServerMessage, ServerMessageOf, ServerPayload } from '../protocol/index.js';
import type { ReplyTo, RequestType } from '../protocol/registry.js';
import { clientDefaults } from './defaults.js';
import { ParleyError } from './errors.js';
import type { WebSocketLike } from './websocket.js';

/** What the resume flow needs from the connection. */
export interface ResumePort {
  /** A request on `ws`, bypassing the send queue. */
  requestOn<T extends RequestType>(
    ws: WebSocketLike,
    type: T,
    payload: ClientPayload<T>,
  ): Promise<ReplyTo<T>>;
  isCurrent(ws: WebSocketLike): boolean;
  /** Gives up on `ws` (it is dead or hung); the connection reconnects. */
  abandon(ws: WebSocketLike, reason: ParleyError): void;
  /** Hands a server message to the listeners (a fresh `room:state`). */
  deliver(msg: ServerMessage): void;
  roomLost(roomId: string, error: ParleyError): void;
}

export interface RestoreResult {
  /** True if the old session was resumed; false if rooms were re-joined on a new one. */
  resumed: boolean;
  missedFrames: boolean;
}

interface Snapshots {
  /** The rooms of session:resumed; null until it arrives. */
  expected: readonly string[] | null;
  seen: Set<string>;
  done: () => void;
}

/**
 * The session across reconnects: its id and resume token, the rooms it is in, and the flow after a
 * new socket's `welcome`: `session:resume` (the rooms never saw us leave), or, when that is not
 * possible or fails, the new session re-joins every room.
 */
export class SessionResume {
  readonly #port: ResumePort;
  readonly #snapshotTimeoutMs: number;
  #sessionId: string | null = null;
  #resumeToken: string | null = null;
  /** False after a `server:shutdown` without `resume`: that session is gone, re-join instead. */
  #canResume = false;
  readonly #rooms = new Map<string, { displayName?: string }>();
  /** After session:resumed: the rooms whose room:state snapshot has not arrived yet. */
  #snapshots: Snapshots | null = null;

  /** @param snapshotTimeoutMs how long to wait for the `room:state`s that follow session:resumed */
  constructor(port: ResumePort, snapshotTimeoutMs: number) {
    this.#port = port;
    this.#snapshotTimeoutMs = snapshotTimeoutMs;
  }

  get sessionId(): string | null {
    return this.#sessionId;
  }

  /** Rooms we are in, in join order. */
  get rooms(): string[] {
    return [...this.#rooms.keys()];
  }

  /** The first `welcome`: this session is the one to resume. */
  begin(welcome: ServerPayload<'welcome'>): void {
    this.#sessionId = welcome.sessionId;
    this.#resumeToken = welcome.resumeToken;
    this.#canResume = true;
  }

  /** `server:shutdown {resume: false}`: the session dies with the server, so the next connection re-joins. */
  forbidResume(): void {
    this.#canResume = false;
  }

  /** A request succeeded: remember the rooms to re-join. */
  track<T extends RequestType>(type: T, payload: ClientPayload<T>): void {
    if (type === 'room:join') {
      const { roomId, displayName } = payload as ClientPayload<'room:join'>;
      this.#rooms.set(roomId, displayName ? { displayName } : {});
    } else if (type === 'room:leave') {
      this.#rooms.delete((payload as ClientPayload<'room:leave'>).roomId);
    }
  }

  /** The server took us out of a room (`room:ended`): it is not re-joined after a reconnect. */
  forget(roomId: string): void {
    this.#rooms.delete(roomId);
  }

  /** A `room:state` event: delivered here (true) if a resume waits for the snapshots. */
  onRoomState(msg: ServerMessageOf<'room:state'>): boolean {
    const waiting = this.#snapshots;
    if (!waiting) return false;
    waiting.seen.add(msg.payload.roomId);
    this.#port.deliver(msg);
    checkSnapshots(waiting);
    return true;
  }

  /**
   * After a reconnect: resume the old session, or fall back to a fresh one and re-join the rooms.
   * Resolves with null if `ws` was replaced or abandoned meanwhile (the connection carries on).
   *
   * @param previous the welcome of the session we had
   */
  async restore(
    ws: WebSocketLike,
    welcome: ServerPayload<'welcome'>,
    previous: ServerPayload<'welcome'> | null,
    downtimeMs: number,
  ): Promise<RestoreResult | null> {
    const graceMs = (previous?.resumeGraceMs ?? 0) - clientDefaults.resumeMarginMs;
    let resumed = false;
    let missedFrames = false;
    if (this.#canResume && this.#resumeToken && downtimeMs < graceMs) {
      try {
        const snapshots = new Promise<void>((done) => {
          this.#snapshots = { expected: null, seen: new Set(), done };
        });
        const reply = await this.#port.requestOn(ws, 'session:resume', { resumeToken: this.#resumeToken });
        // The server follows session:resumed with a room:state per room: report `reconnected`
        // once listeners have the fresh snapshots (bounded, in case one never comes).
        const pendingSnapshots = this.#snapshots;
        if (pendingSnapshots) {
          pendingSnapshots.expected = reply.payload.rooms;
          checkSnapshots(pendingSnapshots);
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([
            snapshots,
            new Promise((r) => (timer = setTimeout(r, this.#snapshotTimeoutMs))),
          ]);
          clearTimeout(timer);
          this.#snapshots = null;
        }
        if (!this.#port.isCurrent(ws)) return null;
        resumed = true;
        missedFrames = reply.payload.missedFrames;
        this.#sessionId = reply.payload.sessionId;
        this.#resumeToken = reply.payload.resumeToken;
        for (const roomId of [...this.#rooms.keys()]) {
          if (!reply.payload.rooms.includes(roomId)) this.#rooms.delete(roomId);
        }
      } catch (err) {
        this.#snapshots = null;
        if (!this.#port.isCurrent(ws)) return null; // dropped again: the close handler carries on
        if (!(err instanceof ParleyError) || err.code !== 'RESUME_FAILED') {
          this.#port.abandon(ws, ParleyError.from(err, 'DISCONNECTED'));
          return null;
        }
      }
    }
    if (!resumed) {
      this.#sessionId = welcome.sessionId;
      this.#resumeToken = welcome.resumeToken;
      for (const [roomId, { displayName }] of [...this.#rooms]) {
        try {
          const state = await this.#port.requestOn(
            ws,
            'room:join',
            displayName ? { roomId, displayName } : { roomId },
          );
          this.#port.deliver(state);
        } catch (err) {
          if (!this.#port.isCurrent(ws)) return null;
          this.#rooms.delete(roomId);
          this.#port.roomLost(roomId, ParleyError.from(err, 'DISCONNECTED'));
        }
      }
    }
    return { resumed, missedFrames };
  }

  /** The connection is back on the restored session: resume it next time. */
  restored(): void {
    this.#canResume = true;
  }
}

function checkSnapshots(s: Snapshots): void {
  if (s.expected && s.expected.every((r) => s.seen.has(r))) s.done();
}
