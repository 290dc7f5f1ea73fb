import type { Logger } from '../logger.js';
import { background } from '../lifecycle/background.js';
import type { RoomService } from '../rooms/room-service.js';
import { frame } from '../signaling/connection.js';
import type { StateStore } from '../state/state-store.js';
import type { ClusterDirectory, NodeInfo } from './directory.js';

export interface NodeRegistryOptions {
  directory: ClusterDirectory;
  store: StateStore;
  rooms: RoomService;
  log: Logger;
  info: NodeInfo;
  /** A node that has not heartbeated for this long is dead. */
  nodeTtlMs: number;
  /** Sessions of a dead node stay resumable (elsewhere) this long before they are reaped. */
  resumeGraceMs: number;
  /** The speaker lock TTL: a dead holder's floor is free after it. */
  lockTtlMs: number;
}

/**
 * Heartbeats this node into the registry and watches the others. When a node dies (`kill -9`),
 * one survivor claims it: floors its sessions held are announced free once their locks expire,
 * and after the resume grace window its sessions that nobody resumed leave their rooms, with the
 * usual `room:participant-left` broadcasts.
 */
export class NodeRegistry {
  readonly #o: NodeRegistryOptions;
  readonly #handling = new Set<string>();
  /** Dead nodes this node has already reacted to (every survivor reacts; one reaps). */
  readonly #seenDead = new Set<string>();
  readonly #deadListeners: ((nodeId: string) => void)[] = [];
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: NodeRegistryOptions) {
    this.#o = options;
  }

  /** Every survivor runs these once per dead node (e.g. to drop media hosted there). */
  onNodeDead(listener: (nodeId: string) => void): void {
    this.#deadListeners.push(listener);
  }

  get nodeId(): string {
    return this.#o.info.nodeId;
  }

  async start(): Promise<void> {
    await this.#o.directory.heartbeat(this.#o.info, this.#o.nodeTtlMs);
    this.#timer = setInterval(() => void this.#tick(), Math.max(100, Math.floor(this.#o.nodeTtlMs / 3)));
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#o.directory.forgetNode(this.nodeId).catch(() => undefined);
  }

  async #tick(): Promise<void> {
    const { directory, log } = this.#o;
    try {
      await directory.heartbeat(this.#o.info, this.#o.nodeTtlMs);
      for (const { info, alive } of await directory.nodes()) {
        if (alive || info.nodeId === this.nodeId) continue;
        if (!this.#seenDead.has(info.nodeId)) {
          this.#seenDead.add(info.nodeId);
          for (const l of this.#deadListeners) l(info.nodeId);
        }
        if (this.#handling.has(info.nodeId)) continue;
        const claimTtl = this.#o.resumeGraceMs + this.#o.lockTtlMs + 30_000;
        if (!(await directory.claimDeadNode(info.nodeId, this.nodeId, claimTtl))) continue;
        this.#handling.add(info.nodeId);
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

  async #reap(dead: string): Promise<void> {
    const { directory, store, rooms, log } = this.#o;
    const sessions = await directory.sessionsOfNode(dead);
    const deadIds = new Set(sessions.map((s) => s.sessionId));
    const roomsOf = new Map<string, string[]>();
    for (const s of sessions) roomsOf.set(s.sessionId, await directory.sessionRooms(s.sessionId));

    // Floors held by the dead node free themselves by TTL; tell the rooms when they have.
    const allRooms = new Set([...roomsOf.values()].flat());
    for (const roomId of allRooms) {
      const lock = await store.currentSpeaker(roomId).catch(() => null);
      if (!lock || !deadIds.has(lock.sessionId)) continue;
      setTimeout(() => {
        background(
          store.currentSpeaker(roomId).then((now) => {
            if (!now)
              rooms.broadcast(
                roomId,
                frame('ptt:speaker-changed', { roomId, speaker: null, at: Date.now() }),
              );
          }),
          log,
          'announce a dead node’s floor free',
        );
      }, this.#o.lockTtlMs + 100).unref();
    }

    // Give the dead node's clients their grace window to resume on another node.
    await new Promise((r) => setTimeout(r, this.#o.resumeGraceMs).unref());
    if (this.#stopped) return;
    let reaped = 0;
    for (const s of sessions) {
      const now = await directory.session(s.sessionId);
      if (now && now.nodeId !== dead) continue; // resumed elsewhere
      for (const roomId of roomsOf.get(s.sessionId) ?? []) await rooms.reapRemote(roomId, s.sessionId);
      await directory.unregisterSession(s);
      reaped++;
    }
    await directory.forgetNode(dead);
    log.warn({ dead, reaped, resumedElsewhere: sessions.length - reaped }, 'dead node cleaned up');
  }
}
