/**
 * Baseline (d): the raw relay (raw-relay.ts: a bare `ws` server, clients named with `?id=`, a Map
 * of clients, the recipient looked up by `payload.recipientId`) plus exactly the per-message work
 * issue 14 mandates, done with Parley's own modules, and nothing else:
 *
 * 1. the per-connection rate limit: one `TokenBucket` (signaling/rate-limiter.ts) per connection,
 *    RATE_LIMIT_PER_SEC / RATE_LIMIT_BURST as Parley reads them; over the limit, `RATE_LIMITED`
 *    once, then a 1008 close after a burst of refusals in a row (Connection.admit's rule);
 * 2. parse and validation with Parley's `decode()` (signaling/codec.ts: JSON.parse, the depth
 *    check, the compiled checker, `sameTree`); a frame that fails is answered with Parley's
 *    `error` frame (its code, message and details) and not relayed;
 * 3. the metrics Parley counts per relayed message (metrics/metrics.ts): `messagesIn(type)`,
 *    `messagesOut(type)` and the relay-latency histogram (and, as in Parley's main.ts, the process
 *    metrics, whose only running cost is the event-loop lag sampled every 100 ms);
 * 4. the sender set by the server: `splicePayload` (wire/relay-splice.ts) drops `recipientId` and
 *    appends `senderId`/`senderName`, and the frame is built as call-relay.ts's `relayFrame` builds
 *    it (re-encoding when the splice returns null), then written as Connection does: framed once
 *    (`wireBytes`) and written to the socket (`writePrebuilt`), `ws.send` otherwise, with the
 *    backpressure check (MAX_BUFFERED_BYTES) after it;
 * 5. the recipient looked up by `payload.recipientId` in the Map. No auth per message (it is a
 *    connect-time cost), no sessions, no dispatcher, no ordering chain, no relay budget, no routes.
 *
 * MANDATED_CALL_CHECK=1 adds the minimal SPEC check on call state: each connection keeps a Map of
 * its calls (callId → peer id); the first `call:offer` of a callId opens it on both sides, any
 * other call message is relayed only to the peer of that call (ICE candidates for no call are
 * dropped silently, anything else answered CALL_NOT_FOUND), and hang-up / reject close it.
 *
 * Only the call relays (`call:*`) are served; any other valid message is answered with an error.
 * Clients name themselves with `?id=` (and optionally `&name=`, the display name stamped as
 * `senderName`; the id by default) on the upgrade URL.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_REASONS,
  RELAYS,
  closeCodeOf,
  errorBody,
  type CallRelayType,
  type ClientMessageOf,
  type ErrorCode,
  type ErrorDetails,
} from '../../src/protocol/index.js';
import { defaults } from '../../src/server/config/defaults.js';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { decode } from '../../src/server/signaling/codec.js';
import { wireBytes, writePrebuilt } from '../../src/server/signaling/prebuilt-frame.js';
import { TokenBucket } from '../../src/server/signaling/rate-limiter.js';
import { encode, timestampText, type Frame } from '../../src/server/wire/frame.js';
import { splicePayload, type RelaySource } from '../../src/server/wire/relay-splice.js';

interface Client {
  readonly ws: WebSocket;
  readonly id: string;
  /** The display name stamped as `senderName` (`&name=`, the id by default). */
  readonly name: string;
  /** `"senderId":…,"senderName":…`, encoded once per connection (call-relay.ts does it per identity). */
  readonly senderFields: string;
  readonly bucket: TokenBucket;
  refusedInRow: number;
  closed: boolean;
  /** MANDATED_CALL_CHECK: this client's calls, callId → the peer's id. */
  readonly calls: Map<string, string>;
}

const envInt = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
};
const RATE_PER_SEC = envInt('RATE_LIMIT_PER_SEC', defaults.rateLimitPerSec);
const RATE_BURST = envInt('RATE_LIMIT_BURST', defaults.rateLimitBurst);
const CALL_CHECK = process.env.MANDATED_CALL_CHECK === '1';
/**
 * MANDATED_SKIP: a comma-separated list of mandated pieces to leave out, to see what each costs
 * (bench only; the relay scenario passes BENCH_MANDATED_SKIP): `limiter` (no token bucket),
 * `validate` (JSON.parse alone, as the raw relay, then its re-encode), `metrics` (no tallies, no
 * histogram, no process metrics; or one of them: `tallies`, `histogram`, `defaults`), `prebuilt`
 * (ws.send instead of the prebuilt frame's write).
 */
const SKIP = new Set((process.env.MANDATED_SKIP ?? '').split(',').filter(Boolean));

// As Parley's main.ts has them: with the process metrics (event-loop lag sampled every 100 ms).
const metrics = new Metrics({ collectDefaults: !SKIP.has('metrics') && !SKIP.has('defaults') });
const NO_METRICS = SKIP.has('metrics');
const NO_TALLIES = NO_METRICS || SKIP.has('tallies');
const NO_HISTOGRAM = NO_METRICS || SKIP.has('histogram');
const clients = new Map<string, Client>();
const http = createServer((_req, res) => res.writeHead(404).end());
// The limits Parley's gateway sets on its WebSocket server: the frame size, no compression.
const wss = new WebSocketServer({
  server: http,
  path: '/ws',
  maxPayload: defaults.maxFrameBytes,
  perMessageDeflate: false,
});

wss.on('connection', (ws, req) => {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const id = query.get('id') ?? `anon-${clients.size}`;
  const name = query.get('name') ?? id;
  const c: Client = {
    ws,
    id,
    name,
    senderFields: `"senderId":${JSON.stringify(id)},"senderName":${JSON.stringify(name)}`,
    bucket: new TokenBucket(RATE_PER_SEC, RATE_BURST),
    refusedInRow: 0,
    closed: false,
    calls: new Map(),
  };
  clients.set(id, c);
  metrics.connections.inc();
  ws.on('message', (data: Buffer, isBinary: boolean) => onFrame(c, data, isBinary));
  ws.on('close', () => {
    c.closed = true;
    metrics.connections.dec();
    if (clients.get(id) === c) clients.delete(id);
    for (const [callId, peerId] of c.calls) clients.get(peerId)?.calls.delete(callId);
  });
  ws.on('error', () => undefined);
});

function onFrame(c: Client, data: Buffer, isBinary: boolean): void {
  // One clock read per frame, shared by the rate limit and the relay latency (as in Parley).
  const receivedAt = performance.now();
  if (!admit(c, receivedAt)) return;
  if (isBinary) {
    metrics.messagesIn('binary').inc();
    sendError(c, 'INVALID_MESSAGE', 'binary frames are not supported; send JSON text frames');
    return;
  }
  const decoded = SKIP.has('validate') ? parseOnly(data.toString('utf8')) : decode(data.toString('utf8'));
  if (!decoded.ok) {
    metrics.messagesIn(decoded.code === 'UNKNOWN_TYPE' ? 'unknown' : (decoded.type ?? 'invalid')).inc();
    sendError(c, decoded.code, decoded.message, decoded.details);
    return;
  }
  const msg = decoded.msg;
  if (!NO_TALLIES) metrics.messagesIn(msg.type).inc();
  if (!Object.hasOwn(RELAYS, msg.type) || RELAYS[msg.type as keyof typeof RELAYS] !== 'call') {
    sendError(c, 'INVALID_MESSAGE', `this baseline relays call messages only, not "${msg.type}"`);
    return;
  }
  relayCall(c, msg as ClientMessageOf<CallRelayType>, receivedAt, decoded.verbatim);
}

/** Connection.admit's rule: RATE_LIMITED on the first refusal in a row, 1008 after a burst of them. */
function admit(c: Client, now: number): boolean {
  if (c.closed) return false;
  if (SKIP.has('limiter') || c.bucket.take(now)) {
    c.refusedInRow = 0;
    return true;
  }
  c.refusedInRow++;
  if (c.refusedInRow === 1) sendError(c, 'RATE_LIMITED', 'rate limit exceeded; further messages are dropped');
  else if (c.refusedInRow >= RATE_BURST) {
    c.closed = true;
    c.ws.close(closeCodeOf('RATE_LIMITED'), 'rate limit');
    c.ws.pause();
    setTimeout(() => c.ws.terminate(), defaults.floodCloseTimeoutMs).unref();
  }
  return false;
}

function relayCall(
  c: Client,
  msg: ClientMessageOf<CallRelayType>,
  receivedAt: number,
  verbatim: RelaySource | undefined,
): void {
  const { recipientId, callId } = msg.payload;
  const ice = msg.type === 'call:ice-candidate';
  if (CALL_CHECK && !callAllows(c, msg.type, recipientId, callId)) return;
  const to = recipientId === c.id ? undefined : clients.get(recipientId);
  if (to === undefined || to.closed) {
    // Trickled candidates for someone gone are noise; anything else is answered (SPEC §3).
    if (!ice) sendError(c, 'RECIPIENT_OFFLINE', `user "${recipientId}" is not connected`);
    return;
  }
  if (CALL_CHECK) track(c, to, msg.type, callId);
  write(to, relayFrame(msg.type, msg.payload, c, verbatim));
  if (!NO_HISTOGRAM) metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
}

/** MANDATED_CALL_CHECK: may this message go to `recipientId` (the peer of `callId`, or an offer that opens it)? */
function callAllows(c: Client, type: CallRelayType, recipientId: string, callId: string): boolean {
  const peer = c.calls.get(callId);
  if (peer === recipientId) return true;
  if (peer === undefined && type === 'call:offer') return true;
  if (type !== 'call:ice-candidate')
    sendError(c, 'CALL_NOT_FOUND', `no call "${callId}" between you and "${recipientId}"`);
  return false;
}

function track(c: Client, to: Client, type: CallRelayType, callId: string): void {
  if (type === 'call:hangup' || type === 'call:reject') {
    c.calls.delete(callId);
    to.calls.delete(callId);
  } else if (type === 'call:offer' && !c.calls.has(callId)) {
    c.calls.set(callId, to.id);
    to.calls.set(callId, c.id);
  }
}

/** call-relay.ts's `relayFrame`: the spliced payload when the splice can, else the re-encoded one. */
function relayFrame(
  type: CallRelayType,
  payload: ClientMessageOf<CallRelayType>['payload'],
  sender: Client,
  verbatim: RelaySource | undefined,
): Frame {
  const spliced = verbatim && splicePayload(verbatim, 'recipientId', sender.senderFields);
  if (spliced) {
    const text = `{"type":${JSON.stringify(type)},"payload":${spliced},"timestamp":${timestampText()}}`;
    return { type, data: Buffer.from(text) };
  }
  const rest: Record<string, unknown> = { ...payload, senderId: sender.id, senderName: sender.name };
  delete rest.recipientId;
  return { type, data: Buffer.from(JSON.stringify({ type, payload: rest, timestamp: Date.now() })) };
}

/** Connection's write: framed once and written to the socket, ws.send otherwise; then backpressure. */
function write(to: Client, f: Frame): void {
  if (to.closed) return;
  if (SKIP.has('prebuilt') || !writePrebuilt(to.ws, wireBytes(f))) to.ws.send(f.data, { binary: false });
  if (!NO_TALLIES) metrics.messagesOut(f.type).inc();
  if (to.ws.bufferedAmount > defaults.maxBufferedBytes) {
    to.closed = true;
    to.ws.close(CLOSE_REASONS.BACKPRESSURE.code, 'backpressure');
    setTimeout(() => to.ws.terminate(), defaults.backpressureCloseTimeoutMs).unref();
  }
}

/** MANDATED_SKIP=validate: the raw relay's JSON.parse and nothing else (the payload is then re-encoded). */
function parseOnly(text: string): ReturnType<typeof decode> {
  try {
    return { ok: true, msg: JSON.parse(text) as ClientMessageOf<CallRelayType> };
  } catch {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'frame is not valid JSON' };
  }
}

function sendError(c: Client, code: ErrorCode, message?: string, details?: ErrorDetails): void {
  metrics.errors(code).inc();
  write(c, { type: 'error', data: Buffer.from(encode('error', errorBody(code, message, details))) });
}

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(
    `${JSON.stringify({ msg: 'listening', port, server: 'mandated-relay', callCheck: CALL_CHECK })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
