import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusPeers } from '../../src/server/cluster/bus-peers.js';
import { createLogger } from '../../src/server/logger.js';
import { RedisDirectory } from '../../src/server/state/redis/redis-directory.js';
import { RedisState } from '../../src/server/state/redis/redis-state.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Which nodes read batched bus publications, from the registry records in a real redis-server:
 * a node not known yet gets single messages until its record has been read, once; a record
 * without `bus` (the previous release) or no record at all means single messages; every registry
 * tick replaces what was known, so a node restarted on another release is followed.
 */

const quiet = createLogger('silent');

describe('BusPeers', () => {
  let redis: TestRedis;
  let state: RedisState;
  let dir: RedisDirectory;
  let lookups: string[];
  let peers: BusPeers;

  beforeAll(async () => {
    redis = await startRedis();
    state = await RedisState.connect(redis.url, { log: quiet });
    dir = new RedisDirectory(state);
    await dir.heartbeat({ nodeId: 'bp-new', startedAt: 1, address: 'a', bus: 2 }, 60_000);
    await dir.heartbeat({ nodeId: 'bp-old', startedAt: 1, address: 'b' }, 60_000);
    lookups = [];
    peers = new BusPeers({
      lookup: (nodeId) => {
        lookups.push(nodeId);
        return dir.node(nodeId);
      },
      log: quiet,
    });
  });
  afterAll(async () => {
    await state?.close();
    await redis?.stop();
  });

  it('answers false for a node not known yet, reads its record once, then answers from memory', async () => {
    expect(peers.readsBatches('bp-new')).toBe(false);
    expect(peers.readsBatches('bp-new')).toBe(false); // the lookup in flight is not repeated
    expect(peers.readsBatches('bp-old')).toBe(false);
    expect(peers.readsBatches('bp-nobody')).toBe(false);
    await waitUntil(() => peers.readsBatches('bp-new'), 'the record of bp-new read');
    expect(lookups.sort()).toEqual(['bp-new', 'bp-nobody', 'bp-old']);
    // Known now: the previous release's record and a node not registered mean single messages.
    expect(peers.readsBatches('bp-old')).toBe(false);
    expect(peers.readsBatches('bp-nobody')).toBe(false);
    expect(lookups).toHaveLength(3);
  });

  it('follows the registry: a node restarted on another release, and one that left', async () => {
    await dir.heartbeat({ nodeId: 'bp-old', startedAt: 2, address: 'b', bus: 2 }, 60_000); // upgraded
    await dir.heartbeat({ nodeId: 'bp-new', startedAt: 2, address: 'a' }, 60_000); // rolled back
    peers.seen((await dir.nodes()).map((n) => n.info));
    expect(peers.readsBatches('bp-old')).toBe(true);
    expect(peers.readsBatches('bp-new')).toBe(false);
    // Gone from the registry: forgotten, and looked up again on the next contact.
    await dir.forgetNode('bp-old');
    peers.seen((await dir.nodes()).map((n) => n.info));
    const before = lookups.length;
    expect(peers.readsBatches('bp-old')).toBe(false);
    await waitUntil(() => lookups.length > before, 'a new lookup');
    expect(lookups.at(-1)).toBe('bp-old');
  });

  it('a record that is not JSON counts as the previous release', async () => {
    await state.client.hset('parley:nodes', 'bp-corrupt', '{not json');
    expect(peers.readsBatches('bp-corrupt')).toBe(false);
    await waitUntil(() => lookups.includes('bp-corrupt'), 'the corrupt record read');
    await expect(dir.node('bp-corrupt')).resolves.toMatchObject({ nodeId: 'bp-corrupt' });
    expect(peers.readsBatches('bp-corrupt')).toBe(false);
  });
});
