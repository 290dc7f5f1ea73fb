import { afterAll, beforeAll } from 'vitest';
import type { TestClient } from './client.js';
import { startNodeProcess, type NodeProcess } from './node-process.js';
import { startRedis, type TestRedis } from './redis.js';

/**
 * A redis-server and one Parley node process per id for a describe block (started before its
 * tests, in parallel; stopped after them), and the clients its tests open (terminated after them).
 * Call it in the describe's body; `redis()` and `nodes` are for use inside its tests and hooks.
 * `nodes` is the live list: a test that starts more nodes may push them, and they are stopped too.
 */
export function clusterForSuite(
  nodeIds: readonly string[],
  env: (nodeId: string, redis: TestRedis) => Record<string, string>,
  opts: { startTimeoutMs?: number; hookTimeoutMs?: number } = {},
) {
  let srv: TestRedis | undefined;
  const nodes: NodeProcess[] = [];
  const clients: TestClient[] = [];
  beforeAll(async () => {
    const redis = await startRedis();
    srv = redis;
    nodes.push(
      ...(await Promise.all(nodeIds.map((id) => startNodeProcess(env(id, redis), opts.startTimeoutMs)))),
    );
  }, opts.hookTimeoutMs ?? 90_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await srv?.stop();
  });
  return {
    nodes,
    redis: (): TestRedis => {
      if (!srv) throw new Error('the suite’s redis-server is not started yet: use it inside a test or hook');
      return srv;
    },
    /** A client the test opened, terminated after the suite. */
    adopt: <C extends TestClient>(c: C): C => {
      clients.push(c);
      return c;
    },
  };
}
