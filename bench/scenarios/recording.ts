/**
 * What PTT recording costs (issue 16), in this process: one mediasoup worker, N "channels" each
 * with a speaker's Opus producer fed 50 packets/s of real libopus audio (a 440 Hz tone encoded by
 * ffmpeg) through a DirectTransport, as a talking room's producer receives them. Each round runs
 * the same N channels twice for BENCH_RECORDING_SECONDS (default 5): feed only, then feed plus one
 * BurstRecorder per channel (the DirectTransport consumer, RTP parsing and Ogg pages written to a
 * scratch directory, as in production). The difference is the recording's cost: worker CPU and
 * main-thread CPU per recorded channel. A load is "sustained" when every channel's file received
 * ≥ 99 % of the packets sent, the feed loop finished within 10 % of its time and the main thread
 * stayed under 0.9 of a core.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { createLogger } from '../../src/server/logger.js';
import { BurstRecorder } from '../../src/server/recording/burst-recorder.js';
import { readPages } from '../../src/server/recording/ogg-page.js';
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { cpuMicros } from '../lib/proc.js';

const SECONDS = Number(process.env.BENCH_RECORDING_SECONDS ?? 5);
const STEPS = (process.env.BENCH_RECORDING_CHANNELS ?? '10,50,100,200,400').split(',').map(Number);

function opusPackets(dir: string): Buffer[] {
  const path = join(dir, 'tone.opus');
  execFileSync('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=10',
    '-ac', '1', '-c:a', 'libopus', '-frame_duration', '20', '-y', path,
  ]); // prettier-ignore
  return readPages(readFileSync(path))
    .slice(2)
    .flatMap((p) => p.packets);
}

interface Channel {
  router: types.Router;
  producer: types.Producer;
  ssrc: number;
  seq: number;
  ts: number;
}

async function channels(worker: types.Worker, n: number): Promise<Channel[]> {
  const out: Channel[] = [];
  for (let i = 0; i < n; i++) {
    const router = await worker.createRouter({
      mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48_000, channels: 2 }],
    });
    const t = await router.createDirectTransport({ maxMessageSize: 262_144 });
    const ssrc = 1_000 + i;
    const producer = await t.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48_000, channels: 2 }],
        encodings: [{ ssrc }],
      },
    });
    out.push({ router, producer, ssrc, seq: 0, ts: 0 });
  }
  return out;
}

function rtp(c: Channel, payload: Buffer): Buffer {
  const p = Buffer.alloc(12 + payload.length);
  p[0] = 0x80;
  p[1] = 111;
  p.writeUInt16BE(c.seq, 2);
  p.writeUInt32BE(c.ts, 4);
  p.writeUInt32BE(c.ssrc, 8);
  payload.copy(p, 12);
  c.seq = (c.seq + 1) & 0xffff;
  c.ts = (c.ts + 960) >>> 0;
  return p;
}

/** Feeds every channel one packet per 20 ms for `seconds`; returns packets sent per channel and the loop's lag. */
async function feed(chs: Channel[], packets: Buffer[], seconds: number) {
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.floor((performance.now() - t0) / 20);
      while (sent <= due && sent < seconds * 50) {
        const payload = packets[sent % packets.length];
        for (const c of chs) c.producer.send(rtp(c, payload));
        sent++;
      }
      if (sent >= seconds * 50) return resolve();
      setTimeout(tick, 20 - ((performance.now() - t0) % 20));
    };
    tick();
  });
  lag.disable();
  return { sent, wallS: (performance.now() - t0) / 1000, lagP99Ms: lag.percentile(99) / 1e6 };
}

export async function recordingScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-rec-'));
  const packets = opusPackets(dir);
  const log = createLogger('silent');
  const results: ScenarioResult[] = [];
  try {
    for (const n of STEPS) {
      const worker = await mediasoup.createWorker({ logLevel: 'warn' });
      try {
        const chs = await channels(worker, n);
        // Phase 1: the channels talk, nobody records.
        let w0 = cpuMicros(worker.pid);
        let m0 = process.cpuUsage();
        const base = await feed(chs, packets, SECONDS);
        const baseWorkerUs = cpuMicros(worker.pid) - w0;
        const baseMain = process.cpuUsage(m0);
        // Phase 2: the same, each channel recorded.
        const recorders: BurstRecorder[] = [];
        for (const [i, c] of chs.entries()) {
          recorders.push(
            await BurstRecorder.start(c.router, c.producer, join(dir, `n${n}-c${i}.ogg`), {
              packetsPerPage: 25,
              maxGapSamples: 480_000,
              log,
              onEnded: () => undefined,
            }),
          );
        }
        w0 = cpuMicros(worker.pid);
        m0 = process.cpuUsage();
        const rec = await feed(chs, packets, SECONDS);
        const recWorkerUs = cpuMicros(worker.pid) - w0;
        const recMain = process.cpuUsage(m0);
        // Packets still in the worker → Node pipe arrive: wait until the counts stop growing (≤ 2 s).
        for (let i = 0, last = -1; i < 20; i++) {
          const total = recorders.reduce((sum, r) => sum + r.packets, 0);
          if (total === last) break;
          last = total;
          await new Promise((r) => setTimeout(r, 100));
        }
        const got = recorders.map((r) => r.packets);
        const results_ = recorders.map((r) => r.stop());
        const minRecorded = Math.min(...got) / rec.sent;
        const wall = SECONDS * 1e6;
        const workerDelta = (recWorkerUs - baseWorkerUs) / wall; // cores
        const mainDelta = (recMain.user + recMain.system - baseMain.user - baseMain.system) / wall;
        // Kept up: every file got its packets, the feed loop ran on time overall, and the main
        // thread had room left (the event-loop lag alone says little on a shared, loaded machine).
        const mainCores = (recMain.user + recMain.system) / (rec.wallS * 1e6);
        const sustained = minRecorded >= 0.99 && rec.wallS <= SECONDS * 1.1 && mainCores < 0.9;
        const row = {
          scenario: 'recording',
          channels: n,
          seconds: SECONDS,
          workerCpuFeedOnly: +(baseWorkerUs / wall).toFixed(4),
          workerCpuRecording: +(recWorkerUs / wall).toFixed(4),
          mainCpuFeedOnly: +((baseMain.user + baseMain.system) / wall).toFixed(4),
          mainCpuRecording: +((recMain.user + recMain.system) / wall).toFixed(4),
          workerCpuPerRecordedChannelPct: +((workerDelta / n) * 100).toFixed(3),
          mainCpuPerRecordedChannelPct: +((mainDelta / n) * 100).toFixed(3),
          minPacketsRecordedRatio: +minRecorded.toFixed(4),
          bytesPerChannelPerSecond: Math.round(results_[0].bytes / SECONDS),
          feedLagP99Ms: +rec.lagP99Ms.toFixed(1),
          feedOnlyLagP99Ms: +base.lagP99Ms.toFixed(1),
          sustained,
        };
        results.push(row);
        ctx.say(
          `recording ${n} channels: worker +${row.workerCpuPerRecordedChannelPct}% and main +${row.mainCpuPerRecordedChannelPct}% of a core per recorded channel; ` +
            `recorded ≥ ${(minRecorded * 100).toFixed(1)}% of packets; lag p99 ${row.feedLagP99Ms} ms; ${sustained ? 'sustained' : 'NOT sustained'}`,
        );
        if (!sustained) break;
      } finally {
        worker.close();
        for (const f of readdirSync(dir)) if (f.startsWith(`n${n}-`)) rmSync(join(dir, f));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
