import type { BusHeader } from '../cluster/bus.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import type { SessionRecord } from '../cluster/directory.js';
import type { Frame } from '../wire/frame.js';
import type { Session } from './session.js';
import { isMore, type OneOrMore } from './user-sessions.js';

/** Which of a user's sessions a delivery is for. */
export interface DeliveryFilter {
  /** Every session of the user but this one (the sender's own). */
  except?: string;
  /** Only these sessions. */
  only?: readonly string[];
}

/** What user delivery needs of the session manager: the user's sessions on this node. */
export interface LocalSessions {
  /** The session itself when the user has one here (no Set per idle user), a Set when several. */
  localSessionsOf(userId: string): OneOrMore<Session> | undefined;
  /** Changes whenever any user's sessions on this node change. */
  readonly localEpoch: number;
  /** Sessions of the user that moved from this node to another one a moment ago. */
  movedSessionsOf?(userId: string): { sessionId: string; nodeId: string }[];
}

/** What a media stand-in needs: reach one session of a user on its home node. */
export interface RemoteUserDelivery {
  deliverOnNodeQuietly(nodeId: string, userId: string, f: Frame, filter?: DeliveryFilter): void;
}

/** What calls and in-room relay need to reach a user, wherever their sessions are. */
export interface UserMailbox extends RemoteUserDelivery {
  local(userId: string, filter?: DeliveryFilter): Iterator<Session>;
  /** Whether this node has a session of `userId` that passes the filter. */
  hasLocal(userId: string, filter?: DeliveryFilter): boolean;
  deliverLocal(userId: string, f: Frame, filter?: DeliveryFilter): number;
  remoteSessions(userId: string, accept?: (sessionId: string) => boolean): Promise<Map<string, string[]>>;
  /** `remoteSessions` answered from what this node knows, or undefined when it would have to ask. */
  knownRemoteSessions(userId: string): Map<string, string[]> | undefined;
  /**
   * Changes whenever anything `local`, `hasLocal` or `knownRemoteSessions` answers may have: a
   * session added or gone here, or an invalidation of the directory cache.
   */
  readonly routesEpoch: number;
  /**
   * Until when (monotonic ms) `knownRemoteSessions(userId)`'s answer holds if `routesEpoch` stays
   * the same: forever on a single node, the directory cache entry's expiry on a cluster.
   */
  knownUntil(userId: string): number;
  deliverOnNode(nodeId: string, userId: string, f: Frame, filter?: DeliveryFilter): Promise<void>;
}

/**
 * The one owner of delivering a frame to a user wherever their sessions are: on this node
 * directly, on other nodes through the cluster bus (whose `user` messages come back in through
 * `onRemoteDelivery`). Calls, in-room relay and media stand-ins all deliver through it.
 */
export class UserDelivery implements UserMailbox {
  readonly #sessions: LocalSessions;
  readonly #cluster: ClusterLink | null;

  constructor(deps: { sessions: LocalSessions; cluster: ClusterLink | null }) {
    this.#sessions = deps.sessions;
    this.#cluster = deps.cluster;
  }

  /** This node's sessions of `userId` that pass the filter. */
  *local(userId: string, filter: DeliveryFilter = {}): Generator<Session> {
    const sessions = this.#sessions.localSessionsOf(userId);
    if (!sessions) return;
    if (!isMore(sessions)) {
      if (passes(sessions.id, filter)) yield sessions;
      return;
    }
    for (const s of sessions) if (passes(s.id, filter)) yield s;
  }

  hasLocal(userId: string, filter: DeliveryFilter = ALL): boolean {
    const sessions = this.#sessions.localSessionsOf(userId);
    if (!sessions) return false;
    if (!isMore(sessions)) return passes(sessions.id, filter);
    for (const s of sessions) if (passes(s.id, filter)) return true;
    return false;
  }

  /**
   * Delivers to this node's sessions of `userId` that pass the filter; returns how many. A plain
   * loop, not `local()`'s generator: this runs for every relayed message (2 % of the relay's CPU).
   */
  deliverLocal(userId: string, f: Frame, filter: DeliveryFilter = ALL): number {
    const sessions = this.#sessions.localSessionsOf(userId);
    if (!sessions) return 0;
    if (!isMore(sessions)) {
      if (!passes(sessions.id, filter)) return 0;
      sessions.deliver(f);
      return 1;
    }
    let n = 0;
    for (const s of sessions) {
      if (!passes(s.id, filter)) continue;
      s.deliver(f);
      n++;
    }
    return n;
  }

  /**
   * Where else the user has sessions: node → its session ids there, excluding this node. Empty on a
   * single node. `accept` narrows the sessions considered (e.g. to the members of a room).
   */
  async remoteSessions(
    userId: string,
    accept?: (sessionId: string) => boolean,
  ): Promise<Map<string, string[]>> {
    const cluster = this.#cluster;
    const byNode = new Map<string, string[]>();
    if (!cluster) return byNode;
    return byNodeOf(await cluster.directory.sessionsOfUser(userId), cluster.nodeId, accept);
  }

  get routesEpoch(): number {
    return this.#sessions.localEpoch + (this.#cluster?.directory.epoch ?? 0);
  }

  knownUntil(userId: string): number {
    const cluster = this.#cluster;
    if (!cluster) return Number.POSITIVE_INFINITY;
    return cluster.directory.knownUntil?.(userId) ?? 0;
  }

  knownRemoteSessions(userId: string): Map<string, string[]> | undefined {
    const cluster = this.#cluster;
    if (!cluster) return new Map<string, string[]>();
    const known = cluster.directory.knownSessionsOfUser?.(userId);
    return known === undefined ? undefined : byNodeOf(known, cluster.nodeId);
  }

  /** Sends `f` to the user's sessions on another node (which delivers it with `deliverLocal`). */
  async deliverOnNode(nodeId: string, userId: string, f: Frame, filter: DeliveryFilter = {}): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return;
    await cluster.bus.publishToNode(nodeId, userHeader(userId, filter), f);
  }

  /**
   * Like `deliverOnNode`, for work nobody awaits (every relayed frame): the bus sends it at the end
   * of this event-loop turn with the turn's other frames for that node, and logs a failure.
   */
  deliverOnNodeQuietly(nodeId: string, userId: string, f: Frame, filter: DeliveryFilter = {}): void {
    this.#cluster?.bus.sendToNode(nodeId, userHeader(userId, filter), f);
  }

  /** Bus: another node delivers to our sessions of a user. */
  readonly onRemoteDelivery = (userId: string, f: Frame, filter: DeliveryFilter): void => {
    const delivered = this.deliverLocal(userId, f, filter);
    // The sender's node looked the user up just before one of their sessions moved on (a rolling
    // restart): pass the frame on. Without an explicit session list, only when nothing here took
    // it, since then the moved session must have been the one meant (and no copy is doubled).
    for (const { sessionId, nodeId } of this.#sessions.movedSessionsOf?.(userId) ?? []) {
      if (!passes(sessionId, filter) || (filter.only === undefined && delivered > 0)) continue;
      this.deliverOnNodeQuietly(nodeId, userId, f, { only: [sessionId] });
    }
  };
}

const ALL: DeliveryFilter = Object.freeze({});

function userHeader(userId: string, filter: DeliveryFilter): BusHeader {
  return {
    t: 'user',
    userId,
    ...(filter.except === undefined ? {} : { except: filter.except }),
    ...(filter.only === undefined ? {} : { only: [...filter.only] }),
  };
}

/** Session records grouped by node, this node's left out. */
function byNodeOf(
  records: readonly SessionRecord[],
  self: string,
  accept?: (sessionId: string) => boolean,
): Map<string, string[]> {
  const byNode = new Map<string, string[]>();
  for (const r of records) {
    if (r.nodeId === self || (accept && !accept(r.sessionId))) continue;
    byNode.set(r.nodeId, [...(byNode.get(r.nodeId) ?? []), r.sessionId]);
  }
  return byNode;
}

function passes(sessionId: string, { except, only }: DeliveryFilter): boolean {
  return sessionId !== except && (only === undefined || only.includes(sessionId));
}
