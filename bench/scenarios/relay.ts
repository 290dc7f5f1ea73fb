/**
 * Scenario 1: relay. The same generator and payloads against (a) the raw ws relay, (b) PeerJS and
 * Parley with its rate limiter on (per user and per address, at a rate no run reaches:
 * RELAY_BENCH_ENV), validation and metrics on; then Parley with the limiter off, which isolates
 * what the limiter itself costs.
 *
 * BENCH_PARLEY_BASELINE=<another checkout>: that checkout's Parley (same env, same generator code,
 * same measures) runs in the same rounds, interleaved with this one's, and the JSON adds
 * `vsBaseline` (this Parley ÷ that one: CPU per message and throughput, medians and each round's)
 * plus the baseline's own ratios to the raw floor (`baselineVsRaw`): an A/B of two Parley versions
 * on the same machine load. BENCH_RELAY_TARGETS=raw,parley,parleyBaseline keeps only those targets
 * (default: all) and BENCH_RELAY_MEASURES=ice@5k,ice@max only those measures, for a short A/B.
 *
 * Two more targets run only when BENCH_RELAY_TARGETS names them: `mandated`
 * (baselines/mandated-relay.ts: the raw relay plus only the work issue 14 mandates, with Parley's
 * own codec, token bucket, metrics and splice, limiter as RELAY_BENCH_ENV sets Parley's) and
 * `mandatedCalls` (the same with MANDATED_CALL_CHECK=1: ICE and the rest only to the peer of a
 * call an offer opened). The JSON then adds `mandated`: their CPU per message against raw's, and
 * Parley's against theirs, medians and each round's. BENCH_MANDATED_VARIANTS=limiter;metrics adds a
 * mandated relay per entry that leaves those pieces out (`mandated-limiter`, `mandated-metrics`).
 * `lean` (baselines/lean-relay.ts, opt-in, in the same `mandated` JSON): the same work written
 * inline for the two call types the bench sends, as leanly as possible, to bound what it can cost.
 * BENCH_LEAN_VARIANTS=codec;metrics adds a lean relay per entry with those pieces of Parley's put
 * back (`lean-codec`, `lean-metrics`; bench/baselines/lean-relay.ts, LEAN_WITH).
 * Also opt-in: `rawTsx`, `mandatedTsx` and `parleyTsx` (those servers through tsx, beside their
 * compiled selves) and `parleyFlags` (Parley with the Node flags of BENCH_PARLEY_FLAGS).
 *
 * BENCH_RELAY_TOGETHER=1: the paced measures (1k and 5k msg/s) run every target's window at the
 * same time, for their CPU (their latency is then the contention's); saturation always runs one
 * target at a time. BENCH_RELAY_REPLICAS=N runs every server as N processes and round r on replica
 * r mod N. Issue 14's recorded relay runs use both (docs/benchmarks.md, tenth pass).
 */
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { GenProc } from '../lib/ipc.js';
import { medianOf, withCpuWindow } from '../lib/measure.js';
import type { PayloadKind, Protocol } from '../lib/payloads.js';
import {
  RELAY_BENCH_ENV,
  parleyBaselineRoot,
  startParley,
  startServerProc,
  type ServerProc,
} from '../lib/servers.js';
import { ratio, round } from '../lib/stats.js';

interface RunResult {
  sent: number;
  delivered: number;
  windowMs: number;
  msgsPerSec: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number; n: number };
  lostAfterDrain: number;
  errors: number;
}

interface Measure {
  id: string;
  payload: PayloadKind;
  mode: 'closed' | 'rate';
  rate?: number;
  window?: number;
  durationMs: number;
}

const PAIRS = 50;
/** Per payload and target, at saturation, before the rounds (then 1 s at 5k msg/s). */
const WARMUP_MS = 1_500;
const MEASURES: Measure[] = [
  { id: 'ice@1k', payload: 'ice', mode: 'rate', rate: 1_000, durationMs: 1_500 },
  { id: 'ice@5k', payload: 'ice', mode: 'rate', rate: 5_000, durationMs: 2_500 },
  { id: 'sdp@5k', payload: 'sdp', mode: 'rate', rate: 5_000, durationMs: 1_500 },
  { id: 'ice@max', payload: 'ice', mode: 'closed', window: 32, durationMs: 1_500 },
  { id: 'sdp@max', payload: 'sdp', mode: 'closed', window: 16, durationMs: 1_500 },
];
/** The limiter's own cost: Parley with the limiter off runs these (the same load as `parley`). */
const LIMITER_MEASURES = new Set(['ice@5k', 'ice@max']);
const TOGETHER = process.env.BENCH_RELAY_TOGETHER === '1';

interface Target {
  name: string;
  protocol: Protocol;
  server: ServerProc;
  gen: GenProc;
  measures: Measure[];
}

type Row = Record<string, number | Record<string, number>>;

export async function relayScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const parleyEnv = {
    MAX_CONNECTIONS_PER_IP: '0',
    MEDIASOUP_WORKERS: '0',
    ...RELAY_BENCH_ENV,
  };
  const baselineRoot = parleyBaselineRoot();
  const wanted = process.env.BENCH_RELAY_TARGETS?.split(',');
  const want = (name: string) => !wanted || wanted.includes(name);
  /** Opt-in targets: only when BENCH_RELAY_TARGETS names them (the default run stays as it was). */
  const named = (name: string) => wanted?.includes(name) ?? false;
  const start = async (name: string, up: () => Promise<ServerProc>, wantIt = want) =>
    wantIt(name) ? ctx.track(await up()) : null;
  // BENCH_MANDATED_VARIANTS=validate;limiter,metrics: one more mandated relay per entry, each leaving
  // out those pieces (target `mandated-<entry>`), in the same rounds as the others.
  const variants = (process.env.BENCH_MANDATED_VARIANTS ?? '').split(';').filter(Boolean);
  // BENCH_LEAN_VARIANTS=codec;metrics,bucket: one more lean relay per entry, each with those pieces
  // of Parley's put back (LEAN_WITH; target `lean-<entry>`).
  const leanVariants = (process.env.BENCH_LEAN_VARIANTS ?? '').split(';').filter(Boolean);
  const startReplica = async (sfx: string): Promise<Record<string, ServerProc | null>> => {
    const servers: Record<string, ServerProc | null> = {
      raw: await start('raw', () =>
        startServerProc(`raw-relay${sfx}`, 'bench/baselines/raw-relay.ts', { cpuProfDir: ctx.cpuProfDir }),
      ),
      peerjs: await start('peerjs', () => startServerProc(`peerjs${sfx}`, 'bench/baselines/peerjs.ts')),
      // The raw relay plus issue 14's mandated work only (validation, sender, limiter, metrics).
      mandated: await start(
        'mandated',
        () =>
          startServerProc(`mandated-relay${sfx}`, 'bench/baselines/mandated-relay.ts', {
            cpuProfDir: ctx.cpuProfDir,
            env: { ...RELAY_BENCH_ENV, MANDATED_SKIP: process.env.BENCH_MANDATED_SKIP ?? '' },
          }),
        named,
      ),
      // The same with the minimal call-state check SPEC asks for (callId → peer, per connection).
      mandatedCalls: await start(
        'mandatedCalls',
        () =>
          startServerProc(`mandated-relay-calls${sfx}`, 'bench/baselines/mandated-relay.ts', {
            cpuProfDir: ctx.cpuProfDir,
            env: { ...RELAY_BENCH_ENV, MANDATED_CALL_CHECK: '1' },
          }),
        named,
      ),
      // The same work written inline, as leanly as possible: a bound on what that work can cost.
      lean: await start(
        'lean',
        () =>
          startServerProc(`lean-relay${sfx}`, 'bench/baselines/lean-relay.ts', {
            cpuProfDir: ctx.cpuProfDir,
            env: { ...RELAY_BENCH_ENV },
          }),
        named,
      ),
      parley: await start('parley', () =>
        startParley(`parley-relay${sfx}`, parleyEnv, { cpuProfDir: ctx.cpuProfDir }),
      ),
      // Limiter off (RATE_LIMIT_PER_SEC=0): the difference to `parley` is the limiter's own cost.
      parleyNoLimiter: await start('parleyNoLimiter', () =>
        startParley(`parley-relay-no-limiter${sfx}`, { ...parleyEnv, RATE_LIMIT_PER_SEC: '0' }),
      ),
      // The other checkout's Parley, same env: an A/B in the same rounds.
      parleyBaseline: baselineRoot
        ? await start('parleyBaseline', () =>
            startParley(`parley-relay-baseline${sfx}`, parleyEnv, {
              cpuProfDir: ctx.cpuProfDir,
              root: baselineRoot,
            }),
          )
        : null,
    };
    // BENCH_RELAY_TARGETS=…,rawTsx,mandatedTsx,parleyTsx: the same servers run through tsx (their
    // TypeScript, as the bench ran them before it measured their `tsc` output; bench/lib/compiled.ts).
    const tsx = { compiled: false };
    servers.rawTsx = await start(
      'rawTsx',
      () => startServerProc(`raw-relay-tsx${sfx}`, 'bench/baselines/raw-relay.ts', tsx),
      named,
    );
    servers.mandatedTsx = await start(
      'mandatedTsx',
      () =>
        startServerProc(`mandated-relay-tsx${sfx}`, 'bench/baselines/mandated-relay.ts', {
          ...tsx,
          env: { ...RELAY_BENCH_ENV },
        }),
      named,
    );
    servers.parleyTsx = await start(
      'parleyTsx',
      () => startParley(`parley-relay-tsx${sfx}`, parleyEnv, tsx),
      named,
    );
    // BENCH_RELAY_TARGETS=…,parleyFlags with BENCH_PARLEY_FLAGS='--flag …': Parley with more Node flags.
    servers.parleyFlags = await start(
      'parleyFlags',
      () =>
        startParley(`parley-relay-flags${sfx}`, parleyEnv, {
          nodeFlags: (process.env.BENCH_PARLEY_FLAGS ?? '').split(' ').filter(Boolean),
        }),
      named,
    );
    for (const skip of variants)
      servers[`mandated-${skip}`] = ctx.track(
        await startServerProc(`mandated-relay-${skip}${sfx}`, 'bench/baselines/mandated-relay.ts', {
          env: { ...RELAY_BENCH_ENV, MANDATED_SKIP: skip },
        }),
      );
    for (const piece of leanVariants)
      servers[`lean-${piece}`] = ctx.track(
        await startServerProc(`lean-relay-${piece}${sfx}`, 'bench/baselines/lean-relay.ts', {
          env: { ...RELAY_BENCH_ENV, LEAN_WITH: piece },
        }),
      );
    return servers;
  };
  const candidates: { name: string; protocol: Protocol; measures: Measure[] }[] = [
    ...variants.map((skip) => ({
      name: `mandated-${skip}`,
      protocol: 'mandated' as const,
      measures: MEASURES,
    })),
    ...leanVariants.map((piece) => ({
      name: `lean-${piece}`,
      protocol: 'mandated' as const,
      measures: MEASURES,
    })),
    { name: 'raw', protocol: 'raw', measures: MEASURES },
    { name: 'peerjs', protocol: 'peerjs', measures: MEASURES },
    { name: 'mandated', protocol: 'mandated', measures: MEASURES },
    { name: 'mandatedCalls', protocol: 'mandated', measures: MEASURES },
    { name: 'lean', protocol: 'mandated', measures: MEASURES },
    { name: 'parley', protocol: 'parley', measures: MEASURES },
    { name: 'parleyBaseline', protocol: 'parley', measures: MEASURES },
    { name: 'rawTsx', protocol: 'raw', measures: MEASURES },
    { name: 'mandatedTsx', protocol: 'mandated', measures: MEASURES },
    { name: 'parleyTsx', protocol: 'parley', measures: MEASURES },
    { name: 'parleyFlags', protocol: 'parley', measures: MEASURES },
    {
      name: 'parleyNoLimiter',
      protocol: 'parley',
      measures: MEASURES.filter((m) => LIMITER_MEASURES.has(m.id)),
    },
  ];
  // BENCH_RELAY_REPLICAS=N: every server runs as N processes, and round r measures replica r mod N.
  // Two processes of the same server, same code and load, differed by up to 9 % (tenth pass: an
  // A/A of three mandated relays), and rounds alone never average that out.
  const replicas = Math.max(1, Math.floor(Number(process.env.BENCH_RELAY_REPLICAS ?? '1')) || 1);
  const groups: Target[][] = [];
  const allServers: ServerProc[] = [];
  for (let r = 0; r < replicas; r++) {
    const sfx = r === 0 ? '' : `-${r + 1}`;
    const servers = await startReplica(sfx);
    const group: Target[] = [];
    for (const c of candidates) {
      const server = servers[c.name];
      if (!server) continue;
      allServers.push(server);
      // The generator always runs from this checkout: both Parleys get the very same load.
      const gen = new GenProc(`relay-gen-${c.name}${sfx}`, 'bench/gen/relay-gen.ts');
      group.push({ ...c, server, gen: ctx.track(gen) });
    }
    groups.push(group);
  }
  const targets = groups.flat();

  for (const t of targets) {
    const path = t.protocol === 'peerjs' ? '/peerjs' : '/ws';
    await t.gen.request('setup', {
      protocol: t.protocol,
      urlA: t.server.url(path),
      urlB: t.server.url(path),
      pairs: PAIRS,
      tag: '',
    });
    // Warm-up (not measured): let V8 optimise every server's hot path and size its heap before the
    // first window, each payload first at saturation, then at 5k. With 1 s per payload at 5k only,
    // Parley's first SDP @ 5k window carried its heap's growth (mark-compacts every ~0.2 s, ~200 ms
    // on V8's helper threads: 62–68 against 32 µs per message in later rounds, round 1 at ~2× raw
    // in every run; 2.7 s at 5k still left it in one run of three).
    for (const payload of ['ice', 'sdp'] as const) {
      const window = payload === 'ice' ? 32 : 16;
      await t.gen.request('run', { payload, mode: 'closed', window, warmupMs: WARMUP_MS, durationMs: 200 });
      await t.gen.request('run', { payload, mode: 'rate', rate: 5_000, warmupMs: 800, durationMs: 200 });
    }
  }
  const only = process.env.BENCH_RELAY_MEASURES?.split(',');

  const rows: Record<string, Record<string, Row[]>> = {};
  for (let round_ = 0; round_ < ctx.rounds; round_++) {
    // Each round starts one target later, so that no server always runs first (or right after the
    // same neighbour) across the rounds: at 5k the position in a round moved a server's figure.
    const group = groups[round_ % replicas];
    const order = group.map((_, i) => group[(i + round_) % group.length]);
    for (const m of MEASURES) {
      const due = order.filter((t) => t.measures.includes(m) && !(only && !only.includes(m.id)));
      const window = (t: Target) =>
        withCpuWindow<RunResult>(
          t.gen,
          'run',
          {
            payload: m.payload,
            mode: m.mode,
            rate: m.rate,
            window: m.window,
            warmupMs: 400,
            durationMs: m.durationMs,
          },
          { server: t.server.pid, generator: t.gen.pid },
        );
      // BENCH_RELAY_TOGETHER=1: a paced measure (a fixed rate) runs every target's window at the
      // same time, so that what the machine does meanwhile weighs on all of them alike: one at a
      // time, one server's rounds at ICE @ 5k ranged over 1.9× in one run (tenth pass), far more
      // than the CPU differences asked for. The latency of such windows is the contention's (p99
      // in tens of ms), so the p99 target is not judged then. Saturation always runs one target
      // at a time (each would take CPU from the others).
      const together = m.mode === 'rate' && TOGETHER;
      const results: Awaited<ReturnType<typeof window>>[] = [];
      if (together) results.push(...(await Promise.all(due.map(window))));
      else for (const t of due) results.push(await window(t));
      due.forEach((t, i) => {
        const { result, cpu } = results[i];
        const row: Row = {
          msgsPerSec: result.msgsPerSec,
          delivered: result.delivered,
          p50Ms: result.latencyMs.p50,
          p99Ms: result.latencyMs.p99,
          maxMs: result.latencyMs.max,
          serverCpuUsPerMsg: round(cpu.server.cpuUs / Math.max(1, result.delivered), 2),
          serverMainUsPerMsg: round(cpu.server.mainUs / Math.max(1, result.delivered), 2),
          serverUtil: cpu.server.util,
          generatorUtil: cpu.generator.util,
          lost: result.lostAfterDrain,
          errors: result.errors,
        };
        ((rows[t.name] ??= {})[m.id] ??= []).push(row);
        if (result.errors > 0 || result.lostAfterDrain > 0)
          ctx.say(`  relay ${t.name} ${m.id}: ${result.errors} errors, ${result.lostAfterDrain} undelivered`);
      });
    }
    ctx.say(`  relay round ${round_ + 1}/${ctx.rounds} done`);
  }

  for (const t of targets) await t.gen.request('close').catch(() => undefined);
  await Promise.all(targets.map((t) => t.gen.close()));
  await Promise.all(allServers.map((s) => s.stop()));

  const med: Record<string, Record<string, Record<string, number>>> = {};
  for (const [name, byMeasure] of Object.entries(rows)) {
    med[name] = {};
    for (const [id, list] of Object.entries(byMeasure))
      med[name][id] = medianOf(list) as Record<string, number>;
  }
  const g = (s: string, m: string, k: string) => med[s]?.[m]?.[k] ?? Number.NaN;
  const ratios = {
    cpuPerMsgVsRaw: {
      'ice@5k': ratio(g('parley', 'ice@5k', 'serverCpuUsPerMsg'), g('raw', 'ice@5k', 'serverCpuUsPerMsg')),
      'sdp@5k': ratio(g('parley', 'sdp@5k', 'serverCpuUsPerMsg'), g('raw', 'sdp@5k', 'serverCpuUsPerMsg')),
      'ice@max': ratio(g('parley', 'ice@max', 'serverCpuUsPerMsg'), g('raw', 'ice@max', 'serverCpuUsPerMsg')),
      'sdp@max': ratio(g('parley', 'sdp@max', 'serverCpuUsPerMsg'), g('raw', 'sdp@max', 'serverCpuUsPerMsg')),
    },
    cpuPerMsgVsPeerjs: {
      'ice@5k': ratio(g('parley', 'ice@5k', 'serverCpuUsPerMsg'), g('peerjs', 'ice@5k', 'serverCpuUsPerMsg')),
      'sdp@5k': ratio(g('parley', 'sdp@5k', 'serverCpuUsPerMsg'), g('peerjs', 'sdp@5k', 'serverCpuUsPerMsg')),
    },
    throughputVsPeerjs: {
      ice: ratio(g('parley', 'ice@max', 'msgsPerSec'), g('peerjs', 'ice@max', 'msgsPerSec')),
      sdp: ratio(g('parley', 'sdp@max', 'msgsPerSec'), g('peerjs', 'sdp@max', 'msgsPerSec')),
    },
    throughputVsRaw: {
      ice: ratio(g('parley', 'ice@max', 'msgsPerSec'), g('raw', 'ice@max', 'msgsPerSec')),
      sdp: ratio(g('parley', 'sdp@max', 'msgsPerSec'), g('raw', 'sdp@max', 'msgsPerSec')),
    },
    p99At5kVsRaw: ratio(g('parley', 'ice@5k', 'p99Ms'), g('raw', 'ice@5k', 'p99Ms')),
    p99At5kVsPeerjs: ratio(g('parley', 'ice@5k', 'p99Ms'), g('peerjs', 'ice@5k', 'p99Ms')),
    limiterCpuCost: {
      'ice@5k': ratio(
        g('parley', 'ice@5k', 'serverCpuUsPerMsg'),
        g('parleyNoLimiter', 'ice@5k', 'serverCpuUsPerMsg'),
      ),
      'ice@max': ratio(
        g('parley', 'ice@max', 'serverCpuUsPerMsg'),
        g('parleyNoLimiter', 'ice@max', 'serverCpuUsPerMsg'),
      ),
    },
  };
  // The spread: each round's ratios (servers interleaved within a round share its conditions).
  const byRound = (a: string, b: string, m: string, k: string) =>
    (rows[a]?.[m] ?? []).map((row, i) =>
      ratio(row[k] as number, (rows[b]?.[m]?.[i]?.[k] as number) ?? Number.NaN),
    );
  const perRound = (k: string) =>
    Object.fromEntries(
      Object.entries(rows).map(([name, byMeasure]) => [
        name,
        Object.fromEntries(
          Object.entries(byMeasure).map(([m, list]) => [m, list.map((r) => r[k] as number)]),
        ),
      ]),
    );
  const ratiosByRound = {
    /** Each round's CPU per message (µs) of every target, beside the ratios: which side moved. */
    cpuUsPerMsg: perRound('serverCpuUsPerMsg'),
    /** The same, the server's main thread alone (the rest is V8's compiler and GC threads). */
    mainThreadUsPerMsg: perRound('serverMainUsPerMsg'),
    cpuPerMsgVsRaw: Object.fromEntries(
      ['ice@5k', 'sdp@5k', 'ice@max', 'sdp@max'].map((m) => [
        m,
        byRound('parley', 'raw', m, 'serverCpuUsPerMsg'),
      ]),
    ),
    throughputVsPeerjs: {
      ice: byRound('parley', 'peerjs', 'ice@max', 'msgsPerSec'),
      sdp: byRound('parley', 'peerjs', 'sdp@max', 'msgsPerSec'),
    },
  };
  const measureIds = MEASURES.map((m) => m.id);
  const vsBaseline = baselineRoot
    ? {
        baseline: baselineRoot,
        cpuPerMsg: Object.fromEntries(
          measureIds.map((m) => [
            m,
            ratio(g('parley', m, 'serverCpuUsPerMsg'), g('parleyBaseline', m, 'serverCpuUsPerMsg')),
          ]),
        ),
        throughput: {
          ice: ratio(g('parley', 'ice@max', 'msgsPerSec'), g('parleyBaseline', 'ice@max', 'msgsPerSec')),
          sdp: ratio(g('parley', 'sdp@max', 'msgsPerSec'), g('parleyBaseline', 'sdp@max', 'msgsPerSec')),
        },
        cpuPerMsgByRound: Object.fromEntries(
          measureIds.map((m) => [m, byRound('parley', 'parleyBaseline', m, 'serverCpuUsPerMsg')]),
        ),
        baselineVsRaw: Object.fromEntries(
          measureIds.map((m) => [
            m,
            ratio(g('parleyBaseline', m, 'serverCpuUsPerMsg'), g('raw', m, 'serverCpuUsPerMsg')),
          ]),
        ),
        baselineVsRawByRound: Object.fromEntries(
          measureIds.map((m) => [m, byRound('parleyBaseline', 'raw', m, 'serverCpuUsPerMsg')]),
        ),
      }
    : null;
  // The mandated-work baselines (opt-in): what the work issue 14 keeps costs on its own over the raw
  // floor, and what Parley spends beyond it.
  const mandatedNames = [
    'mandated',
    'mandatedCalls',
    'lean',
    ...variants.map((v) => `mandated-${v}`),
    ...leanVariants.map((v) => `lean-${v}`),
  ].filter((n) => rows[n] !== undefined);
  const vsMandated =
    mandatedNames.length > 0
      ? Object.fromEntries(
          mandatedNames.map((n) => {
            const ids = measureIds.filter((m) => rows[n]?.[m] !== undefined);
            const per = (a: string, b: string) =>
              Object.fromEntries(
                ids.map((m) => [m, ratio(g(a, m, 'serverCpuUsPerMsg'), g(b, m, 'serverCpuUsPerMsg'))]),
              );
            const perRound = (a: string, b: string) =>
              Object.fromEntries(ids.map((m) => [m, byRound(a, b, m, 'serverCpuUsPerMsg')]));
            return [
              n,
              {
                /** Each round's CPU per message (µs) of raw, this baseline and Parley, side by side. */
                cpuUsPerMsgByRound: Object.fromEntries(
                  ['raw', n, 'parley'].map((t) => [
                    t,
                    Object.fromEntries(
                      ids.map((m) => [m, (rows[t]?.[m] ?? []).map((r) => r.serverCpuUsPerMsg as number)]),
                    ),
                  ]),
                ),
                cpuPerMsgVsRaw: per(n, 'raw'),
                cpuPerMsgVsRawByRound: perRound(n, 'raw'),
                parleyCpuPerMsgVsThis: per('parley', n),
                parleyCpuPerMsgVsThisByRound: perRound('parley', n),
                /** Parley's CPU per message minus this baseline's (medians), µs. */
                parleyExtraUsPerMsg: Object.fromEntries(
                  ids.map((m) => [
                    m,
                    round(g('parley', m, 'serverCpuUsPerMsg') - g(n, m, 'serverCpuUsPerMsg'), 2),
                  ]),
                ),
                throughputVsRaw: {
                  ice: ratio(g(n, 'ice@max', 'msgsPerSec'), g('raw', 'ice@max', 'msgsPerSec')),
                  sdp: ratio(g(n, 'sdp@max', 'msgsPerSec'), g('raw', 'sdp@max', 'msgsPerSec')),
                },
              },
            ];
          }),
        )
      : null;
  // Issue 14's targets: CPU per message ≤ 1.15× the raw floor (ICE and SDP, 5k msg/s and saturation),
  // throughput ≥ 1.1× PeerJS's (both payloads). Issue 6's latency target is kept.
  const cpu = ratios.cpuPerMsgVsRaw;
  const targetsMet = {
    cpuPerMsgLe1_15xRaw: Object.values(cpu).every((r) => r <= 1.15),
    throughputGe1_1xPeerjs: ratios.throughputVsPeerjs.ice >= 1.1 && ratios.throughputVsPeerjs.sdp >= 1.1,
    p99Le2msAt5k: TOGETHER
      ? null
      : g('parley', 'ice@5k', 'p99Ms') <= 2 && g('parley', 'sdp@5k', 'p99Ms') <= 2,
  };
  ctx.say(
    `relay: CPU/msg @5k ice ${g('parley', 'ice@5k', 'serverCpuUsPerMsg')} µs (raw ${g('raw', 'ice@5k', 'serverCpuUsPerMsg')}, ` +
      `peerjs ${g('peerjs', 'ice@5k', 'serverCpuUsPerMsg')}) → ${cpu['ice@5k']}× raw ` +
      `(sdp@5k ${cpu['sdp@5k']}×, ice@max ${cpu['ice@max']}×, sdp@max ${cpu['sdp@max']}×); ` +
      `max ice ${g('parley', 'ice@max', 'msgsPerSec')}/s vs peerjs ${g('peerjs', 'ice@max', 'msgsPerSec')}/s ` +
      `(${ratios.throughputVsPeerjs.ice}×, sdp ${ratios.throughputVsPeerjs.sdp}×); ` +
      `p99 @5k ${g('parley', 'ice@5k', 'p99Ms')} ms; limiter ×${ratios.limiterCpuCost['ice@5k']} @5k, ×${ratios.limiterCpuCost['ice@max']} @max`,
  );
  if (vsMandated) {
    for (const [n, v] of Object.entries(vsMandated)) {
      const ids = Object.keys(v.cpuPerMsgVsRaw);
      ctx.say(
        `relay ${n}: CPU/msg ÷ raw ` +
          ids
            .map((m) => `${m} ${v.cpuPerMsgVsRaw[m]} (rounds ${v.cpuPerMsgVsRawByRound[m].join(', ')})`)
            .join('; ') +
          `; parley ÷ ${n} ` +
          ids.map((m) => `${m} ${v.parleyCpuPerMsgVsThis[m]} (+${v.parleyExtraUsPerMsg[m]} µs)`).join(', '),
      );
    }
  }
  if (vsBaseline) {
    const ids = measureIds.filter((m) => Number.isFinite(vsBaseline.cpuPerMsg[m]));
    ctx.say(
      `relay vs baseline ${baselineRoot}: CPU/msg this ÷ baseline ` +
        ids
          .map((m) => `${m} ${vsBaseline.cpuPerMsg[m]} (rounds ${vsBaseline.cpuPerMsgByRound[m].join(', ')})`)
          .join('; ') +
        `; baseline ÷ raw ` +
        ids.map((m) => `${m} ${vsBaseline.baselineVsRaw[m]}`).join(', '),
    );
  }
  return [
    {
      scenario: 'relay',
      pairs: PAIRS,
      rounds: ctx.rounds,
      pacedWindows: TOGETHER ? 'together' : 'one at a time',
      replicas,
      payloadBytes: { ice: 270, sdp: 3001 },
      medians: med,
      ratios,
      ratiosByRound,
      ...(vsBaseline ? { vsBaseline } : {}),
      ...(vsMandated ? { mandated: vsMandated } : {}),
      targetsMet,
    },
  ];
}
