/**
 * Scenario "relaycost": where a relayed message's JavaScript goes, stage by stage, next to what
 * the raw-ws floor's handler does with the same frame (issue 14: "a profile that says where the
 * remaining time goes"). In-process, no sockets: each stage is Parley's own code on the frame the
 * relay benchmark sends (an ICE candidate and a 3 KB SDP offer), timed over many iterations and
 * repeated, stages interleaved within a round. The socket write, ws's framing and the kernel are
 * the same work for every server and are not here: the relay scenario measures them end to end.
 */
import { Metrics } from '../../src/server/metrics/metrics.js';
import { RelayBudget } from '../../src/server/calls/relay-budget.js';
import { decode } from '../../src/server/signaling/codec.js';
import { frameText } from '../../src/server/signaling/prebuilt-frame.js';
import { RateLimits } from '../../src/server/signaling/rate-limits.js';
import { systemClock } from '../../src/server/time/clock.js';
import { timestampText } from '../../src/server/wire/frame.js';
import { splicePayload } from '../../src/server/wire/relay-splice.js';
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { frameFor, type PayloadKind } from '../lib/payloads.js';
import { median, round } from '../lib/stats.js';

const ITERATIONS: Record<PayloadKind, number> = { ice: 200_000, sdp: 40_000 };
const SENDER_FIELDS = `"senderId":"user-00001","senderName":"User 1"`;

/** Something each stage returns, summed so that no stage can be optimised away. */
let sink = 0;

type Stage = (buf: Buffer) => number;

function stages(kind: PayloadKind): Record<string, Stage> {
  const metrics = new Metrics();
  const limits = new RateLimits({ perSec: 1_000_000, burst: 1_000_000, clock: systemClock });
  const budget = new RelayBudget(
    { bytesPerSec: 1024 ** 3, burstBytes: 1024 ** 3, messagesPerSec: 1e7, burstMessages: 1e7 },
    systemClock,
  );
  const type = kind === 'ice' ? 'call:ice-candidate' : 'call:offer';
  const text0 = frameFor('parley', kind, 'user-00002', 1);
  const d0 = decode(text0);
  if (!d0.ok || !d0.verbatim) throw new Error(`relaycost: the ${kind} frame does not decode for a splice`);
  const verbatim = d0.verbatim;
  const spliced0 = splicePayload(verbatim, 'recipientId', SENDER_FIELDS);
  if (spliced0 === null) throw new Error(`relaycost: the ${kind} frame does not splice`);
  const out0 = `{"type":"${type}","payload":${spliced0},"timestamp":${timestampText()}}`;
  return {
    // The floor's whole handler (bench/baselines/raw-relay.ts): parse, stamp the sender, serialise.
    rawHandler: (buf) => {
      const msg = JSON.parse(buf.toString()) as { payload: { senderId?: string } };
      msg.payload.senderId = 'user-00001';
      return JSON.stringify(msg).length;
    },
    // Parley, in the order a relayed message meets them.
    parse: (buf) => (JSON.parse(buf.toString()) as object) && 1,
    decode: (buf) => (decode(buf.toString()).ok ? 1 : 0),
    splice: () => {
      const s = splicePayload(verbatim, 'recipientId', SENDER_FIELDS);
      return `{"type":"${type}","payload":${s},"timestamp":${timestampText()}}`.length;
    },
    frame: () => frameText(Buffer.from(out0)).length,
    limits: () => {
      const now = systemClock.monotonic();
      budget.take('user-00001', 'user-00002', 300, now);
      return limits.take('user-00001', '127.0.0.1', now) ? 1 : 0;
    },
    metrics: () => {
      metrics.messagesIn(type).inc();
      metrics.messagesOut(type).inc();
      metrics.relayLatency.observe(0.0001);
      return 1;
    },
    clock: () => systemClock.monotonic() + systemClock.monotonic() + Date.now(),
  };
}

function time(stage: Stage, buf: Buffer, n: number): number {
  const t0 = process.hrtime.bigint();
  let s = 0;
  for (let i = 0; i < n; i++) s += stage(buf);
  const ns = Number(process.hrtime.bigint() - t0);
  sink += s;
  return ns / n;
}

export async function relayCostScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const rounds = Math.max(3, ctx.rounds);
  for (const kind of ['ice', 'sdp'] as const) {
    const buf = Buffer.from(frameFor('parley', kind, 'user-00002', 1));
    const all = stages(kind);
    const n = ITERATIONS[kind];
    // Warm-up: let V8 optimise every stage before the first timed round.
    for (const stage of Object.values(all)) time(stage, buf, n / 4);
    const samples: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const [name, stage] of Object.entries(all)) (samples[name] ??= []).push(time(stage, buf, n));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const ns = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v), 1)]));
    // decode includes the parse; what validation adds is the difference.
    const validation = round(ns.decode - ns.parse, 1);
    const parleyJs = round(ns.decode + ns.splice + ns.frame + ns.limits + ns.metrics + ns.clock, 1);
    const byStage = {
      parseFrame: ns.parse,
      validate: validation,
      spliceSender: ns.splice,
      frameBytes: ns.frame,
      rateLimitAndBudget: ns.limits,
      metrics: ns.metrics,
      clockReads: ns.clock,
    };
    results.push({
      scenario: 'relaycost',
      payload: kind,
      frameBytes: buf.length,
      iterations: n,
      rounds,
      nsPerMessage: byStage,
      nsPerMessageByRound: samples,
      parleyJsNs: parleyJs,
      rawHandlerNs: ns.rawHandler,
      parleyMinusRawNs: round(parleyJs - ns.rawHandler, 1),
    });
    ctx.say(
      `relaycost ${kind}: Parley's JS ${parleyJs} ns/msg vs the floor's handler ${ns.rawHandler} ns ` +
        `(parse ${ns.parse}, validate ${validation}, splice ${ns.splice}, frame ${ns.frame}, ` +
        `limits ${ns.limits}, metrics ${ns.metrics}, clock ${ns.clock})`,
    );
  }
  if (sink === 0) ctx.say('relaycost: (sink 0)');
  return results;
}
