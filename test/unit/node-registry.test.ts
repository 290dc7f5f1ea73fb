import { describe, expect, it } from 'vitest';
import type { ClusterDirectory, NodeInfo, SessionRecord } from '../../src/server/cluster/directory.js';
import { NodeRegistry } from '../../src/server/cluster/node-registry.js';
import { createLogger } from '../../src/server/logger.js';
import { MemoryState } from '../../src/server/state/memory/memory-state.js';
import { FakeClock } from '../helpers/fake-clock.js';

const NODE_TTL_MS = 3_000;
const GRACE_MS = 15_000;
const LOCK_TTL_MS = 5_000;

/**
 * The cluster directory's node and session bookkeeping in memory, on the fake clock (the Redis one
 * keeps the same records with real TTLs; test/cluster runs it with real processes).
 */
class ClockDirectory implements Pick<
  ClusterDirectory,
  | 'heartbeat'
  | 'nodes'
  | 'claimDeadNode'
  | 'forgetNode'
  | 'markNodeGone'
  | 'sessionsOfNode'
  | 'sessionRooms'
  | 'session'
  | 'unregisterSession'
> {
  readonly #nodes = new Map<string, { info: NodeInfo; until: number }>();
  readonly #claims = new Map<string, string>();
  readonly sessions = new Map<string, SessionRecord & { rooms: string[] }>();
  constructor(readonly clock: FakeClock) {}
  heartbeat(info: NodeInfo, ttlMs: number) {
    this.#nodes.set(info.nodeId, { info, until: this.clock.now() + ttlMs });
    return Promise.resolve();
  }
  nodes() {
    const now = this.clock.now();
    return Promise.resolve([...this.#nodes.values()].map((n) => ({ info: n.info, alive: n.until > now })));
  }
  claimDeadNode(nodeId: string, claimer: string) {
    if (this.#claims.has(nodeId)) return Promise.resolve(false);
    this.#claims.set(nodeId, claimer);
    return Promise.resolve(true);
  }
  forgetNode(nodeId: string) {
    this.#nodes.delete(nodeId);
    return Promise.resolve();
  }
  markNodeGone(nodeId: string) {
    const n = this.#nodes.get(nodeId);
    if (n) n.until = this.clock.now();
    return Promise.resolve();
  }
  sessionsOfNode(nodeId: string) {
    return Promise.resolve([...this.sessions.values()].filter((s) => s.nodeId === nodeId));
  }
  sessionRooms(sessionId: string) {
    return Promise.resolve(this.sessions.get(sessionId)?.rooms ?? []);
  }
  session(sessionId: string) {
    return Promise.resolve(this.sessions.get(sessionId) ?? null);
  }
  unregisterSession(rec: SessionRecord) {
    if (this.sessions.get(rec.sessionId)?.nodeId === rec.nodeId) this.sessions.delete(rec.sessionId);
    return Promise.resolve();
  }
}

describe('NodeRegistry reaping on a fake clock', () => {
  it('notices a dead node, announces its floor after the lock TTL, and reaps unresumed members after the grace window', async () => {
    const clock = new FakeClock();
    const directory = new ClockDirectory(clock);
    const store = new MemoryState({ clock });
    const events: string[] = [];
    const at = (what: string) => events.push(`${clock.monotonic()}:${what}`);
    // node-b is alive now, with two sessions; one holds the floor of "radio".
    await directory.heartbeat({ nodeId: 'node-b', startedAt: 0, address: 'b' }, NODE_TTL_MS);
    directory.sessions.set('s1', { sessionId: 's1', userId: 'u1', nodeId: 'node-b', rooms: ['radio'] });
    directory.sessions.set('s2', {
      sessionId: 's2',
      userId: 'u2',
      nodeId: 'node-b',
      rooms: ['radio', 'lobby'],
    });
    await store.acquireSpeaker(
      'radio',
      { sessionId: 's1', userId: 'u1', name: 'U1', priority: 0, since: clock.now() },
      LOCK_TTL_MS,
    );
    const registry = new NodeRegistry({
      directory: directory as unknown as ClusterDirectory,
      store,
      handler: {
        nodeDead: (id) => at(`dead ${id}`),
        floorMayBeFree: async (roomId) =>
          void at(`floor ${roomId} ${(await store.currentSpeaker(roomId)) ? 'held' : 'free'}`),
        memberGone: (roomId, sessionId) => Promise.resolve(void at(`gone ${sessionId} ${roomId}`)),
      },
      log: createLogger('silent'),
      info: { nodeId: 'node-a', startedAt: 0, address: 'a' },
      nodeTtlMs: NODE_TTL_MS,
      resumeGraceMs: GRACE_MS,
      lockTtlMs: LOCK_TTL_MS,
      clock,
    });
    await registry.start();
    await clock.advance(NODE_TTL_MS - 1);
    expect(events).toEqual([]); // node-b's heartbeat has not expired yet
    // s2 resumes on node-a during the grace window: it must not be reaped.
    await clock.advance(2_000);
    directory.sessions.set('s2', {
      sessionId: 's2',
      userId: 'u2',
      nodeId: 'node-a',
      rooms: ['radio', 'lobby'],
    });
    await clock.advance(GRACE_MS + LOCK_TTL_MS);
    const tick = Math.floor(NODE_TTL_MS / 3);
    const seenAt = Math.ceil(NODE_TTL_MS / tick) * tick; // the first heartbeat tick after node-b expired
    expect(events).toEqual([
      `${seenAt}:dead node-b`,
      `${seenAt + LOCK_TTL_MS + 100}:floor radio free`,
      `${seenAt + GRACE_MS}:gone s1 radio`,
    ]);
    expect(directory.sessions.has('s1')).toBe(false);
    expect(directory.sessions.get('s2')?.nodeId).toBe('node-a');
    await registry.close();
    await registry.close();
    expect(clock.pending).toBe(0);
  });

  it('close() during a reap stops it: nothing is reaped after shutdown', async () => {
    const clock = new FakeClock();
    const directory = new ClockDirectory(clock);
    const gone: string[] = [];
    await directory.heartbeat({ nodeId: 'node-b', startedAt: 0, address: 'b' }, NODE_TTL_MS);
    directory.sessions.set('s1', { sessionId: 's1', userId: 'u1', nodeId: 'node-b', rooms: ['radio'] });
    const registry = new NodeRegistry({
      directory: directory as unknown as ClusterDirectory,
      store: new MemoryState({ clock }),
      handler: {
        nodeDead: () => undefined,
        floorMayBeFree: () => Promise.resolve(),
        memberGone: (_r, s) => Promise.resolve(void gone.push(s)),
      },
      log: createLogger('silent'),
      info: { nodeId: 'node-a', startedAt: 0, address: 'a' },
      nodeTtlMs: NODE_TTL_MS,
      resumeGraceMs: GRACE_MS,
      lockTtlMs: LOCK_TTL_MS,
      clock,
    });
    await registry.start();
    await clock.advance(NODE_TTL_MS * 2);
    await registry.close();
    await clock.advance(GRACE_MS * 2);
    expect(gone).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('a drained node that hands sessions over is reaped like a dead one, without waiting for its TTL', async () => {
    const clock = new FakeClock();
    const directory = new ClockDirectory(clock);
    const store = new MemoryState({ clock });
    const events: string[] = [];
    const options = (nodeId: string) => ({
      directory: directory as unknown as ClusterDirectory,
      store,
      handler: {
        nodeDead: (id: string) => void events.push(`${clock.monotonic()}:dead ${id}`),
        floorMayBeFree: () => Promise.resolve(),
        memberGone: (roomId: string, sessionId: string) =>
          Promise.resolve(void events.push(`${clock.monotonic()}:gone ${sessionId} ${roomId}`)),
      },
      log: createLogger('silent'),
      info: { nodeId, startedAt: 0, address: nodeId },
      nodeTtlMs: NODE_TTL_MS,
      resumeGraceMs: GRACE_MS,
      lockTtlMs: LOCK_TTL_MS,
      clock,
    });
    const survivor = new NodeRegistry(options('node-a'));
    const drained = new NodeRegistry(options('node-b'));
    await Promise.all([survivor.start(), drained.start()]);
    directory.sessions.set('s1', { sessionId: 's1', userId: 'u1', nodeId: 'node-b', rooms: ['radio'] });
    directory.sessions.set('s2', { sessionId: 's2', userId: 'u2', nodeId: 'node-b', rooms: ['radio'] });
    await drained.close({ leftSessions: true });
    // s2 resumes on node-a during the grace window; s1 never comes back.
    directory.sessions.set('s2', { sessionId: 's2', userId: 'u2', nodeId: 'node-a', rooms: ['radio'] });
    await clock.advance(GRACE_MS + NODE_TTL_MS);
    const tick = Math.floor(NODE_TTL_MS / 3);
    expect(events).toEqual([`${tick}:dead node-b`, `${tick + GRACE_MS}:gone s1 radio`]);
    expect(directory.sessions.has('s1')).toBe(false);
    expect((await directory.nodes()).map((n) => n.info.nodeId)).toEqual(['node-a']);
    await survivor.close();
    expect(clock.pending).toBe(0);
  });
});
