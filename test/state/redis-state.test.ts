import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Participant } from '../../src/protocol/index.js';
import { RedisState, type RedisStateOptions } from '../../src/server/state/redis/redis-state.js';
import type { FloorHolder } from '../../src/server/state/state-store.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { stateContract } from './state-contract.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

/** Each store gets its own prefix, so every test sees an empty keyspace. */
const freshPrefix = () => `t${randomUUID().slice(0, 8)}:`;

stateContract('redis', async () => {
  const store = await RedisState.connect(redis.url, { prefix: freshPrefix() });
  return { store, cleanup: () => store.close() };
});

// The index upkeep used on a Cluster, exercised here on one Redis.
stateContract('redis, rooms index kept separately (as on a Cluster)', async () => {
  const store = await RedisState.connect(redis.url, { prefix: freshPrefix(), roomIndex: 'separate' });
  return { store, cleanup: () => store.close() };
});

const alice: Participant = { sessionId: 'a', userId: 'alice', name: 'Alice', joinedAt: 1 };
const bob: Participant = { sessionId: 'b', userId: 'bob', name: 'Bob', joinedAt: 2 };
const floor: FloorHolder = { sessionId: 'a', userId: 'alice', name: 'Alice', priority: 1, since: 1 };

describe('RedisState on a real redis-server', () => {
  let raw: Redis;
  const stores: RedisState[] = [];
  const open = async (opts: RedisStateOptions = {}) => {
    const store = await RedisState.connect(redis.url, { prefix: freshPrefix(), ...opts });
    stores.push(store);
    return store;
  };
  beforeAll(() => {
    raw = new Redis(redis.url);
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(() => raw.quit());

  it('writes the documented key layout', async () => {
    const store = await open({ prefix: 'layout:' });
    await store.joinRoom('lobby', alice, 10);
    expect(JSON.parse((await raw.hget('layout:room:{lobby}:members', 'a')) ?? 'null')).toEqual(alice);
    expect(await raw.smembers('layout:rooms')).toEqual(['lobby']);
    expect(await raw.pttl('layout:room:{lobby}:members')).toBe(-1);

    const got = await store.acquireSpeaker('lobby', floor, 5_000);
    if (!got.granted) throw new Error('expected a grant');
    expect(JSON.parse((await raw.get('layout:room:{lobby}:speaker')) ?? 'null')).toEqual({
      ...floor,
      fence: got.fence,
    });
    expect(await raw.pttl('layout:room:{lobby}:speaker')).toBeGreaterThan(4_000);
    expect(await raw.get('layout:room:{lobby}:fence')).toBe(String(got.fence));
    expect(await raw.pttl('layout:room:{lobby}:fence')).toBeGreaterThan(24 * 3_600_000);

    await store.putResumeToken('hash1', { sessionId: 'a', userId: 'alice' }, 60_000);
    expect(JSON.parse((await raw.get('layout:resume:hash1')) ?? 'null')).toEqual({
      sessionId: 'a',
      userId: 'alice',
    });
    expect(await raw.pttl('layout:resume:hash1')).toBeGreaterThan(50_000);

    // Leaving the last member removes the hash and the index entry.
    await store.leaveRoom('lobby', 'a');
    expect(await raw.exists('layout:room:{lobby}:members', 'layout:rooms')).toBe(0);
  });

  it('uses the prefix parley: by default and refuses braces in a prefix', async () => {
    const store = new RedisState(new Redis(redis.url));
    stores.push(store);
    await store.joinRoom('default-prefix', alice, 10);
    expect(await raw.hexists('parley:room:{default-prefix}:members', 'a')).toBe(1);
    await store.leaveRoom('default-prefix', 'a');
    expect(() => new RedisState(raw, { prefix: 'x{y}:' })).toThrow(/braces/);
  });

  it('skips and logs corrupt values instead of crashing', async () => {
    const { log, lines } = captureLogs('debug');
    const prefix = freshPrefix();
    const store = await open({ prefix, log });
    const members = `${prefix}room:{r}:members`;
    await store.joinRoom('r', alice, 10);
    await raw.hset(members, 'junk', '{not json', 'shape', JSON.stringify({ sessionId: 7 }));

    expect(await store.participants('r')).toEqual([alice]);
    const joined = await store.joinRoom('r', bob, 10);
    expect(joined).toEqual({ status: 'joined', participants: [alice, bob] });
    expect(await store.leaveRoom('r', 'junk')).toBeNull();
    expect(await raw.hexists(members, 'junk')).toBe(0);
    const warned = lines.filter((l) => l.msg === 'ignoring corrupt value in redis');
    expect(warned.length).toBeGreaterThanOrEqual(3);
    expect(warned[0]).toMatchObject({ level: 40, key: members });

    // A corrupt lock counts as no lock: it cannot be renewed or released, and an acquire replaces it.
    await raw.set(`${prefix}room:{r}:speaker`, '"just a string"', 'PX', 60_000);
    expect(await store.currentSpeaker('r')).toBeNull();
    expect(await store.renewSpeaker('r', 1, 5_000)).toBe(false);
    expect(await store.releaseSpeaker('r', 1)).toBe(false);
    const got = await store.acquireSpeaker('r', floor, 5_000);
    expect(got.granted).toBe(true);
    expect(await store.currentSpeaker('r')).toMatchObject({ sessionId: 'a' });

    await raw.set(`${prefix}resume:h`, '[1,2]', 'PX', 60_000);
    expect(await store.getResumeToken('h')).toBeNull();
  });

  it('runs its scripts again after SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
    const store = await open();
    await store.joinRoom('r', alice, 10);
    await raw.script('FLUSH');
    expect((await store.joinRoom('r', bob, 10)).status).toBe('joined');
    const got = await store.acquireSpeaker('r', floor, 5_000);
    await raw.script('FLUSH');
    if (!got.granted) throw new Error('expected a grant');
    expect(await store.releaseSpeaker('r', got.fence)).toBe(true);
  });

  it('keeps fences growing after Redis loses its data, so a stale holder cannot touch the new lock', async () => {
    const store = await open();
    const before = await store.acquireSpeaker('r', floor, 5_000);
    if (!before.granted) throw new Error('expected a grant');
    await raw.flushall();
    const after = await store.acquireSpeaker('r', { ...floor, sessionId: 'b' }, 5_000);
    if (!after.granted) throw new Error('expected a grant');
    expect(after.fence).toBeGreaterThan(before.fence);
    expect(await store.releaseSpeaker('r', before.fence)).toBe(false);
    expect(await store.renewSpeaker('r', before.fence, 5_000)).toBe(false);
    expect(await store.currentSpeaker('r')).toMatchObject({ sessionId: 'b', fence: after.fence });
  });

  it('an operation that Redis does not answer times out (before Redis answers again)', async () => {
    const store = await open();
    await raw.client('PAUSE', 1_500, 'ALL');
    // Rejected, not answered: the store's timeout fired while Redis was paused.
    await expect(store.participants('r')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    await waitUntil(async () => (await store.participants('r').catch(() => null)) !== null, 'redis unpaused');
    expect(store.ready()).toBe(true);
  });
});

describe('RedisState while redis-server is down', () => {
  let own: TestRedis;
  beforeAll(async () => {
    own = await startRedis();
  });
  afterAll(() => own?.stop());

  it('fails fast, reports not ready, and serves again after a restart on its own', async () => {
    const { log, lines } = captureLogs('debug');
    const store = await RedisState.connect(own.url, { log });
    const other = await RedisState.connect(own.url);
    await store.joinRoom('r', alice, 10);
    expect(store.ready()).toBe(true);

    await own.stop();
    const ops: [string, () => Promise<unknown>][] = [
      ['participants', () => store.participants('r')],
      ['joinRoom', () => store.joinRoom('r', bob, 10)],
      ['acquireSpeaker', () => store.acquireSpeaker('r', floor, 5_000)],
      ['takeResumeToken', () => store.takeResumeToken('h')],
    ];
    // Fail fast: each rejects (nothing is queued until Redis is back, which would hang the test).
    for (const [name, op] of ops) {
      await expect(op(), name).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    }
    await waitUntil(() => !store.ready(), 'store reports not ready');

    // Closing while Redis is unreachable does not hang.
    await other.close();

    await own.restart();
    await waitUntil(() => store.ready(), 'store ready again', 10_000);
    // No persistence: the restarted Redis is empty, and the same RedisState serves again.
    expect(await store.participants('r')).toEqual([]);
    expect(await store.joinRoom('r', bob, 10)).toEqual({ status: 'joined', participants: [bob] });
    expect((await store.acquireSpeaker('r', floor, 5_000)).granted).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['redis connection lost; reconnecting', 'redis connection restored']),
    );
    await store.close();
    await store.close();
    expect(store.ready()).toBe(false);
  });

  it('connect() gives up after startupTimeoutMs when nothing listens', async () => {
    await own.stop();
    await expect(RedisState.connect(own.url, { startupTimeoutMs: 300 })).rejects.toThrow(
      /not ready within 300 ms/,
    );
  });
});

describe('RedisState on a (one-node) Redis Cluster', () => {
  let cluster: TestRedis;
  beforeAll(async () => {
    cluster = await startRedis({ cluster: true });
  });
  afterAll(() => cluster?.stop());

  it('works through cluster: true alone, keeping every room script in one slot', async () => {
    const store = await RedisState.connect(cluster.url, { cluster: true, prefix: freshPrefix() });
    try {
      expect(await store.joinRoom('r1', alice, 1)).toEqual({ status: 'joined', participants: [alice] });
      expect(await store.joinRoom('r1', bob, 1)).toEqual({ status: 'full' });
      await store.joinRoom('r2', bob, 1);
      expect(await store.roomCount()).toBe(2);
      const got = await store.acquireSpeaker('r1', floor, 5_000);
      if (!got.granted) throw new Error('expected a grant');
      expect(await store.renewSpeaker('r1', got.fence, 5_000)).toBe(true);
      expect(await store.releaseSpeaker('r1', got.fence)).toBe(true);
      expect(await store.leaveRoom('r1', 'a')).toEqual(alice);
      expect(await store.roomCount()).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('the atomic rooms index would cross slots there, which is why it is not the Cluster default', async () => {
    const store = await RedisState.connect(cluster.url, { cluster: true, roomIndex: 'atomic' });
    try {
      await expect(store.joinRoom('r1', alice, 10)).rejects.toThrow(/slot/i);
    } finally {
      await store.close();
    }
  });
});
