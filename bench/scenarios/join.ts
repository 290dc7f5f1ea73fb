/**
 * Scenario 3: join. connect (auth on the upgrade, `welcome`) → `room:join` → `media:capabilities`
 * → `transport:create` send → `transport:create` recv ("ready"), one client after another, against
 * Parley with two mediasoup workers. Timed by the client over loopback, so it is the server's time
 * plus a loopback round trip per step.
 */
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { GenProc } from '../lib/ipc.js';
import { benchManifest } from '../lib/manifest.js';
import { startParley } from '../lib/servers.js';
import { median, round, summarize } from '../lib/stats.js';

const PER_ROUND = 150;

export async function joinScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const server = ctx.track(
    await startParley(
      'parley-join',
      { MEDIASOUP_WORKERS: '2', MAX_CONNECTIONS_PER_IP: '0', PARLEY_MANIFEST: benchManifest() },
      { cpuProfDir: ctx.cpuProfDir },
    ),
  );
  const gen = new GenProc('join-gen', 'bench/gen/join-gen.ts');
  ctx.track(gen);
  // Warm-up room (not measured).
  await gen.request('joinSeq', { url: server.url(), roomId: 'join-warmup', count: 30, prefix: 'jw-' });
  const rows: Record<string, number>[] = [];
  const perRound: { p50: number; p99: number }[] = [];
  for (let r = 0; r < ctx.rounds; r++) {
    const got = await gen.request<Record<string, number>[]>(
      'joinSeq',
      { url: server.url(), roomId: `join-r${r}`, count: PER_ROUND, prefix: `j${r}-` },
      { timeoutMs: 120_000 },
    );
    rows.push(...got);
    const s = summarize(got.map((x) => x.joinToReadyMs));
    perRound.push({ p50: s.p50, p99: s.p99 });
  }
  await gen.request('close');
  await gen.close();
  await server.stop();
  const steps = Object.keys(rows[0] ?? {});
  const pooled = Object.fromEntries(
    steps.map((k) => {
      const s = summarize(rows.map((x) => x[k]));
      return [k, { p50: round(s.p50), p99: round(s.p99), max: round(s.max) }];
    }),
  );
  const ready = pooled.joinToReadyMs as { p50: number; p99: number };
  const total = pooled.totalMs as { p50: number; p99: number };
  ctx.say(
    `join: join→ready p50 ${ready.p50} ms p99 ${ready.p99} ms; with connect+auth p50 ${total.p50} ms p99 ${total.p99} ms ` +
      `(${rows.length} joins, rooms growing to ${PER_ROUND})`,
  );
  return [
    {
      scenario: 'join',
      workers: 2,
      joins: rows.length,
      perRoom: PER_ROUND,
      stepsMs: pooled,
      roundMedians: {
        joinToReadyP50: round(median(perRound.map((x) => x.p50))),
        joinToReadyP99: round(median(perRound.map((x) => x.p99))),
      },
      targetsMet: { p50Le15ms: total.p50 <= 15 },
    },
  ];
}
