/**
 * Scenario 2: connections. Ramp to ~20k concurrent authenticated idle connections on one node, per
 * server: RSS per connection above the server's idle baseline (after a full GC on both sides of the
 * ramp) and the connect (+auth +welcome) rate. Two generator processes share the load, and the two
 * vCPUs with the server: a ramp keeps the machine busy, so its rate follows the server's CPU per
 * connect plus the generators' (`generatorCpuUsPerConnect`, both generators together).
 *
 * BENCH_PROFILE=ramp: a V8 CPU profile of each Parley's ramp alone. BENCH_PROFILE=perf: every
 * server (raw, PeerJS, Parley, the baseline Parley) runs with `--perf-basic-prof` and
 * `perf record -g` samples it during its ramp alone, into
 * bench/results/profiles/<server>-conn/perf.data (JIT symbols from /tmp/perf-<pid>.map; read with
 * `perf report -i … --no-children`, e.g. by bucket with bench/lib/perf-buckets.ts). Needs `perf`
 * and the right to trace the server (root, or perf_event_paranoid ≤ 1).
 */
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { GenProc } from '../lib/ipc.js';
import type { Protocol } from '../lib/payloads.js';
import { cpuMeter, fdCount, fdHardLimit, rssKiB } from '../lib/proc.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parleyBaselineRoot, ROOT, startParley, startServerProc, type ServerProc } from '../lib/servers.js';
import { ratio, round, sleep } from '../lib/stats.js';

const GENS = 2;

/** BENCH_PROFILE=ramp: Parley servers profile the connect ramp alone (into bench/results/profiles/<name>/). */
function rampProfiling(): boolean {
  return process.env.BENCH_PROFILE === 'ramp';
}

/** The server options that make a Parley profile its ramp (nothing unless BENCH_PROFILE=ramp). */
function rampProfileOptions(name: string): { nodeFlags?: string[]; env?: Record<string, string> } {
  if (!rampProfiling()) return {};
  const dir = join(ROOT, 'bench/results/profiles', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return {
    nodeFlags: ['--import', join(ROOT, 'bench/lib/profile-on-signal.mjs')],
    env: { BENCH_PROFILE_OUT: dir },
  };
}
/** BENCH_PROFILE=perf: every server is sampled by `perf record -g` during its ramp. */
function perfProfiling(): boolean {
  return process.env.BENCH_PROFILE === 'perf';
}

/** The directory a server's perf.data goes to (emptied), and the flag that gives perf JS symbols. */
function perfProfileOptions(name: string): { nodeFlags?: string[] } {
  if (!perfProfiling()) return {};
  const dir = join(ROOT, 'bench/results/profiles', `${name}-conn`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return { nodeFlags: ['--perf-basic-prof'] };
}

/** Starts `perf record -g` on a server; resolves once perf has attached. */
async function startPerf(name: string, pid: number): Promise<ChildProcess> {
  const out = join(ROOT, 'bench/results/profiles', `${name}-conn`, 'perf.data');
  const perf = spawn('perf', ['record', '-g', '-F', '999', '-p', String(pid), '-o', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  perf.stderr?.on('data', () => undefined);
  await sleep(300);
  if (perf.exitCode !== null) throw new Error(`perf record exited (${perf.exitCode}): is perf allowed here?`);
  return perf;
}

async function stopPerf(perf: ChildProcess): Promise<void> {
  if (perf.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => perf.once('exit', () => resolve()));
  perf.kill('SIGINT');
  await exited;
}
const WARMUP = 400;
const CONCURRENCY = 50;

interface RampResult {
  opened: number;
  failures: number;
  firstError: string | null;
  ms: number;
  perSec: number;
  cpuUs: number;
}

async function rampOne(
  ctx: Ctx,
  name: string,
  protocol: Protocol,
  start: () => Promise<ServerProc>,
  target: number,
): Promise<Record<string, number | string | null>> {
  const server = ctx.track(await start());
  const path = protocol === 'peerjs' ? '/peerjs' : '/ws';
  const gens = Array.from(
    { length: GENS },
    (_, g) => new GenProc(`conn-gen-${name}-${g}`, 'bench/gen/conn-gen.ts'),
  );
  for (const g of gens) ctx.track(g);
  const perGen = Math.ceil((target + WARMUP) / GENS);
  await Promise.all(
    gens.map((g, gi) =>
      g.request(
        'prepare',
        {
          protocol,
          url: server.url(path),
          prefix: `${name}-g${gi}-`,
          count: perGen,
          // 127.0.0.2..9, four per generator: ephemeral ports never run short.
          localAddresses: [2, 3, 4, 5].map((k) => `127.0.0.${k + gi * 4}`),
        },
        { timeoutMs: 120_000 },
      ),
    ),
  );
  // Warm-up: JIT and pools, then clean closes so no session lingers in a resume window.
  const warmPer = WARMUP / GENS;
  await Promise.all(
    gens.map((g) => g.request('ramp', { from: 0, count: warmPer, concurrency: CONCURRENCY })),
  );
  await Promise.all(gens.map((g) => g.request('closeClean')));
  await sleep(500);
  await server.gc();
  const rssBefore = rssKiB(server.pid);
  const fdsBefore = fdCount(server.pid);

  // BENCH_PROFILE=ramp: a CPU profile of the ramp alone (bench/lib/profile-on-signal.mjs).
  if (rampProfiling()) server.child.kill('SIGWINCH');
  const perf = perfProfiling() ? await startPerf(name, server.pid) : null;
  const cpu = cpuMeter(server.pid);
  const t0 = performance.now();
  const ramps = await Promise.all(
    gens.map((g) =>
      g.request<RampResult>(
        'ramp',
        { from: warmPer, count: target / GENS, concurrency: CONCURRENCY },
        { timeoutMs: 180_000 },
      ),
    ),
  );
  const ms = performance.now() - t0;
  const c = cpu.stop();
  if (perf) await stopPerf(perf);
  if (rampProfiling()) {
    server.child.kill('SIGWINCH');
    await sleep(2_000);
  }
  const opened = ramps.reduce((n, r) => n + r.opened, 0);
  const failures = ramps.reduce((n, r) => n + r.failures, 0);
  await sleep(1_000);
  const rssBeforeGc = rssKiB(server.pid);
  await server.gc();
  await sleep(500);
  const rssAfter = rssKiB(server.pid);
  const fdsAfter = fdCount(server.pid);
  // Kill the server first: it then closes actively, so the client side keeps no TIME_WAIT ports.
  await server.stop({ kill: !ctx.cpuProfDir }); // a profile is only written on a clean exit
  await Promise.all(gens.map((g) => g.request('terminate').catch(() => undefined)));
  await Promise.all(gens.map((g) => g.close()));
  const perConnKiB = (rssAfter - rssBefore) / Math.max(1, opened);
  ctx.say(
    `  ${name}: ${opened} open (${failures} failed${failures ? `: ${ramps.find((r) => r.firstError)?.firstError}` : ''}) in ${round(ms / 1000, 2)} s ` +
      `= ${round((opened * 1000) / ms, 0)}/s; RSS ${rssBefore} → ${rssAfter} KiB = ${round(perConnKiB, 2)} KiB/conn`,
  );
  return {
    connections: opened,
    failures,
    firstError: ramps.find((r) => r.firstError)?.firstError ?? null,
    rampS: round(ms / 1000, 2),
    connectsPerSec: round((opened * 1000) / ms, 0),
    serverCpuUsPerConnect: round(c.cpuUs / Math.max(1, opened), 1),
    // The generators share the two vCPUs with the server: the ramp is bound by the sum (docs/benchmarks.md,
    // Round 2, eighth pass), so a server's rate follows its own CPU per connect plus theirs.
    generatorCpuUsPerConnect: round(ramps.reduce((n, r) => n + r.cpuUs, 0) / Math.max(1, opened), 1),
    rssBaselineKiB: rssBefore,
    rssAfterRampKiB: rssBeforeGc,
    rssAfterGcKiB: rssAfter,
    rssPerConnKiB: round(perConnKiB, 2),
    serverFds: fdsAfter - fdsBefore,
  };
}

export async function connectionsScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const hard = fdHardLimit();
  // A server needs one descriptor per connection plus its own ~30; the container's hard limit
  // (RLIMIT_NOFILE, which cannot be raised without CAP_SYS_RESOURCE) may cap the ramp below 20k.
  const target = Number(
    process.env.BENCH_CONNECTIONS ?? Math.min(20_000, Math.floor((hard - 80) / 100) * 100),
  );
  if (target < 20_000) ctx.say(`  fd hard limit ${hard}: ramping to ${target} connections (not 20,000)`);
  // MAX_CONNECTIONS (10,000 by default) would refuse the ramp's second half with 503.
  const parleyEnv = { MAX_CONNECTIONS_PER_IP: '0', MAX_CONNECTIONS: '0', MEDIASOUP_WORKERS: '0' };
  const baselineRoot = parleyBaselineRoot();
  const rows: Record<string, Record<string, number | string | null>> = {
    raw: await rampOne(
      ctx,
      'raw',
      'raw',
      () => startServerProc('raw-conn', 'bench/baselines/raw-relay.ts', perfProfileOptions('raw')),
      target,
    ),
    peerjs: await rampOne(
      ctx,
      'peerjs',
      'peerjs',
      () => startServerProc('peerjs-conn', 'bench/baselines/peerjs.ts', perfProfileOptions('peerjs')),
      target,
    ),
    parley: await rampOne(
      ctx,
      'parley',
      'parley',
      () => {
        const p = rampProfileOptions('parley-conn');
        return startParley(
          'parley-conn',
          { ...parleyEnv, ...p.env },
          { cpuProfDir: ctx.cpuProfDir, ...p, ...perfProfileOptions('parley') },
        );
      },
      target,
    ),
  };
  if (baselineRoot) {
    // The same ramp against another checkout of Parley, right after this one's (an A/B).
    rows.parleyBaseline = await rampOne(
      ctx,
      'parley-baseline',
      'parley',
      () => {
        const p = rampProfileOptions('parley-conn-baseline');
        return startParley(
          'parley-conn-baseline',
          { ...parleyEnv, ...p.env },
          { cpuProfDir: ctx.cpuProfDir, root: baselineRoot, ...p, ...perfProfileOptions('parley-baseline') },
        );
      },
      target,
    );
  }
  const n = (s: string, k: string) => Number(rows[s][k]);
  const parleyAboveRaw = n('parley', 'rssPerConnKiB') - n('raw', 'rssPerConnKiB');
  return [
    {
      scenario: 'connections',
      targetConnections: target,
      fdHardLimit: hard,
      servers: rows,
      ratios: {
        rssPerConnVsRaw: ratio(n('parley', 'rssPerConnKiB'), n('raw', 'rssPerConnKiB')),
        rssPerConnVsPeerjs: ratio(n('parley', 'rssPerConnKiB'), n('peerjs', 'rssPerConnKiB')),
        connectRateVsRaw: ratio(n('parley', 'connectsPerSec'), n('raw', 'connectsPerSec')),
        connectRateVsPeerjs: ratio(n('parley', 'connectsPerSec'), n('peerjs', 'connectsPerSec')),
        ...(baselineRoot
          ? {
              vsBaseline: {
                rssPerConn: ratio(n('parley', 'rssPerConnKiB'), n('parleyBaseline', 'rssPerConnKiB')),
                cpuPerConnect: ratio(
                  n('parley', 'serverCpuUsPerConnect'),
                  n('parleyBaseline', 'serverCpuUsPerConnect'),
                ),
                connectRate: ratio(n('parley', 'connectsPerSec'), n('parleyBaseline', 'connectsPerSec')),
              },
            }
          : {}),
      },
      parleyRssPerConnAboveRawKiB: round(parleyAboveRaw, 2),
      // Issue 14: memory per idle connection ≤ 1.15× the raw ws server's; connect rate ≥ PeerJS's.
      targetsMet: {
        rssPerConnLe16KiB: n('parley', 'rssPerConnKiB') <= 16,
        rssPerConnLe1_15xRaw: n('parley', 'rssPerConnKiB') <= 1.15 * n('raw', 'rssPerConnKiB'),
        connectRateGePeerjs: n('parley', 'connectsPerSec') >= n('peerjs', 'connectsPerSec'),
        reached20k: n('parley', 'connections') >= 20_000,
      },
    },
  ];
}
