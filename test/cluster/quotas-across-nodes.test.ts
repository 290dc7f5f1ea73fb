import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * MAX_SESSIONS_PER_USER across nodes (issue 13): the count is the cluster directory's (every node's
 * sessions of the user, suspended ones included), so spreading connections over nodes does not
 * multiply it. Only a node's own suspended sessions can be ended to make room
 * (docs/architecture.md, "Quotas").
 */

describe('sessions per user, counted across two nodes', () => {
  let redis: TestRedis;
  let probe: Redis;
  let n1: TestServer;
  let n2: TestServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    probe = new Redis({ path: redis.path });
    const env = (id: string) => ({
      REDIS_URL: redis.url,
      NODE_ID: id,
      MAX_SESSIONS_PER_USER: '3',
      RESUME_GRACE_MS: '60000',
      LOG_LEVEL: 'info',
    });
    [n1, n2] = await Promise.all([startServer(env('q-node-1')), startServer(env('q-node-2'))]);
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all([n1?.close(), n2?.close()]);
    probe?.disconnect();
    await redis?.stop();
  });

  /** The user's sessions in the cluster directory. */
  const directoryCount = (userId: string) => probe.hlen(`parley:user:{${userId}}:sessions`);

  async function open(node: TestServer, sub: string): Promise<{ c: TestClient; first: ServerMessage }> {
    const token = await node.token({ sub });
    const c = new TestClient(node.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    clients.push(c);
    await c.opened;
    const first = await c.waitFor((m) => m.type === 'welcome' || m.type === 'error');
    return { c, first };
  }

  it('a fourth session on either node is refused while all three are live; a node ends its own suspended one to make room', async () => {
    const a1 = await open(n1, 'hog');
    const a2 = await open(n1, 'hog');
    const b1 = await open(n2, 'hog');
    for (const o of [a1, a2, b1]) expect(o.first.type).toBe('welcome');
    await waitUntil(async () => (await directoryCount('hog')) === 3, 'three sessions in the directory');

    // Node 2 holds only one of them, yet it refuses a fourth: 4429.
    const over = await open(n2, 'hog');
    expect(over.first).toMatchObject({
      type: 'error',
      payload: { code: 'QUOTA_EXCEEDED', details: { quota: 'sessions', limit: 3 } },
    });
    expect((await over.c.closed).code).toBe(4429);

    // A session suspended on node 1 makes room on node 1 (it ends there)...
    a1.c.ws.terminate();
    const a1Id = a1.first.type === 'welcome' ? a1.first.payload.sessionId : '';
    await waitUntil(
      () => n1.server.internalsForTesting.sessions.get(a1Id)?.suspended === true,
      'the session to be suspended',
    );
    // ...but not on node 2, which cannot end another node's session: still refused there.
    const elsewhere = await open(n2, 'hog');
    expect(elsewhere.first).toMatchObject({ type: 'error', payload: { code: 'QUOTA_EXCEEDED' } });
    const here = await open(n1, 'hog');
    expect(here.first.type).toBe('welcome');
    expect(n1.server.internalsForTesting.sessions.get(a1Id)).toBeUndefined();
    await waitUntil(async () => (await directoryCount('hog')) === 3, 'still three sessions in the directory');

    // Another user is served on both nodes meanwhile.
    for (const node of [n1, n2]) {
      const other = await open(node, 'other');
      expect(other.first.type).toBe('welcome');
      expect((await other.c.request('room:join', { roomId: 'lobby' })).type).toBe('room:state');
    }
  });
});
