import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CLOSE_CODES } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import type { StateStore } from '../state/state-store.js';
import { systemClock, type Clock } from '../time/clock.js';
import type { Frame } from '../wire/frame.js';
import { LiveSession } from './live-session.js';
import type { Session } from './session.js';
import type { SessionLink } from './session-link.js';

export type EndReason = 'left' | 'disconnected' | 'shutdown' | 'removed';

/** What the session manager tells the rest of the server. */
export type SessionEvents = {
  /** A session ended for good: leave its rooms, hang up its calls. */
  ended: [session: Session, reason: EndReason];
  /** A session lost its connection but may still be resumed (e.g. the PTT floor is released). */
  suspended: [session: Session];
  /** Cross-node resume: a session arrived from another node; rebuild what it had (its rooms). */
  adopted: [session: Session];
  /** A local session was resumed on another node: drop it quietly (no leaves). */
  movedAway: [session: Session];
};

export interface SessionManagerOptions {
  store: StateStore;
  graceMs: number;
  log: Logger;
  cluster?: ClusterLink | null;
  clock?: Clock;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * Owns sessions: creation on authentication, suspension when the socket drops, resume within the
 * grace window, and the end of a session (which listeners turn into room leaves and call hang-ups).
 */
export class SessionManager {
  readonly #byId = new Map<string, LiveSession>();
  readonly #byUser = new Map<string, Set<LiveSession>>();
  readonly #store: StateStore;
  readonly #graceMs: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #cluster: ClusterLink | null;
  readonly hooks: Hooks<SessionEvents>;
  #closed = false;

  constructor({ store, graceMs, log, cluster = null, clock = systemClock }: SessionManagerOptions) {
    this.#store = store;
    this.#graceMs = graceMs;
    this.#log = log;
    this.#cluster = cluster;
    this.#clock = clock;
    this.hooks = new Hooks('sessions', log);
  }

  get size(): number {
    return this.#byId.size;
  }

  get(sessionId: string): LiveSession | undefined {
    return this.#byId.get(sessionId);
  }

  /** Sessions of a user that can receive: live, or suspended and buffering. */
  sessionsOf(userId: string): ReadonlySet<LiveSession> | undefined {
    return this.#byUser.get(userId);
  }

  all(): IterableIterator<LiveSession> {
    return this.#byId.values();
  }

  async open(
    identity: Identity,
    conn: SessionLink<LiveSession>,
  ): Promise<{ session: LiveSession; resumeToken: string }> {
    if (this.#closed) throw new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down');
    const session = this.#newSession(randomUUID(), identity, conn);
    conn.session = session;
    this.#index(session);
    this.#register(session);
    try {
      const resumeToken = await this.#issueToken(session, defaults.liveResumeTokenTtlMs);
      return { session, resumeToken };
    } catch (err) {
      // No resume token, no session: the connection is refused and the client retries.
      session.close();
      this.#forget(session);
      conn.session = null;
      throw err;
    }
  }

  /** Writes every local session back to the cluster directory (after Redis lost its data). */
  async republish(): Promise<void> {
    for (const session of this.#byId.values()) {
      this.#register(session);
      if (session.resumeTokenHash) {
        await this.#store
          .putResumeToken(
            session.resumeTokenHash,
            { sessionId: session.id, userId: session.userId },
            session.suspended ? this.#graceMs : defaults.liveResumeTokenTtlMs,
          )
          .catch(() => undefined);
      }
    }
  }

  /**
   * The socket dropped. Intentional closes end the session now; anything else keeps it for the
   * grace window, buffering what it is sent, so a resume loses nothing.
   */
  async disconnected(session: LiveSession, intentional: boolean): Promise<void> {
    if (session.ended) return;
    session.connection = null;
    if (intentional || this.#graceMs === 0 || this.#closed) {
      await this.end(session, intentional ? 'left' : 'disconnected');
      return;
    }
    background(this.hooks.emit('suspended', session), this.#log, 'session suspended');
    if (session.resumeTokenHash) {
      // Shorten the token's life to the grace window (if the store is unreachable, it keeps the longer one).
      await this.#store
        .putResumeToken(
          session.resumeTokenHash,
          { sessionId: session.id, userId: session.userId },
          this.#graceMs,
        )
        .catch((err: unknown) =>
          this.#log.warn({ err, session: session.id }, 'could not shorten resume token'),
        );
    }
    if (session.ended || !session.suspended) return; // ended or resumed while the store answered
    session.cancelGrace();
    session.graceTimer = this.#clock.setTimeout(() => {
      session.graceTimer = null;
      if (session.suspended) background(this.end(session, 'disconnected'), this.#log, 'end after grace');
    }, this.#graceMs);
    session.graceTimer.unref();
  }

  /**
   * Moves the session named by `resumeToken` onto `conn`. The connection's own fresh session (from
   * its welcome) is discarded; it must not have joined rooms yet. Failures are all RESUME_FAILED,
   * with the specific reason only in the log.
   *
   * `attach` runs synchronously at the moment the connection takes over, with the frames buffered
   * while suspended, so nothing delivered afterwards can overtake them.
   */
  async resume(
    resumeToken: string,
    conn: SessionLink<LiveSession>,
    attach: (session: LiveSession, freshToken: string, buffered: Frame[], missedFrames: boolean) => void,
  ): Promise<LiveSession> {
    const provisional = conn.session;
    const identity = conn.identity;
    if (!identity || !provisional) throw new ParleyError('UNAUTHORIZED');
    const fail = (why: string) => {
      this.#log.info({ conn: conn.id, userId: identity.userId, why }, 'resume refused');
      return new ParleyError('RESUME_FAILED');
    };
    if (provisional.rooms.size > 0) throw fail('connection already joined rooms');
    const hash = hashToken(resumeToken);
    const record = await this.#store.getResumeToken(hash);
    if (!record) throw fail('unknown or expired token');
    if (record.userId !== identity.userId) throw fail('token belongs to another user');
    const local = this.#byId.get(record.sessionId);
    if (local) {
      if (local.ended) throw fail('session already ended');
      if (local === provisional) throw fail('token of this very connection');
    } else {
      const rec = await this.#cluster?.directory.session(record.sessionId);
      if (!rec || rec.userId !== identity.userId) throw fail('session already ended');
    }
    if (!(await this.#store.takeResumeToken(hash))) throw fail('token already used');
    const session = local ?? (await this.#adoptRemote(record.sessionId, identity));
    if (!session) throw fail('session vanished during resume');
    const fresh = await this.#issueToken(session, defaults.liveResumeTokenTtlMs);
    await this.#discard(provisional);
    if (session.ended || conn.closed) throw fail('session or connection ended during resume');

    // From here on, synchronous: the takeover cannot interleave with deliveries.
    const old = session.connection;
    if (old && old !== conn) {
      // A half-open old socket the server has not noticed yet is replaced.
      old.session = null;
      old.close(CLOSE_CODES.SESSION_REPLACED.code, 'session resumed elsewhere');
    }
    session.cancelGrace();
    const buffered = session.buffered;
    const missed = session.missedFrames;
    session.buffered = [];
    session.missedFrames = false;
    session.identity = identity;
    session.connection = conn;
    conn.session = session;
    attach(session, fresh, buffered, missed);
    return session;
  }

  /** Ends a session for good: listeners leave its rooms and hang up its calls. Idempotent. */
  async end(session: LiveSession, reason: EndReason): Promise<void> {
    if (session.ended) return;
    session.close();
    this.#forget(session);
    // A token left behind by a failed delete is useless: its session is gone, and it expires.
    if (session.resumeTokenHash)
      await this.#store.takeResumeToken(session.resumeTokenHash).catch(() => false);
    await this.hooks.emit('ended', session, reason);
  }

  /**
   * Server API: ends the session for good (its rooms hear `removed`, its resume token dies) and
   * closes its connection with 4410 REMOVED, so the client knows not to reconnect by itself.
   */
  async remove(session: LiveSession): Promise<void> {
    const conn = session.connection;
    // Closed first: nothing more from this client is processed while its rooms hear it go.
    if (conn) conn.close(CLOSE_CODES.REMOVED.code, 'removed by the server API');
    await this.end(session, 'removed');
  }

  /**
   * Shutdown: ends every session (its rooms hear it leave) and opens no new one. Idempotent; no
   * grace timer survives it.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const session of [...this.#byId.values()]) await this.end(session, 'shutdown');
  }

  /**
   * The session lives (or lived) on another node: rebuild it here from the directory, and tell
   * its old node, if alive, to let go of it quietly.
   */
  async #adoptRemote(sessionId: string, identity: Identity): Promise<LiveSession | null> {
    const cluster = this.#cluster;
    if (!cluster) return null;
    const rec = await cluster.directory.session(sessionId);
    if (!rec || rec.userId !== identity.userId) return null;
    const session = this.#newSession(sessionId, identity, null);
    // Whatever was sent to it on its old node is gone: tell the client to trust the snapshots.
    session.missedFrames = true;
    this.#index(session);
    await this.hooks.emit('adopted', session);
    const previous = await cluster.directory.moveSession({
      sessionId,
      userId: identity.userId,
      nodeId: cluster.nodeId,
    });
    if (previous && previous !== cluster.nodeId) {
      await cluster.bus
        .publishToNode(previous, { t: 'session-moved', sessionId }, null)
        .catch(() => undefined);
    }
    this.#log.info({ session: sessionId, from: previous }, 'session adopted from another node');
    return session;
  }

  /** Bus: another node resumed this session. Drop it here without telling its rooms anything. */
  readonly onSessionMoved = (sessionId: string): void => {
    background(this.#movedAway(sessionId), this.#log, 'session moved away');
  };

  async #movedAway(sessionId: string): Promise<void> {
    const session = this.#byId.get(sessionId);
    if (!session || session.ended) return;
    session.close();
    const conn = session.connection;
    session.connection = null;
    if (conn) {
      conn.session = null;
      conn.close(CLOSE_CODES.SESSION_REPLACED.code, 'session resumed on another node');
    }
    this.#byId.delete(session.id);
    const set = this.#byUser.get(session.userId);
    set?.delete(session);
    if (set?.size === 0) this.#byUser.delete(session.userId);
    await this.hooks.emit('movedAway', session);
    this.#log.info({ session: sessionId }, 'session moved to another node');
  }

  #newSession(id: string, identity: Identity, conn: SessionLink<LiveSession> | null): LiveSession {
    return new LiveSession(id, identity, conn, { clearTimer: (t) => this.#clock.clearTimeout(t) });
  }

  #index(session: LiveSession): void {
    this.#byId.set(session.id, session);
    let set = this.#byUser.get(session.userId);
    if (!set) {
      set = new Set();
      this.#byUser.set(session.userId, set);
    }
    set.add(session);
  }

  #register(session: Session): void {
    const c = this.#cluster;
    if (!c) return;
    background(
      c.directory.registerSession({ sessionId: session.id, userId: session.userId, nodeId: c.nodeId }),
      this.#log,
      'register session in the cluster directory',
    );
  }

  #unregister(session: Session): void {
    const c = this.#cluster;
    if (!c) return;
    background(
      c.directory.unregisterSession({ sessionId: session.id, userId: session.userId, nodeId: c.nodeId }),
      this.#log,
      'unregister session',
    );
  }

  /** A session that never did anything (a connection's provisional one, replaced by a resume). */
  async #discard(session: LiveSession): Promise<void> {
    session.close();
    this.#forget(session);
    if (session.resumeTokenHash)
      await this.#store.takeResumeToken(session.resumeTokenHash).catch(() => false);
  }

  #forget(session: LiveSession): void {
    this.#unregister(session);
    this.#byId.delete(session.id);
    const set = this.#byUser.get(session.userId);
    if (set) {
      set.delete(session);
      if (set.size === 0) this.#byUser.delete(session.userId);
    }
  }

  async #issueToken(session: LiveSession, ttlMs: number): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    session.resumeTokenHash = hashToken(token);
    await this.#store.putResumeToken(
      session.resumeTokenHash,
      { sessionId: session.id, userId: session.userId },
      ttlMs,
    );
    return token;
  }
}
