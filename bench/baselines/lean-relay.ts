/**
 * Baseline (e): the same per-message work as the mandated relay (mandated-relay.ts), written as
 * leanly as I could, to bound what that work can cost at all. mandated-relay.ts does it with
 * Parley's own modules (its general codec and compiled checkers, `TokenBucket`, prom-client-backed
 * `Metrics`, the splice and the prebuilt frame); this does it inline, for the two call messages
 * the relay bench sends, with nothing general:
 *
 * 1. the per-connection rate limit: a token bucket in two numbers on the client (RATE_LIMIT_PER_SEC
 *    / RATE_LIMIT_BURST); over the limit, `RATE_LIMITED` once, then a 1008 close after a burst of
 *    refusals in a row;
 * 2. parse and validation: JSON.parse, then by hand exactly the checks the protocol's Zod schemas
 *    make for `call:ice-candidate` and `call:offer` (common.ts: ids 1-128 characters, the candidate
 *    object or null with its optional fields and bounds, the SDP 1-60,000 characters, an optional
 *    numeric timestamp); anything else, or a frame that fails, is answered with an `error` frame
 *    and not relayed;
 * 3. metrics: a counter in and out per type and the relay-latency histogram (Parley's buckets), as
 *    plain numbers, and the event-loop lag sampled every 100 ms (`monitorEventLoopDelay`);
 * 4. the sender set by the server: `recipientId` deleted, `senderId`/`senderName` set, the frame
 *    re-encoded with its timestamp and sent with `ws.send` (as the raw relay does), with the
 *    backpressure check after it;
 * 5. the recipient looked up by `payload.recipientId` in a Map.
 *
 * It is a bench baseline, not a server: no auth, no sessions, no calls, only the two types.
 *
 * LEAN_WITH (a comma-separated list; the relay scenario's BENCH_LEAN_VARIANTS) puts Parley's own
 * module back for one piece, to see which of them makes the mandated relay dearer than this one:
 * `codec` (Parley's `decode()` validates, and the relayed frame is spliced from the received text
 * as `relayFrame` builds it), `metrics` (Parley's `Metrics`: its tallies, the tallied histogram and
 * its process metrics; or half of it: `tallies`, the per-message counts and histogram, or
 * `defaults`, the process metrics (process-metrics.ts) in place of the lag sampler), `gc` (a GC
 * `PerformanceObserver` with an empty callback: what METRICS_GC's histogram adds, the observer
 * alone), `bucket` (Parley's `TokenBucket`), `prebuilt` (the frame built once with `wireBytes` and
 * written with `writePrebuilt`, as Connection writes).
 */
import { createServer } from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_REASONS,
  closeCodeOf,
  type ErrorCode,
  type ServerMessageType,
} from '../../src/protocol/index.js';
import { defaults } from '../../src/server/config/defaults.js';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { collectProcessMetrics } from '../../src/server/metrics/process-metrics.js';
import { decode } from '../../src/server/signaling/codec.js';
import { wireBytes, writePrebuilt } from '../../src/server/signaling/prebuilt-frame.js';
import { TokenBucket } from '../../src/server/signaling/rate-limiter.js';
import { timestampText } from '../../src/server/wire/frame.js';
import { splicePayload } from '../../src/server/wire/relay-splice.js';
import { leanProblem } from './lean-checks.js';

interface Client {
  readonly ws: WebSocket;
  readonly id: string;
  readonly name: string;
  tokens: number;
  refilledAt: number;
  /** LEAN_WITH=bucket: Parley's. */
  readonly bucket: TokenBucket | null;
  /** LEAN_WITH=codec: `"senderId":…,"senderName":…`, encoded once. */
  readonly senderFields: string;
  refusedInRow: number;
  closed: boolean;
}

const envInt = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
};
const RATE_PER_MS = envInt('RATE_LIMIT_PER_SEC', defaults.rateLimitPerSec) / 1000;
const RATE_BURST = envInt('RATE_LIMIT_BURST', defaults.rateLimitBurst);
const WITH = new Set((process.env.LEAN_WITH ?? '').split(',').filter(Boolean));
for (const piece of WITH)
  if (!['codec', 'metrics', 'tallies', 'defaults', 'gc', 'bucket', 'prebuilt'].includes(piece))
    throw new Error(`LEAN_WITH: no piece "${piece}"`);
/** `metrics` is `tallies` (Parley's per-message tallies and histogram) and `defaults` (its process metrics). */
const PARLEY_METRICS =
  WITH.has('metrics') || WITH.has('tallies') ? new Metrics({ collectDefaults: WITH.has('metrics') }) : null;
const PROCESS_METRICS = WITH.has('metrics') || WITH.has('defaults');
if (WITH.has('defaults')) collectProcessMetrics(new Registry(), { gcDurations: false });
if (WITH.has('gc')) new PerformanceObserver(() => {}).observe({ entryTypes: ['gc'] });

/** The relay-latency histogram's bounds (s), Parley's (metrics.ts), and its counts. */
const BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
const buckets = new Float64Array(BOUNDS.length + 1);
let latencySum = 0;
const tallies = { in: { ice: 0, offer: 0, other: 0 }, out: { ice: 0, offer: 0, error: 0 } };
const lag = monitorEventLoopDelay({ resolution: 100 });
if (!PROCESS_METRICS) lag.enable();

const clients = new Map<string, Client>();
const http = createServer((_req, res) => {
  // What a scrape would read: enough to keep the tallies live.
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ tallies, buckets: [...buckets], latencySum, lagMeanNs: lag.mean }));
});
const wss = new WebSocketServer({
  server: http,
  path: '/ws',
  maxPayload: defaults.maxFrameBytes,
  perMessageDeflate: false,
});

wss.on('connection', (ws, req) => {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const id = query.get('id') ?? `anon-${clients.size}`;
  const c: Client = {
    ws,
    id,
    name: query.get('name') ?? id,
    tokens: RATE_BURST,
    refilledAt: performance.now(),
    bucket: WITH.has('bucket') ? new TokenBucket(RATE_PER_MS * 1000, RATE_BURST) : null,
    senderFields: `"senderId":${JSON.stringify(id)},"senderName":${JSON.stringify(query.get('name') ?? id)}`,
    refusedInRow: 0,
    closed: false,
  };
  clients.set(id, c);
  ws.on('message', (data: Buffer, isBinary: boolean) => onFrame(c, data, isBinary));
  ws.on('close', () => {
    c.closed = true;
    if (clients.get(id) === c) clients.delete(id);
  });
  ws.on('error', () => undefined);
});

function onFrame(c: Client, data: Buffer, isBinary: boolean): void {
  const receivedAt = performance.now();
  if (!admit(c, receivedAt)) return;
  if (isBinary) return refuse(c, 'INVALID_MESSAGE', 'binary frames are not supported; send JSON text frames');
  if (WITH.has('codec')) return withCodec(c, data, receivedAt);
  let msg: { type?: unknown; payload?: Record<string, unknown>; timestamp?: unknown };
  try {
    msg = JSON.parse(data.toString('utf8')) as typeof msg;
  } catch {
    return refuse(c, 'INVALID_MESSAGE', 'frame is not valid JSON');
  }
  const problem = leanProblem(msg);
  if (problem !== null) {
    tallyIn('other');
    return refuse(c, problem.code, problem.message);
  }
  const p = msg.payload as Record<string, unknown>;
  const type = msg.type as 'call:ice-candidate' | 'call:offer';
  tallyIn(type);
  const to = recipient(c, type, p.recipientId as string);
  if (to === null) return;
  delete p.recipientId;
  p.senderId = c.id;
  p.senderName = c.name;
  send(to, type, JSON.stringify({ type, payload: p, timestamp: Date.now() }));
  tallyOut(type);
  observe((performance.now() - receivedAt) / 1000);
}

/** LEAN_WITH=codec: Parley's decode, and the frame spliced from the received text as Parley does. */
function withCodec(c: Client, data: Buffer, receivedAt: number): void {
  const decoded = decode(data.toString('utf8'));
  if (!decoded.ok) {
    tallyIn('other');
    return refuse(c, decoded.code, decoded.message);
  }
  const type = decoded.msg.type;
  if (type !== 'call:ice-candidate' && type !== 'call:offer')
    return refuse(c, 'UNKNOWN_TYPE', 'this baseline relays call:ice-candidate and call:offer only');
  tallyIn(type);
  const payload = decoded.msg.payload as Record<string, unknown>;
  const to = recipient(c, type, payload.recipientId as string);
  if (to === null) return;
  const spliced = decoded.verbatim && splicePayload(decoded.verbatim, 'recipientId', c.senderFields);
  let text: string;
  if (spliced) text = `{"type":${JSON.stringify(type)},"payload":${spliced},"timestamp":${timestampText()}}`;
  else {
    const rest: Record<string, unknown> = { ...payload, senderId: c.id, senderName: c.name };
    delete rest.recipientId;
    text = JSON.stringify({ type, payload: rest, timestamp: Date.now() });
  }
  send(to, type, text);
  tallyOut(type);
  observe((performance.now() - receivedAt) / 1000);
}

/** The connected recipient, or null (a candidate for nobody is dropped silently, an offer answered). */
function recipient(c: Client, type: string, recipientId: string): Client | null {
  const to = clients.get(recipientId);
  if (to !== undefined && !to.closed && to !== c) return to;
  if (type !== 'call:ice-candidate') refuse(c, 'RECIPIENT_OFFLINE', `user "${recipientId}" is not connected`);
  return null;
}

function tallyIn(type: 'call:ice-candidate' | 'call:offer' | 'other'): void {
  if (PARLEY_METRICS) PARLEY_METRICS.messagesIn(type === 'other' ? 'invalid' : type).inc();
  else if (type === 'call:ice-candidate') tallies.in.ice++;
  else if (type === 'call:offer') tallies.in.offer++;
  else tallies.in.other++;
}

function tallyOut(type: 'call:ice-candidate' | 'call:offer' | 'error'): void {
  if (PARLEY_METRICS) PARLEY_METRICS.messagesOut(type).inc();
  else if (type === 'call:ice-candidate') tallies.out.ice++;
  else if (type === 'call:offer') tallies.out.offer++;
  else tallies.out.error++;
}

function admit(c: Client, now: number): boolean {
  if (c.closed) return false;
  if (c.bucket !== null ? c.bucket.take(now) : take(c, now)) {
    c.refusedInRow = 0;
    return true;
  }
  c.refusedInRow++;
  if (c.refusedInRow === 1) refuse(c, 'RATE_LIMITED', 'rate limit exceeded; further messages are dropped');
  else if (c.refusedInRow >= RATE_BURST) {
    c.closed = true;
    c.ws.close(closeCodeOf('RATE_LIMITED'), 'rate limit');
    setTimeout(() => c.ws.terminate(), defaults.floodCloseTimeoutMs).unref();
  }
  return false;
}

function take(c: Client, now: number): boolean {
  c.tokens = Math.min(RATE_BURST, c.tokens + (now - c.refilledAt) * RATE_PER_MS);
  c.refilledAt = now;
  if (c.tokens < 1) return false;
  c.tokens -= 1;
  return true;
}

function observe(seconds: number): void {
  if (PARLEY_METRICS) return PARLEY_METRICS.relayLatency.observe(seconds);
  let i = 0;
  while (i < BOUNDS.length && seconds > BOUNDS[i]) i++;
  buckets[i]++;
  latencySum += seconds;
}

function refuse(c: Client, code: ErrorCode, message: string): void {
  PARLEY_METRICS?.errors(code).inc();
  send(c, 'error', JSON.stringify({ type: 'error', payload: { code, message }, timestamp: Date.now() }));
  tallyOut('error');
}

function send(to: Client, type: ServerMessageType, text: string): void {
  if (to.closed) return;
  if (!WITH.has('prebuilt') || !writePrebuilt(to.ws, wireBytes({ type, data: Buffer.from(text) })))
    to.ws.send(text);
  if (to.ws.bufferedAmount > defaults.maxBufferedBytes) {
    to.closed = true;
    to.ws.close(CLOSE_REASONS.BACKPRESSURE.code, 'backpressure');
    setTimeout(() => to.ws.terminate(), defaults.backpressureCloseTimeoutMs).unref();
  }
}

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port, server: 'lean-relay' })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
