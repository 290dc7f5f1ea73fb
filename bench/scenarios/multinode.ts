/**
 * Scenario 6: multi-node. Two Parley node processes sharing a redis-server. The same relay generator
 * as scenario 1 with pairs whose two sides sit on the same node, or on different nodes (every
 * message crosses Redis pub/sub), plus a memory-backed single node for reference. Latency at
 * fixed offered loads; the difference is what crossing nodes adds.
 */
import { startRedis } from '../../test/helpers/redis.js';
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { GenProc } from '../lib/ipc.js';
import { medianOf, withCpuWindow } from '../lib/measure.js';
import { RELAY_BENCH_ENV, startParley } from '../lib/servers.js';
import { ratio, round } from '../lib/stats.js';

interface RunResult {
  delivered: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: number;
  lostAfterDrain: number;
}

export async function multinodeScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const redis = await startRedis();
  ctx.track({ close: () => redis.stop() });
  const base = {
    MAX_CONNECTIONS_PER_IP: '0',
    MEDIASOUP_WORKERS: '0',
    ...RELAY_BENCH_ENV,
  };
  const single = ctx.track(await startParley('parley-single', base));
  const n1 = ctx.track(
    await startParley(
      'parley-node1',
      { ...base, REDIS_URL: redis.url, NODE_ID: 'bench-n1' },
      { cpuProfDir: ctx.cpuProfDir },
    ),
  );
  const n2 = ctx.track(
    await startParley(
      'parley-node2',
      { ...base, REDIS_URL: redis.url, NODE_ID: 'bench-n2' },
      { cpuProfDir: ctx.cpuProfDir },
    ),
  );
  const configs: { name: string; urlA: string; urlB: string; pids: Record<string, number> }[] = [
    { name: 'memorySingleNode', urlA: single.url(), urlB: single.url(), pids: { a: single.pid } },
    { name: 'redisSameNode', urlA: n1.url(), urlB: n1.url(), pids: { a: n1.pid } },
    { name: 'redisCrossNode', urlA: n1.url(), urlB: n2.url(), pids: { a: n1.pid, b: n2.pid } },
  ];
  const gens = configs.map((c) => new GenProc(`mn-gen-${c.name}`, 'bench/gen/relay-gen.ts'));
  for (const g of gens) ctx.track(g);
  for (const [i, c] of configs.entries()) {
    await gens[i].request('setup', {
      protocol: 'parley',
      urlA: c.urlA,
      urlB: c.urlB,
      pairs: 25,
      tag: `${c.name}-`,
    });
    await gens[i].request('run', {
      payload: 'ice',
      mode: 'rate',
      rate: 2_000,
      warmupMs: 1_000,
      durationMs: 200,
    });
  }
  const rows: Record<string, Record<string, Record<string, number>[]>> = {};
  for (let r = 0; r < ctx.rounds; r++) {
    for (const rate of [1_000, 5_000]) {
      for (const [i, c] of configs.entries()) {
        const { result, cpu } = await withCpuWindow<RunResult>(
          gens[i],
          'run',
          { payload: 'ice', mode: 'rate', rate, warmupMs: 300, durationMs: 1_500 },
          c.pids,
        );
        const cpuUs = Object.values(cpu).reduce((n, x) => n + x.cpuUs, 0);
        ((rows[c.name] ??= {})[`ice@${rate / 1000}k`] ??= []).push({
          p50Ms: result.latencyMs.p50,
          p99Ms: result.latencyMs.p99,
          maxMs: result.latencyMs.max,
          serversCpuUsPerMsg: round(cpuUs / Math.max(1, result.delivered), 2),
          errors: result.errors,
          lost: result.lostAfterDrain,
        });
      }
    }
  }
  for (const g of gens) await g.request('close').catch(() => undefined);
  await Promise.all(gens.map((g) => g.close()));
  await Promise.all([single, n1, n2].map((s) => s.stop()));
  await redis.stop();
  const med: Record<string, Record<string, Record<string, number>>> = {};
  for (const [n, byRate] of Object.entries(rows)) {
    med[n] = {};
    for (const [k, list] of Object.entries(byRate)) med[n][k] = medianOf(list) as Record<string, number>;
  }
  const added = (k: string, p: 'p50Ms' | 'p99Ms') =>
    round(med.redisCrossNode[k][p] - med.redisSameNode[k][p]);
  const addedVsMemory = (k: string, p: 'p50Ms' | 'p99Ms') =>
    round(med.redisCrossNode[k][p] - med.memorySingleNode[k][p]);
  const addedMs = {
    'ice@1k': { p50: added('ice@1k', 'p50Ms'), p99: added('ice@1k', 'p99Ms') },
    'ice@5k': { p50: added('ice@5k', 'p50Ms'), p99: added('ice@5k', 'p99Ms') },
  };
  const addedVsMemoryMs = {
    'ice@1k': { p50: addedVsMemory('ice@1k', 'p50Ms'), p99: addedVsMemory('ice@1k', 'p99Ms') },
    'ice@5k': { p50: addedVsMemory('ice@5k', 'p50Ms'), p99: addedVsMemory('ice@5k', 'p99Ms') },
  };
  // CPU per relayed message against the memory backend's, at 5k msg/s (at 1k a window holds too few
  // 10 ms ticks). Cross node counts both nodes' CPU: what the cluster spends on one relay.
  const cpuAt5k = (n: string) => med[n]['ice@5k'].serversCpuUsPerMsg;
  const cpuVsMemory = {
    sameNode: ratio(cpuAt5k('redisSameNode'), cpuAt5k('memorySingleNode')),
    crossNode: ratio(cpuAt5k('redisCrossNode'), cpuAt5k('memorySingleNode')),
  };
  ctx.say(
    `multi-node CPU/msg @5k: memory ${cpuAt5k('memorySingleNode')} µs, Redis same node ${cpuAt5k('redisSameNode')} µs ` +
      `(${cpuVsMemory.sameNode}×), cross node ${cpuAt5k('redisCrossNode')} µs (${cpuVsMemory.crossNode}×)`,
  );
  ctx.say(
    `multi-node @1k: same node p50 ${med.redisSameNode['ice@1k'].p50Ms} / p99 ${med.redisSameNode['ice@1k'].p99Ms} ms, ` +
      `cross node ${med.redisCrossNode['ice@1k'].p50Ms} / ${med.redisCrossNode['ice@1k'].p99Ms} ms ` +
      `(added ${addedMs['ice@1k'].p50} / ${addedMs['ice@1k'].p99} ms; memory single node ${med.memorySingleNode['ice@1k'].p50Ms} / ${med.memorySingleNode['ice@1k'].p99Ms} ms)`,
  );
  return [
    {
      scenario: 'multinode',
      pairs: 25,
      medians: med,
      addedByCrossingMs: addedMs,
      addedVsMemorySingleNodeMs: addedVsMemoryMs,
      cpuPerMsgVsMemoryAt5k: cpuVsMemory,
      // Issue 14: a same-node relay ≤ 1.2× the memory backend's CPU per message, cross node ≤ 2.5×.
      targetsMet: {
        sameNodeLe1_2xMemory: cpuVsMemory.sameNode <= 1.2,
        crossNodeLe2_5xMemory: cpuVsMemory.crossNode <= 2.5,
      },
    },
  ];
}
