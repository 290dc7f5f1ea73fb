import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import { background } from '../lifecycle/background.js';
import type { StateStore } from '../state/state-store.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';
import { Lease } from '../time/lease.js';
import type { BusPeers } from './bus-peers.js';
import type { ClusterDirectory, NodeInfo } from './directory.js';

/** What reaping a dead node does to the rest of the server. */
export interface DeadNodeHandler {
  /** Every survivor, once per dead node, at once (e.g. drop media hosted there). */
  nodeDead(nodeId: string): void;
  /** The reaper: a dead node's speaker lock in `roomId` has had time to expire (announce a free floor). */
  floorMayBeFree(roomId: string): Promise<void>;
  /** The reaper: a dead node's session did not resume in time; it leaves `roomId` for good. */
  memberGone(roomId: string, sessionId: string): Promise<void>;
  /** The reaper, once per dead node across the cluster, when it claims it (e.g. a node.down webhook). */
  nodeReaped?(nodeId: string): void;
}

export interface NodeRegistryOptions {
  directory: ClusterDirectory;
  store: StateStore;
  handler: DeadNodeHandler;
  log: Logger;
  info: NodeInfo;
  /** A node that has not heartbeated for this long is dead. */
  nodeTtlMs: number;
  /** Sessions of a dead node stay resumable (elsewhere) this long before they are reaped. */
  resumeGraceMs: number;
  /** The speaker lock TTL: a dead holder's floor is free after it. */
  lockTtlMs: number;
  clock?: Clock;
  /** Told every registry record each tick: which nodes read batched bus publications. */
  peers?: BusPeers;
}

/**
 * Heartbeats this node into the registry and watches the others. When a node dies (`kill -9`),
 * one survivor claims it: floors its sessions held are announced free once their locks expire,
 * and after the resume grace window its sessions that nobody resumed leave their rooms, with the
 * usual `room:participant-left` broadcasts.
 */
export class NodeRegistry {
  readonly #o: NodeRegistryOptions;
  readonly #clock: Clock;
  readonly #handling = new Set<string>();
  /** Dead nodes this node has already reacted to (every survivor reacts; one reaps). */
  readonly #seenDead = new Set<string>();
  /** Timers of reaps in progress, cleared by close(). */
  readonly #timers = new Set<Timer>();
  #heartbeat: Lease | null = null;
  #closed = false;

  constructor(options: NodeRegistryOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  get nodeId(): string {
    return this.#o.info.nodeId;
  }

  /** Announces this node, then heartbeats (and looks for dead nodes) every third of the node TTL. */
  async start(): Promise<void> {
    await this.#o.directory.heartbeat(this.#o.info, this.#o.nodeTtlMs);
    // Which nodes read batched bus publications, before the first relay to them (best effort:
    // a node not known is looked up on first contact, and every tick refreshes them all).
    if (this.#o.peers)
      this.#o.peers.seen((await this.#o.directory.nodes().catch(() => [])).map((n) => n.info));
    if (this.#closed) return;
    this.#heartbeat = new Lease({
      clock: this.#clock,
      log: this.#o.log,
      what: 'node heartbeat',
      intervalMs: Math.max(defaults.nodeHeartbeatMinMs, Math.floor(this.#o.nodeTtlMs / 3)),
      renew: () => this.#tick().then(() => true),
      lostOnError: false,
    }).start();
  }

  /**
   * Stops heartbeating and reaping, and leaves the registry. Idempotent.
   *
   * @param leftSessions sessions this node hands over to the cluster (a drain whose clients did not
   *   all resume elsewhere yet): the node is then marked gone rather than forgotten, so a survivor
   *   reaps, after the grace window, those that nobody resumes, exactly as after a crash.
   */
  async close({ leftSessions = false }: { leftSessions?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat?.close();
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    const { directory } = this.#o;
    await (leftSessions ? directory.markNodeGone(this.nodeId) : directory.forgetNode(this.nodeId)).catch(
      () => undefined,
    );
  }

  async #tick(): Promise<void> {
    const { directory, log } = this.#o;
    try {
      await directory.heartbeat(this.#o.info, this.#o.nodeTtlMs);
      const nodes = await directory.nodes();
      this.#o.peers?.seen(nodes.map((n) => n.info));
      for (const { info, alive } of nodes) {
        if (this.#closed) return;
        if (alive || info.nodeId === this.nodeId) continue;
        if (!this.#seenDead.has(info.nodeId)) {
          this.#seenDead.add(info.nodeId);
          this.#o.handler.nodeDead(info.nodeId);
        }
        if (this.#handling.has(info.nodeId)) continue;
        const claimTtl = this.#o.resumeGraceMs + this.#o.lockTtlMs + defaults.deadNodeClaimMarginMs;
        if (!(await directory.claimDeadNode(info.nodeId, this.nodeId, claimTtl))) continue;
        this.#handling.add(info.nodeId);
        this.#o.handler.nodeReaped?.(info.nodeId);
        log.warn({ dead: info.nodeId, address: info.address }, 'node is dead; cleaning up after it');
        background(
          this.#reap(info.nodeId).finally(() => this.#handling.delete(info.nodeId)),
          log,
          'reap a dead node',
        );
      }
    } catch (err) {
      log.debug({ err }, 'node registry tick failed (state backend unavailable?)');
    }
  }

  /** Runs `fn` after `ms` unless the registry closes first. */
  #after(ms: number, fn: () => void): void {
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) fn();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  async #reap(dead: string): Promise<void> {
    const { directory, store, handler, log } = this.#o;
    const sessions = await directory.sessionsOfNode(dead);
    const deadIds = new Set(sessions.map((s) => s.sessionId));
    const roomsOf = new Map<string, string[]>();
    for (const s of sessions) roomsOf.set(s.sessionId, await directory.sessionRooms(s.sessionId));

    // Floors held by the dead node free themselves by TTL; tell the rooms when they have.
    const allRooms = new Set([...roomsOf.values()].flat());
    for (const roomId of allRooms) {
      const lock = await store.currentSpeaker(roomId).catch(() => null);
      if (!lock || !deadIds.has(lock.sessionId)) continue;
      this.#after(this.#o.lockTtlMs + defaults.deadNodeFloorAnnounceMarginMs, () =>
        background(handler.floorMayBeFree(roomId), log, 'announce a dead node’s floor free'),
      );
    }

    // Give the dead node's clients their grace window to resume on another node.
    await new Promise<void>((resolve) => this.#after(this.#o.resumeGraceMs, resolve));
    if (this.#closed) return;
    let reaped = 0;
    for (const s of sessions) {
      const now = await directory.session(s.sessionId);
      if (now && now.nodeId !== dead) continue; // resumed elsewhere
      for (const roomId of roomsOf.get(s.sessionId) ?? []) await handler.memberGone(roomId, s.sessionId);
      await directory.unregisterSession(s);
      reaped++;
    }
    await directory.forgetNode(dead);
    log.warn({ dead, reaped, resumedElsewhere: sessions.length - reaped }, 'dead node cleaned up');
  }
}
