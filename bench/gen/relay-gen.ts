/**
 * Load generator for the relay scenarios (1 and 6), in its own process. N pairs of clients; in
 * each pair A sends to B and B to A (two flows). Every flow keeps the send times of its messages
 * in order: a relay preserves per-connection order, so the k-th arrival on a flow is the k-th
 * send, and latency needs no parsing of the relayed frame.
 *
 * - `closed`: each flow keeps `window` messages in flight (saturating throughput).
 * - `rate`: a fixed offered load (messages/s over all flows), paced on a 1 ms timer.
 *
 * `mark` events bracket the measurement window so the orchestrator can read the server's CPU.
 */
import type { WebSocket } from 'ws';
import { openMany } from '../lib/clients.js';
import { serve } from '../lib/ipc.js';
import { frameFor, relayedMarker, type PayloadKind, type Protocol } from '../lib/payloads.js';
import { summarize, sleep, round } from '../lib/stats.js';
import { tokensFor } from '../lib/tokens.js';

interface Flow {
  readonly index: number;
  readonly sender: WebSocket;
  frames: Record<PayloadKind, Buffer>;
  /** Ring buffer of send times (ms) of messages in flight. */
  times: Float64Array;
  head: number;
  tail: number;
}

interface SetupArgs {
  protocol: Protocol;
  /** Where the A side connects, and the B side (another node for cross-node runs). */
  urlA: string;
  urlB: string;
  pairs: number;
  /** Prefix of the ids, so that several setups on one server do not collide. */
  tag: string;
}

interface RunArgs {
  payload: PayloadKind;
  mode: 'closed' | 'rate';
  /** closed: messages in flight per flow. */
  window?: number;
  /** rate: messages per second over all flows. */
  rate?: number;
  warmupMs: number;
  durationMs: number;
}

const RING = 1 << 14;
let protocol: Protocol = 'raw';
let flows: Flow[] = [];
let sockets: WebSocket[] = [];
let onDelivery: (f: Flow, at: number, sentAt: number) => void = () => undefined;
let errors = 0;
let marker = 0;
/** Frames that arrived while no message of their flow was in flight (the calls' opening offers). */
let strays = 0;

function send(f: Flow, kind: PayloadKind, now: number): boolean {
  const next = (f.tail + 1) & (RING - 1);
  if (next === f.head) return false; // ring full: the server is far behind
  f.times[f.tail] = now;
  f.tail = next;
  f.sender.send(f.frames[kind], { binary: false });
  return true;
}

function inFlight(f: Flow): number {
  return (f.tail - f.head) & (RING - 1);
}

serve({
  async setup(a: SetupArgs) {
    protocol = a.protocol;
    const ids: string[] = [];
    for (let i = 0; i < a.pairs; i++) ids.push(`${a.tag}a${i}`, `${a.tag}b${i}`);
    const tokens = protocol === 'parley' ? await tokensFor(ids) : [];
    const opened = await openMany(ids.length, 20, (i) => ({
      protocol,
      url: i % 2 === 0 ? a.urlA : a.urlB,
      id: ids[i],
      token: tokens[i],
    }));
    if (opened.failures > 0)
      throw new Error(`${opened.failures} clients failed to connect: ${opened.firstError}`);
    sockets = opened.sockets;
    flows = [];
    for (let p = 0; p < a.pairs; p++) {
      const A = sockets[2 * p];
      const B = sockets[2 * p + 1];
      for (const [to, sender, receiver] of [
        [ids[2 * p + 1], A, B],
        [ids[2 * p], B, A],
      ] as const) {
        const index = flows.length;
        const f: Flow = {
          index,
          sender,
          frames: {
            ice: Buffer.from(frameFor(protocol, 'ice', to, index)),
            sdp: Buffer.from(frameFor(protocol, 'sdp', to, index)),
          },
          times: new Float64Array(RING),
          head: 0,
          tail: 0,
        };
        flows.push(f);
        receiver.on('message', (data: Buffer) => {
          const at = performance.now();
          if (data[9] !== marker) {
            errors++;
            if (errors <= 3) process.stderr.write(`unexpected frame: ${data.toString().slice(0, 200)}\n`);
            return;
          }
          if (f.head === f.tail) {
            strays++; // stray (an opening offer, or a late frame after a reset)
            return;
          }
          const sentAt = f.times[f.head];
          f.head = (f.head + 1) & (RING - 1);
          onDelivery(f, at, sentAt);
        });
      }
    }
    if (protocol === 'parley' || protocol === 'mandated') {
      // Parley relays call messages only within a call, which an offer starts: open each flow's
      // call before anything is measured (its ICE candidates would be dropped otherwise). The
      // mandated baseline gets the same opening offers (its MANDATED_CALL_CHECK needs them too).
      marker = relayedMarker(protocol, 'sdp');
      strays = 0;
      for (const f of flows) f.sender.send(f.frames.sdp, { binary: false });
      const until = performance.now() + 10_000;
      while (strays < flows.length && performance.now() < until) await sleep(10);
      if (strays < flows.length) throw new Error(`only ${strays} of ${flows.length} calls opened`);
    }
    return { clients: sockets.length };
  },

  async run(a: RunArgs, emit) {
    marker = relayedMarker(protocol, a.payload);
    for (const f of flows) f.head = f.tail = 0;
    errors = 0;
    let running = true;
    let measuring = false;
    let delivered = 0;
    let sent = 0;
    const latencies: number[] = [];
    let windowStart = Number.POSITIVE_INFINITY;
    let windowEnd = Number.POSITIVE_INFINITY;
    onDelivery = (f, at, sentAt) => {
      if (sentAt >= windowStart && sentAt < windowEnd) {
        delivered++;
        latencies.push(at - sentAt);
      }
      if (running && a.mode === 'closed') {
        send(f, a.payload, at);
        sent++;
      }
    };
    const t0 = performance.now();
    let timer: NodeJS.Timeout | null = null;
    if (a.mode === 'closed') {
      const w = a.window ?? 8;
      for (let k = 0; k < w; k++) for (const f of flows) if (send(f, a.payload, t0)) sent++;
    } else {
      const rate = a.rate ?? 1_000;
      let rr = 0;
      let dropped = 0;
      timer = setInterval(() => {
        const now = performance.now();
        const due = Math.floor(((now - t0) * rate) / 1_000) - sent - dropped;
        for (let k = 0; k < due; k++) {
          const f = flows[rr++ % flows.length];
          if (send(f, a.payload, now)) sent++;
          else dropped++;
        }
      }, 1);
    }
    await sleep(a.warmupMs);
    windowStart = performance.now();
    emit('mark', 'start');
    measuring = true;
    await sleep(a.durationMs);
    windowEnd = performance.now();
    emit('mark', 'end');
    measuring = false;
    running = false;
    if (timer) clearInterval(timer);
    // Let what is in flight arrive (the window only counts messages sent inside it).
    const drainUntil = performance.now() + 3_000;
    while (flows.some((f) => inFlight(f) > 0) && performance.now() < drainUntil) await sleep(20);
    const lost = flows.reduce((n, f) => n + inFlight(f), 0);
    void measuring;
    const windowMs = windowEnd - windowStart;
    const lat = summarize(latencies);
    return {
      sent,
      delivered,
      windowMs: round(windowMs, 1),
      msgsPerSec: round((delivered * 1_000) / windowMs, 0),
      latencyMs: {
        p50: round(lat.p50),
        p99: round(lat.p99),
        max: round(lat.max),
        mean: round(lat.mean),
        n: lat.n,
      },
      lostAfterDrain: lost,
      errors,
    };
  },

  close() {
    for (const s of sockets) s.terminate();
    sockets = [];
    flows = [];
    return null;
  },
});
