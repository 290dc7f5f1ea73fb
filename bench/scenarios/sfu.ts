/**
 * Scenario 5: SFU fan-out.
 *  A. Per worker: mediasoup driven directly (bench/sfu/worker-curve.ts), N SRTP consumers of one
 *     Opus producer at 50 packets/s; worker CPU and delivery as N grows.
 *  B. Whole node: one PTT channel through Parley's own MediaService (bench/sfu/channel.ts):
 *     listeners placed by Parley over both workers (pipeToRouter), past capacity refused with
 *     CAPACITY_EXCEEDED while the existing listeners' loss is measured.
 */
import { setPriority } from 'node:os';
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { GenProc } from '../lib/ipc.js';
import { medianOf } from '../lib/measure.js';
import { cpuMeter, udpDrops } from '../lib/proc.js';
import { benchManifest } from '../lib/manifest.js';
import { round, percentile } from '../lib/stats.js';

const STEPS = (process.env.BENCH_SFU_STEPS ?? '400,800,1000,1200,1500').split(',').map(Number);
const PACKETS = 150; // 3 s at 50 packets/s
const BURSTS = 3;

/** [ssrc, received, expected (sequence span), late (> 100 ms), max lateness ms] */
export type SinkRow = [number, number, number, number, number];
export interface SinkStats {
  rows: SinkRow[];
  rtcp: number;
  /** RTP packets per 250 ms over the window (all streams the sink reads). */
  timeline: number[];
  /** Lateness of every packet received, pooled: percentiles in ms. */
  latenessMs: { p50: number; p99: number; p999: number };
}

export interface StreamLoss {
  streams: number;
  received: number;
  expected: number;
  /** Packets that never arrived (sequence gaps, or nothing at all), per stream: median, p99, worst. */
  lostRatio: number;
  lossP50: number;
  lossP99: number;
  lossMax: number;
  /** Streams that lost more than 0.1 % of their packets. */
  streamsOver0_1pct: number;
  /** Packets that arrived > 100 ms late (see udp-sink.ts): useless to a voice jitter buffer. */
  late: number;
  maxLateMs: number;
  /** Arrived and in time, over expected; and the worst stream's shortfall by that measure. */
  deliveredInTime: number;
  inTimeLossMax: number;
}

/** Per-stream loss and lateness. `expectedEach`: packets sent to every stream (else the sequence span). */
export function lossOf(rows: SinkRow[], expectedEach?: number): StreamLoss {
  let received = 0;
  let expected = 0;
  let late = 0;
  let maxLateMs = 0;
  const losses: number[] = [];
  const inTimeLosses: number[] = [];
  for (const [, got, span, l, lateMs] of rows) {
    const exp = expectedEach ?? span;
    const arrived = Math.min(got, exp);
    received += arrived;
    expected += exp;
    late += l;
    maxLateMs = Math.max(maxLateMs, lateMs);
    losses.push(exp > 0 ? (exp - arrived) / exp : 0);
    inTimeLosses.push(exp > 0 ? (exp - Math.max(0, arrived - l)) / exp : 0);
  }
  return {
    streams: rows.length,
    received,
    expected,
    lostRatio: expected ? round(1 - received / expected, 5) : Number.NaN,
    lossP50: round(percentile(losses, 50), 4),
    lossP99: round(percentile(losses, 99), 4),
    lossMax: round(losses.length ? Math.max(...losses) : Number.NaN, 4),
    streamsOver0_1pct: losses.filter((x) => x > 0.001).length,
    late,
    maxLateMs,
    deliveredInTime: expected ? round((received - late) / expected, 4) : Number.NaN,
    inTimeLossMax: round(inTimeLosses.length ? Math.max(...inTimeLosses) : Number.NaN, 4),
  };
}

/**
 * The harness's own media processes (the RTP source and the sink) run at a higher priority than
 * the servers: on two shared cores, a descheduled sink or speaker would otherwise show up as
 * late or lost packets that the SFU never caused. Best effort (needs CAP_SYS_NICE).
 */
export function favour(p: GenProc): void {
  try {
    setPriority(p.pid, -10);
  } catch {
    // not permitted: measure anyway
  }
}

/**
 * One worker, one Opus producer, `steps` SRTP consumers in turn (scenario 5A). Also the audio
 * reference that the video scenario runs in the same session (bench/scenarios/video.ts).
 */
export async function perWorkerCurve(ctx: Ctx, consumerSteps = STEPS): Promise<Record<string, unknown>> {
  const sink = new GenProc('udp-sink', 'bench/sfu/udp-sink.ts');
  const curve = new GenProc('worker-curve', 'bench/sfu/worker-curve.ts');
  ctx.track(sink);
  ctx.track(curve);
  favour(sink);
  const { ports } = await sink.request<{ ports: number[] }>('open', { count: 8 });
  const { workerPid, ingressPort, ssrc, pt } = await curve.request<{
    workerPid: number;
    ingressPort: number;
    ssrc: number;
    pt: number;
  }>('setup', { sinkPorts: ports });
  // Prime the ingress (comedia learns the sender's address from the first packets).
  await sink.request('burst', { port: ingressPort, packets: 10, ssrc, pt, seq0: 1 });
  let seq0 = 11;
  const steps: Record<string, unknown>[] = [];
  for (const n of consumerSteps) {
    await curve.request('grow', { n }, { timeoutMs: 120_000 });
    const bursts: Record<string, number>[] = [];
    for (let b = 0; b < BURSTS; b++) {
      await new Promise((r) => setTimeout(r, 400));
      await sink.request('reset');
      const drops0 = udpDrops();
      // Worker CPU from the first packet until the sink has everything: a worker that lags still
      // pays for its backlog after the last packet was sent. Load = that CPU time / burst duration.
      let wm: ReturnType<typeof cpuMeter> | null = null;
      let sm: ReturnType<typeof cpuMeter> | null = null;
      const burst = await sink.request<{ sent: number; maxSendLagMs: number }>(
        'burst',
        { port: ingressPort, packets: PACKETS, ssrc, pt, seq0 },
        {
          timeoutMs: 60_000,
          onEvent: (e, d) => {
            if (e === 'mark' && d === 'start') {
              wm = cpuMeter(workerPid);
              sm = cpuMeter(sink.pid);
            }
          },
        },
      );
      seq0 += PACKETS;
      const st = await sink.request<SinkStats>('stats', { quietMs: 300 });
      const burstMs = PACKETS * 20;
      const workerLoad =
        ((wm as ReturnType<typeof cpuMeter> | null)?.stop().cpuUs ?? Number.NaN) / 1000 / burstMs;
      const sinkLoad =
        ((sm as ReturnType<typeof cpuMeter> | null)?.stop().cpuUs ?? Number.NaN) / 1000 / burstMs;
      const ssrcs = await curve.request<number[]>('ssrcs');
      // Consumers that received nothing do not appear in the sink's table: count them as all lost.
      const byId = new Map(st.rows.map((r) => [r[0], r]));
      const loss = lossOf(
        ssrcs.map((x) => byId.get(x) ?? ([x, 0, 0, 0, 0] as SinkRow)),
        burst.sent,
      );
      const drops1 = udpDrops();
      bursts.push({
        workerLoad,
        sinkLoad,
        deliveredInTime: loss.deliveredInTime,
        inTimeLossMax: loss.inTimeLossMax,
        lostRatio: loss.lostRatio,
        lossMax: loss.lossMax,
        streamsOver0_1pct: loss.streamsOver0_1pct,
        late: loss.late,
        maxLateMs: loss.maxLateMs,
        maxSendLagMs: burst.maxSendLagMs,
        sinkSocketDrops: ports.reduce((k, p) => k + (drops1.get(p) ?? 0) - (drops0.get(p) ?? 0), 0),
        ingressSocketDrops: (drops1.get(ingressPort) ?? 0) - (drops0.get(ingressPort) ?? 0),
      });
    }
    const row: Record<string, number> = {
      consumers: n,
      bursts: BURSTS,
      ...(medianOf(bursts) as Record<string, number>),
    };
    steps.push(row);
    ctx.say(
      `  worker: ${n} SRTP consumers → load ${round(row.workerLoad * 100, 0)}%, delivered in time ${round(row.deliveredInTime * 100, 2)}% ` +
        `(worst stream ${round(row.inTimeLossMax * 100, 2)}% short), never arrived ${round(row.lostRatio * 100, 3)}%, max lateness ${row.maxLateMs} ms ` +
        `(medians of ${BURSTS} bursts; sink ${round(row.sinkLoad * 100, 0)}%)`,
    );
  }
  await curve.request('close').catch(() => undefined);
  await Promise.all([curve.close(), sink.close()]);
  // The largest N such that it and every smaller step delivered every stream ≤ 0.1 % short (in time).
  let maxClean = 0;
  for (const s of steps) {
    if ((s.inTimeLossMax as number) > 0.001) break;
    maxClean = s.consumers as number;
  }
  return { packetsPerBurst: PACKETS, burstsPerStep: BURSTS, steps, maxConsumersAt0_1pctLoss: maxClean };
}

const LISTENERS = Number(process.env.BENCH_SFU_LISTENERS ?? 1_600);
const EXTRA = 200;
const SAMPLE_EVERY = 4;
const WINDOW_MS = 6_000;

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function channel(ctx: Ctx): Promise<Record<string, unknown>> {
  const sink = new GenProc('udp-sink-channel', 'bench/sfu/udp-sink.ts');
  const chan = new GenProc('sfu-channel', 'bench/sfu/channel.ts');
  const lis = new GenProc('sfu-listeners', 'bench/gen/sfu-listeners.ts');
  const spk = new GenProc('sfu-speaker', 'bench/gen/sfu-listeners.ts');
  for (const p of [sink, chan, lis, spk]) ctx.track(p);
  const { ports, blackholePort } = await sink.request<{ ports: number[]; blackholePort: number }>('open', {
    count: 4,
  });
  const { port, workerPids, budget } = await chan.request<{
    port: number;
    workerPids: number[];
    budget: number;
  }>('start', {
    sinkPorts: ports,
    blackholePort,
    sampleEvery: SAMPLE_EVERY,
    manifestPath: benchManifest(),
  });
  const url = `ws://127.0.0.1:${port}/ws`;
  await spk.request('speaker', { url, roomId: 'channel' }, { timeoutMs: 30_000 });
  const t0 = performance.now();
  const joined = await lis.request<{
    ok: number;
    refusedTransport: number;
    refusedConsume: number;
    consumeRetries: number;
    otherErrors: number;
    firstOtherError: string | null;
  }>(
    'listeners',
    { url, roomId: 'channel', prefix: 'l', count: LISTENERS, concurrency: 16 },
    { timeoutMs: 300_000 },
  );
  const setupS = round((performance.now() - t0) / 1000, 1);
  // The members who will ask for media past capacity join now, before any measurement: their
  // presence traffic (room:join into a 1,600-member channel) is the join storm measured below, not
  // part of the capacity test.
  await lis.request(
    'prepare',
    { url, roomId: 'channel', prefix: 'x', count: EXTRA, concurrency: 8 },
    { timeoutMs: 120_000 },
  );
  type Shadows = {
    created: number;
    failed: number;
    firstError: string | null;
    pending: number;
    byWorker: Record<string, number>;
  };
  await waitFor(
    'shadow consumers',
    async () => (await chan.request<Shadows>('shadows')).pending === 0,
    120_000,
  );
  const shadows = await chan.request<Shadows>('shadows');
  const media = await chan.request<{ consumers: number; workers: { pid: number; consumers: number }[] }>(
    'mediaStats',
  );
  ctx.say(
    `  channel: ${joined.ok} listeners placed in ${setupS} s (${media.workers.map((w) => w.consumers).join(' + ')} consumers per worker, ` +
      `budget ${budget}); ${joined.refusedTransport + joined.refusedConsume} refused, ${joined.otherErrors} errors` +
      (joined.firstOtherError ? ` (${joined.firstOtherError})` : ''),
  );
  const sampledMap = new Map(await chan.request<[number, number][]>('sampled'));

  const measure = async (during?: () => Promise<unknown>) => {
    await sink.request('reset');
    const chain0 = await chan.request<Record<string, number>>('chain');
    const spk0 = await spk.request<{ sent: number }>('speakerStats');
    const meters = [...workerPids, chan.pid, sink.pid, lis.pid, spk.pid].map((pid) => cpuMeter(pid));
    const started = performance.now();
    const side = during ? during() : Promise.resolve(null);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const sideResult = await side;
    const st = await sink.request<SinkStats>('stats', { quietMs: 0 });
    const wall = performance.now() - started;
    const chain1 = await chan.request<Record<string, number>>('chain');
    const spk1 = await spk.request<{ sent: number }>('speakerStats');
    // Packets per second along the chain during the window: the source should be 50/s.
    const pps = (a: number, b: number) => round(((b - a) * 1000) / wall, 1);
    const chainPps = {
      speakerSent: pps(spk0.sent, spk1.sent),
      speakerProducer: pps(chain0.speaker ?? 0, chain1.speaker ?? 0),
      floorProducer: pps(chain0.floor ?? 0, chain1.floor ?? 0),
    };
    const utils = meters.map((m) => round(m.stop().cpuUs / 1000 / wall, 3));
    const rows = st.rows.filter((r) => sampledMap.has(r[0]));
    const missing = [...sampledMap.keys()].filter((k) => !st.rows.some((r) => r[0] === k)).length;
    const perWorker = Object.fromEntries(
      workerPids.map((pid) => [pid, lossOf(rows.filter((r) => sampledMap.get(r[0]) === pid))]),
    );
    return {
      all: lossOf(rows),
      timelinePer250ms: st.timeline,
      chainPps,
      perWorker,
      silentStreams: missing,
      cpu: {
        workers: utils.slice(0, workerPids.length),
        parleyMain: utils[workerPids.length],
        sink: utils[workerPids.length + 1],
        listenerClients: utils[workerPids.length + 2],
        speaker: utils[workerPids.length + 3],
      },
      sideResult,
    };
  };
  await new Promise((r) => setTimeout(r, 1_500));
  const steady = await measure();
  ctx.say(
    `  channel steady (${steady.all.streams} sampled streams): lost ${round(steady.all.lostRatio * 100, 3)}% (worst stream ${round(steady.all.lossMax * 100, 2)}%), ` +
      `in time ${round(steady.all.deliveredInTime * 100, 2)}% (max lateness ${steady.all.maxLateMs} ms), worker CPU ${steady.cpu.workers.map((u) => `${round(u * 100, 0)}%`).join(' / ')}`,
  );
  // Past capacity: 200 members already in the channel ask for media during the window.
  type MediaOut = typeof joined;
  const pastCapacity = await measure(() => lis.request('media', { concurrency: 8 }, { timeoutMs: 120_000 }));
  const extra = pastCapacity.sideResult as MediaOut;
  ctx.say(
    `  channel past capacity: ${extra.refusedTransport + extra.refusedConsume}/${EXTRA} new consumers refused (CAPACITY_EXCEEDED), ${extra.ok} accepted; ` +
      `existing listeners lost ${round(pastCapacity.all.lostRatio * 100, 3)}% (worst ${round(pastCapacity.all.lossMax * 100, 2)}%), ` +
      `in time ${round(pastCapacity.all.deliveredInTime * 100, 2)}% (max lateness ${pastCapacity.all.maxLateMs} ms)`,
  );
  // Join storm (last, not a target): 200 more members join the 1,600-member channel within the
  // window; presence goes to everyone. It shows signaling and media sharing the two vCPUs.
  const storm = await measure(() =>
    lis.request(
      'prepare',
      { url, roomId: 'channel', prefix: 'y', count: EXTRA, concurrency: 8 },
      { timeoutMs: 120_000 },
    ),
  );
  ctx.say(
    `  channel join storm (${EXTRA} joins): existing listeners lost ${round(storm.all.lostRatio * 100, 3)}% (worst ${round(storm.all.lossMax * 100, 2)}%), ` +
      `in time ${round(storm.all.deliveredInTime * 100, 2)}% (max lateness ${storm.all.maxLateMs} ms); CPU workers ${storm.cpu.workers
        .map((u) => `${round(u * 100, 0)}%`)
        .join(
          ' / ',
        )}, Parley main ${round(storm.cpu.parleyMain * 100, 0)}%, clients ${round(storm.cpu.listenerClients * 100, 0)}%`,
  );
  const speaker = await spk.request<{ sent: number; states: string }>('speakerStats');
  await lis.request('close').catch(() => undefined);
  await spk.request('close').catch(() => undefined);
  await chan.request('stop', {}, { timeoutMs: 30_000 }).catch(() => undefined);
  await Promise.all([lis.close(), spk.close(), chan.close(), sink.close()]);
  const listenersServed = joined.ok;
  return {
    listenersRequested: LISTENERS,
    listenersServed,
    refusedAtSetup: joined.refusedTransport + joined.refusedConsume,
    consumeRetries: joined.consumeRetries,
    setupErrors: joined.otherErrors,
    setupS,
    consumersPerWorker: media.workers.map((w) => w.consumers),
    budgetPerWorker: budget,
    shadowsCreated: shadows.created,
    shadowFailures: shadows.failed,
    sampledStreams: sampledMap.size,
    sampleEvery: SAMPLE_EVERY,
    windowMs: WINDOW_MS,
    steady: { ...steady, sideResult: undefined },
    joinStorm: { ...storm, sideResult: undefined, joins: EXTRA },
    pastCapacity: {
      ...pastCapacity,
      sideResult: undefined,
      extraListeners: EXTRA,
      refused: extra.refusedTransport + extra.refusedConsume,
      accepted: extra.ok,
      consumeRetries: extra.consumeRetries,
      errors: extra.otherErrors,
    },
    speaker,
  };
}

export async function sfuScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const perWorker = process.env.BENCH_SFU_SKIP_CURVE ? null : await perWorkerCurve(ctx);
  const node = await channel(ctx);
  const steady = node.steady as { all: StreamLoss };
  const past = node.pastCapacity as { all: StreamLoss; refused: number; extraListeners: number };
  return [
    {
      scenario: 'sfu-fanout',
      perWorker,
      channel: node,
      targetsMet: {
        perWorker800At0_1pct: perWorker ? (perWorker.maxConsumersAt0_1pctLoss as number) >= 800 : null,
        // ≤ 0.1 % loss for every stream, counting packets > 100 ms late as lost.
        channel1600Listeners: (node.listenersServed as number) >= 1_600 && steady.all.inTimeLossMax <= 0.001,
        refusedPastCapacityWithoutCollapse:
          past.refused === past.extraListeners && past.all.inTimeLossMax <= 0.001,
      },
    },
  ];
}
