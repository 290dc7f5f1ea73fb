import { randomUUID } from 'node:crypto';
import { randomToken } from './random-token.js';
import { sha256 } from '../auth/sha256.js';
import { CLOSE_CODES } from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import type { StateStore } from '../state/state-store.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';
import type { Frame } from '../wire/frame.js';
import { LiveSession, type LiveSessionOptions } from './live-session.js';
import type { Session } from './session.js';
import type { SessionLink } from './session-link.js';
import { UserSessions, type OneOrMore } from './user-sessions.js';

export type EndReason = 'left' | 'disconnected' | 'shutdown' | 'removed';

/** What the session manager tells the rest of the server. */
export type SessionEvents = {
  /** A session ended for good: leave its rooms, hang up its calls. */
  ended: [session: Session, reason: EndReason];
  /** A session lost its connection but may still be resumed (e.g. the PTT floor is released). */
  suspended: [session: Session];
  /** Cross-node resume: a session arrived from another node; rebuild what it had (its rooms). */
  adopted: [session: Session];
  /** A suspended session was resumed on a new connection (after its buffer was replayed). */
  resumed: [session: Session];
  /** A local session was resumed on another node: drop it quietly (no leaves). */
  movedAway: [session: Session];
};

export interface SessionManagerOptions {
  store: StateStore;
  graceMs: number;
  log: Logger;
  cluster?: ClusterLink | null;
  clock?: Clock;
  /** MAX_SESSIONS_PER_USER, suspended sessions included. Default: defaults.maxSessionsPerUser. */
  maxSessionsPerUser?: number;
}

function hashToken(token: string): string {
  return sha256(token).toString('base64url');
}

/**
 * Owns sessions: creation on authentication, suspension when the socket drops, resume within the
 * grace window, and the end of a session (which listeners turn into room leaves and call hang-ups).
 */
export class SessionManager {
  readonly #byId = new Map<string, LiveSession>();
  /** The session itself for a user with one here, a Set from the second (user-sessions.ts). */
  readonly #byUser = new UserSessions<LiveSession>();
  readonly #store: StateStore;
  readonly #graceMs: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #cluster: ClusterLink | null;
  readonly #maxPerUser: number;
  readonly hooks: Hooks<SessionEvents>;
  /** One options object for every session of this manager. */
  readonly #sessionOpts: LiveSessionOptions;
  #closed = false;
  /** Draining in a cluster: sessions are handed over to the other nodes instead of ended. */
  #handingOff = false;
  readonly #drainWaiters = new Set<() => void>();
  /** Buffers of moved sessions being passed on to their new node right now. */
  #passingOn = 0;
  /** Adoptions waiting for the old node's buffer (session-moved → handoff-frame… → handoff-done). */
  readonly #handoffs = new Map<string, { frames: Frame[]; done: (missedFrames: boolean) => void }>();
  /** Sessions that just moved from here to another node: late frames for them are passed on. */
  readonly #movedTo = new Map<string, { userId: string; nodeId: string; timer: Timer }>();

  constructor({
    store,
    graceMs,
    log,
    cluster = null,
    clock = systemClock,
    maxSessionsPerUser = defaults.maxSessionsPerUser,
  }: SessionManagerOptions) {
    this.#maxPerUser = maxSessionsPerUser;
    this.#store = store;
    this.#graceMs = graceMs;
    this.#log = log;
    this.#cluster = cluster;
    this.#clock = clock;
    this.#sessionOpts = { timers: clock };
    this.hooks = new Hooks('sessions', log);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** True once a drain began handing this node's sessions over to the cluster. */
  get handingOff(): boolean {
    return this.#handingOff;
  }

  get(sessionId: string): LiveSession | undefined {
    return this.#byId.get(sessionId);
  }

  /**
   * Sessions of a user that can receive: live, or suspended and buffering. A new Set, a snapshot;
   * deliveries use {@link localSessionsOf}, which builds nothing.
   */
  sessionsOf(userId: string): ReadonlySet<LiveSession> | undefined {
    return this.#byUser.setOf(userId);
  }

  /** The user's sessions here as held: the session itself, or a Set when there are several. */
  localSessionsOf(userId: string): OneOrMore<LiveSession> | undefined {
    return this.#byUser.get(userId);
  }

  /** Changes whenever any user's sessions here change (a session added, ended, moved away). */
  get localEpoch(): number {
    return this.#byUser.epoch;
  }

  all(): IterableIterator<LiveSession> {
    return this.#byId.values();
  }

  async open(
    identity: Identity,
    conn: SessionLink<LiveSession>,
  ): Promise<{ session: LiveSession; resumeToken: string }> {
    if (this.#closed) throw new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down');
    await this.#makeRoomFor(identity.userId);
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

  /**
   * MAX_SESSIONS_PER_USER (issue 13, High 2 and Medium 1): one user must not hold sessions, and
   * with them room seats and media, without bound, e.g. by opening connections and dropping them
   * so that each stays suspended for the grace window. At the cap the user's oldest suspended
   * session on this node ends (it is the one least likely to come back; its rooms hear it leave);
   * with none, the new session is refused. With a cluster the count is the directory's (every
   * node's sessions of the user); if the directory cannot answer, this node's count stands.
   */
  async #makeRoomFor(userId: string): Promise<void> {
    let count = this.#byUser.count(userId);
    if (this.#cluster) {
      const everywhere = await this.#cluster.directory.sessionsOfUser(userId).catch(() => null);
      if (everywhere) count = Math.max(count, everywhere.length);
    }
    while (count >= this.#maxPerUser) {
      let oldest: LiveSession | null = null;
      for (const s of this.#byUser.setOf(userId) ?? []) {
        if (s.suspended && (!oldest || s.suspendedAt < oldest.suspendedAt)) oldest = s;
      }
      if (!oldest) {
        this.#log.info({ userId, sessions: count, limit: this.#maxPerUser }, 'session refused: quota');
        throw new ParleyError(
          'QUOTA_EXCEEDED',
          `at most ${this.#maxPerUser} sessions per user, and all of yours are live`,
          { quota: 'sessions', limit: this.#maxPerUser },
        );
      }
      this.#log.info({ userId, session: oldest.id }, 'suspended session ended: sessions-per-user quota');
      await this.end(oldest, 'disconnected');
      count--;
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
    session.suspendedAt = this.#clock.now();
    background(this.hooks.emit('suspended', session), this.#log, 'session suspended');
    this.#checkDrained();
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
    // Handed over: the session waits here, buffering, until another node adopts it. No grace timer:
    // this node is going away, and a survivor reaps what nobody resumes (NodeRegistry).
    if (this.#handingOff) return;
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
    attach: (
      session: LiveSession,
      freshToken: string,
      buffered: Frame[],
      missedFrames: boolean,
      previous: Identity,
    ) => void,
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
    const { frames: buffered, missedFrames: missed } = session.takeBuffered();
    const previous = session.identity;
    session.identity = identity;
    session.connection = conn;
    conn.session = session;
    attach(session, fresh, buffered, missed, previous);
    await this.hooks.emit('resumed', session);
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
    for (const { timer } of this.#movedTo.values()) this.#clock.clearTimeout(timer);
    this.#movedTo.clear();
    for (const { done } of this.#handoffs.values()) done(true);
    if (this.#handingOff) {
      // Left to the cluster: their rooms, tokens and directory entries stay for a resume elsewhere.
      for (const session of [...this.#byId.values()]) await this.#letGo(session, 'handed-over');
      return;
    }
    for (const session of [...this.#byId.values()]) await this.end(session, 'shutdown');
  }

  /**
   * Drain in a cluster (shutdown): from now on a dropped connection, including the 1001 close of
   * the drain itself, suspends its session without a grace timer, so that the client resumes it on
   * another node: nobody sees it leave its rooms. No-op on a single node, where sessions end.
   */
  handOff(): void {
    if (this.#cluster) this.#handingOff = true;
  }

  /**
   * Waits (at most `timeoutMs`) until every session of this node has been resumed elsewhere or
   * has ended; resolves with how many are still here.
   */
  async awaitHandedOver(timeoutMs: number): Promise<number> {
    if (this.#byId.size > 0 || this.#passingOn > 0) {
      let timer: Timer | undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#drainWaiters.delete(done);
          resolve();
        };
        this.#drainWaiters.add(done);
        timer = this.#clock.setTimeout(done, timeoutMs);
        this.#checkDrained();
      });
      if (timer) this.#clock.clearTimeout(timer);
    }
    return this.#byId.size;
  }

  /** Sessions that moved from this node to another one a moment ago (late frames follow them). */
  movedSessionsOf(userId: string): { sessionId: string; nodeId: string }[] {
    const out: { sessionId: string; nodeId: string }[] = [];
    for (const [sessionId, m] of this.#movedTo)
      if (m.userId === userId) out.push({ sessionId, nodeId: m.nodeId });
    return out;
  }

  #checkDrained(): void {
    if (this.#byId.size === 0 && this.#passingOn === 0) for (const done of [...this.#drainWaiters]) done();
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
    this.#index(session);
    await this.hooks.emit('adopted', session);
    const previous = await cluster.directory.moveSession({
      sessionId,
      userId: identity.userId,
      nodeId: cluster.nodeId,
    });
    // Frames sent to the session meanwhile wait in its old node's buffer (a drained node keeps
    // serving until its sessions have moved). Ask for them; until they come, what arrives here is
    // buffered after them, so the client gets everything in order. A dead node cannot answer
    // (nobody receives the request), and one that does not answer in time costs missedFrames.
    let missedFrames = true;
    if (previous && previous !== cluster.nodeId) {
      const handoff = this.#expectHandoff(sessionId);
      const receivers = await cluster.bus
        .publishToNode(previous, { t: 'session-moved', sessionId }, null)
        .catch(() => 0);
      if (receivers === 0) this.#handoffs.get(sessionId)?.done(true);
      const result = await handoff;
      if (result) {
        missedFrames = result.missedFrames;
        session.prependBuffered(result.frames);
      }
    }
    session.missedFrames ||= missedFrames;
    this.#log.info(
      { session: sessionId, from: previous, handedOver: !missedFrames, replay: session.buffered.length },
      'session adopted from another node',
    );
    return session;
  }

  /** Resolves with the old node's buffer for an adopted session, or null if it never comes. */
  #expectHandoff(sessionId: string): Promise<{ frames: Frame[]; missedFrames: boolean } | null> {
    return new Promise((resolve) => {
      const frames: Frame[] = [];
      const timer = this.#clock.setTimeout(() => entry.done(true), defaults.sessionHandoffTimeoutMs);
      const entry = {
        frames,
        done: (missed: boolean) => {
          if (this.#handoffs.get(sessionId) !== entry) return;
          this.#handoffs.delete(sessionId);
          this.#clock.clearTimeout(timer);
          resolve(missed && frames.length === 0 ? null : { frames, missedFrames: missed });
        },
      };
      this.#handoffs.set(sessionId, entry);
    });
  }

  /** Bus: a frame the old node buffered for a session this node is adopting. */
  readonly onHandoffFrame = (sessionId: string, f: Frame): void => {
    this.#handoffs.get(sessionId)?.frames.push(f);
  };

  /** Bus: the old node has passed on everything it buffered for the session. */
  readonly onHandoffDone = (sessionId: string, missedFrames: boolean): void => {
    this.#handoffs.get(sessionId)?.done(missedFrames);
  };

  /**
   * Bus: another node (`toNode`) resumed this session. Pass on what it buffered here, then drop it
   * without telling its rooms anything.
   */
  readonly onSessionMoved = (sessionId: string, toNode: string): void => {
    background(this.#movedAway(sessionId, toNode), this.#log, 'session moved away');
  };

  async #movedAway(sessionId: string, toNode: string): Promise<void> {
    const session = this.#byId.get(sessionId);
    const bus = this.#cluster?.bus;
    if (!session || session.ended) {
      // Not ours (any more): the new node must not wait for a buffer.
      await bus
        ?.publishToNode(toNode, { t: 'handoff-done', sessionId, missedFrames: true }, null)
        .catch(() => 0);
      return;
    }
    const frames = session.buffered;
    const missedFrames = session.missedFrames;
    this.#rememberMove(session, toNode);
    // A drain waits for this too: the bus must stay open until the buffer has gone.
    this.#passingOn++;
    try {
      await this.#letGo(session, 'moved');
      if (!bus) return;
      // One at a time, so they arrive in order, and before handoff-done.
      for (const f of frames) await bus.publishToNode(toNode, { t: 'handoff-frame', sessionId }, f);
      await bus.publishToNode(toNode, { t: 'handoff-done', sessionId, missedFrames }, null);
    } catch (err) {
      this.#log.warn({ err, session: sessionId }, 'could not pass the buffer on to the new node');
    } finally {
      this.#passingOn--;
      this.#checkDrained();
    }
  }

  /** For a while, frames still addressed to a moved session here follow it to its new node. */
  #rememberMove(session: LiveSession, nodeId: string): void {
    const previous = this.#movedTo.get(session.id);
    if (previous) this.#clock.clearTimeout(previous.timer);
    const timer = this.#clock.setTimeout(
      () => this.#movedTo.delete(session.id),
      defaults.movedSessionForwardMs,
    );
    timer.unref();
    this.#movedTo.set(session.id, { userId: session.userId, nodeId, timer });
  }

  /** Drops a session here quietly: its rooms hear nothing, its shared state stays. */
  async #letGo(session: LiveSession, why: 'moved' | 'handed-over'): Promise<void> {
    const sessionId = session.id;
    session.close();
    const conn = session.connection;
    session.connection = null;
    if (conn) {
      conn.session = null;
      if (why === 'moved') conn.close(CLOSE_CODES.SESSION_REPLACED.code, 'session resumed on another node');
      else conn.close(CLOSE_CODES.GOING_AWAY.code, 'server shutting down');
    }
    this.#byId.delete(session.id);
    this.#byUser.delete(session);
    await this.hooks.emit('movedAway', session);
    this.#log.info(
      { session: sessionId },
      why === 'moved' ? 'session moved to another node' : 'session handed over to the cluster',
    );
    this.#checkDrained();
  }

  #newSession(id: string, identity: Identity, conn: SessionLink<LiveSession> | null): LiveSession {
    return new LiveSession(id, identity, conn, this.#sessionOpts);
  }

  #index(session: LiveSession): void {
    this.#byId.set(session.id, session);
    this.#byUser.add(session);
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
    this.#byUser.delete(session);
    this.#checkDrained();
  }

  async #issueToken(session: LiveSession, ttlMs: number): Promise<string> {
    const token = randomToken(32);
    session.resumeTokenHash = hashToken(token);
    await this.#store.putResumeToken(
      session.resumeTokenHash,
      { sessionId: session.id, userId: session.userId },
      ttlMs,
    );
    return token;
  }
}
