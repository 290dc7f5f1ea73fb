/**
 * Scenario "connectcost": where an accepted connection's JavaScript goes in Parley, stage by stage,
 * next to what the raw-ws server's and PeerJS's connection handlers do (issue 14: "a profile that
 * says where the remaining time goes"). Modelled on relaycost.ts: in-process, Parley's own modules
 * on the inputs of the connections benchmark (its HS256 token and settings, `Authorization:
 * Bearer`, a real upgrade request captured once from a real loopback socket), timed over many
 * iterations and repeated, stages interleaved within a round. Each round opens N connections'
 * worth of state before it closes any, so maps, the session index and the deadline queue hold N
 * entries, as in the connect ramp.
 *
 * Not here, because all three servers pay them: accepting the socket, Node's HTTP parser, ws's
 * upgrade (the key hash, the 101, the WebSocket, its Receiver and Sender), the socket writes and the
 * kernel. The connections scenario measures those end to end.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { openSync } from 'node:fs';
import { Socket, type AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { PROTOCOL_VERSION } from '../../src/protocol/index.js';
import type { Identity } from '../../src/server/auth/claims.js';
import { extractToken } from '../../src/server/auth/extract-token.js';
import { TokenExpiry, type TokenExpiryPolicy } from '../../src/server/auth/token-expiry.js';
import { TokenVerifier } from '../../src/server/auth/token-verifier.js';
import { defaults } from '../../src/server/config/defaults.js';
import { loadConfig, type Config } from '../../src/server/config/env.js';
import { ProxyTrust, clientAddress } from '../../src/server/http/client-address.js';
import { SocketGuard, socketReserve } from '../../src/server/http/socket-guard.js';
import { LogStream } from '../../src/server/log-stream.js';
import { createLogger, type Logger } from '../../src/server/logger.js';
import { ConnectionLog } from '../../src/server/signaling/connection-log.js';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { SessionManager } from '../../src/server/sessions/session-manager.js';
import type { LiveSession } from '../../src/server/sessions/live-session.js';
import { Connection, type ConnectionDeps } from '../../src/server/signaling/connection.js';
import { RateLimits } from '../../src/server/signaling/rate-limits.js';
import { WS_PATH } from '../../src/server/signaling/gateway.js';
import { MemoryState } from '../../src/server/state/memory/memory-state.js';
import { DeadlineQueue } from '../../src/server/time/deadline-queue.js';
import { systemClock } from '../../src/server/time/clock.js';
import { encode } from '../../src/server/wire/frame.js';
import type { Ctx, ScenarioResult } from '../lib/ctx.js';
import { BENCH_SECRET } from '../lib/servers.js';
import { median, round } from '../lib/stats.js';
import { tokenFor } from '../lib/tokens.js';

/** Connections per round: about the mean count open during the connections scenario's ramp to ~20k. */
const PER_ROUND = Number(process.env.BENCH_CONNECTCOST_N ?? 10_000);

/** Something each stage returns, summed so that no stage can be optimised away. */
let sink = 0;

/** The real upgrade request the connections benchmark's client sends, captured from a loopback socket. */
async function captureUpgrade(token: string): Promise<IncomingMessage> {
  const server = createServer();
  const req = await new Promise<IncomingMessage>((resolve, reject) => {
    server.on('upgrade', (r: IncomingMessage, socket: Socket) => {
      resolve(r);
      socket.destroy();
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      // As bench/lib/clients.ts: the token in `Authorization: Bearer`, Parley's subprotocol.
      const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}`, 'parley', {
        headers: { authorization: `Bearer ${token}` },
      });
      ws.on('error', () => undefined);
    });
    server.on('error', reject);
  });
  await new Promise((resolve) => server.close(resolve));
  return req;
}

/** A server-side ws socket as ws builds one for an upgrade, not attached to a TCP socket. */
function serverSideSocket(): WebSocket {
  // ws's WebSocketServer builds its sockets as `new WebSocket(null, undefined, options)`.
  const Ctor = WebSocket as unknown as new (
    address: null,
    protocols: undefined,
    options: object,
  ) => WebSocket;
  return new Ctor(null, undefined, { autoPong: true, allowSynchronousEvents: true, maxPayload: 1 << 20 });
}

interface Fixture {
  config: Config;
  req: IncomingMessage;
  token: string;
  identity: Identity;
  verifier: TokenVerifier;
  log: Logger;
  /** The gateway's "connection opened" / "connection closed" lines (signaling/connection-log.ts). */
  connLog: ConnectionLog;
  logFd: number;
  metrics: Metrics;
}

/** One round's objects for N connections, built before the timing starts. */
interface RoundInputs {
  sockets: Socket[];
  wsForParley: WebSocket[];
  wsForRaw: WebSocket[];
  wsForPeer: WebSocket[];
  identities: Identity[];
}

function roundInputs(f: Fixture, n: number): RoundInputs {
  return {
    sockets: Array.from({ length: n }, () => new Socket()),
    wsForParley: Array.from({ length: n }, () => serverSideSocket()),
    wsForRaw: Array.from({ length: n }, () => serverSideSocket()),
    wsForPeer: Array.from({ length: n }, () => serverSideSocket()),
    // The same user's identity under N user ids: MAX_SESSIONS_PER_USER counts per user.
    identities: Array.from({ length: n }, (_, i) => ({ ...f.identity, userId: `user-${i}` })),
  };
}

type Timed = Record<string, number>;

/**
 * CPU time since `c0` (every thread of the process: what the connections scenario counts as the
 * server's CPU), in ns per connection. CPU rather than wall time: other work on the machine
 * preempts this process but does not add to its CPU time.
 */
function ns(c0: NodeJS.CpuUsage, n: number): number {
  const d = process.cpuUsage(c0);
  return ((d.user + d.system) * 1000) / n;
}

/**
 * One round: every stage over N connections, each stage timed on its own (ns per connection),
 * closing stages timed too but reported apart from the connect sum.
 */
async function oneRound(f: Fixture, n: number): Promise<Timed> {
  const inputs = roundInputs(f, n);
  const out: Timed = {};
  const { config, req, metrics, log, connLog } = f;
  let s = 0;

  // The socket guard (http/socket-guard.ts): accept (standing, per-address count, deadline timer,
  // shared close listener), then the upgrade's `upgrading` (deadline cleared, record dropped).
  const proxies = new ProxyTrust(config.trustProxy);
  const guardServer = createServer();
  const guard = new SocketGuard({
    maxConnections: config.limits.maxConnections,
    maxConnectionsPerIp: config.limits.maxConnectionsPerIp,
    webSocketsFrom: () => 0,
    proxies,
    headersTimeoutMs: config.limits.upgradeHeadersTimeoutMs,
    reserve: socketReserve(
      config.limits.maxConnections,
      defaults.socketReserveFraction,
      defaults.socketReserveMin,
    ),
    reservePerAddress: defaults.socketReservePerAddress,
    log,
    metrics,
  });
  // Node's own HTTP connection listener (the parser for the socket) is every server's: only the
  // guard's listener stays.
  guardServer.removeAllListeners('connection');
  guard.attach(guardServer);
  let t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const socket = inputs.sockets[i];
    guardServer.emit('connection', socket);
    if (guard.upgrading(socket) === 'admitted') s++;
  }
  out.socketGuard = ns(t0, n);

  // The gateway's own checks on the upgrade request (gateway.ts #onUpgrade): the URL (none for a
  // bare /ws, as here), the path, the compat parameter, the client address, the per-address count,
  // the token's extraction.
  const perIp = new Map<string, number>();
  const max = config.limits.maxConnectionsPerIp;
  const { legacyTokenSubprotocol } = config.auth;
  const remotes: string[] = new Array<string>(n);
  const tokens: string[] = new Array<string>(n);
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const target = req.url ?? '/';
    const url = target === WS_PATH ? null : new URL(target, 'http://localhost');
    if (url !== null && url.pathname !== WS_PATH) continue;
    if ((url?.searchParams.get('compat') ?? null) !== null) continue;
    const remote = clientAddress(req, proxies);
    const current = perIp.get(remote) ?? 0;
    if (max > 0 && current >= max) continue;
    perIp.set(remote, current + 1);
    const found = extractToken(req, url, { legacySubprotocol: legacyTokenSubprotocol });
    remotes[i] = remote;
    tokens[i] = found?.token ?? '';
  }
  out.upgradeChecks = ns(t0, n);

  // HS256 verification with every claim check, the claims schema and the token id (the server's
  // verifier, built from the server's config). Synchronous for HS256, as the gateway takes it.
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const v = f.verifier.verify(tokens[i]);
    const r = v instanceof Promise ? await v : v;
    if (r.ok) s++;
  }
  out.verifyToken = ns(t0, n);

  // The Connection object and the gateway's set of connections (gateway.ts #onOpen).
  const deps: ConnectionDeps = {
    limits: config.limits,
    metrics,
    log,
    rateLimits: new RateLimits({ perSec: 1e6, burst: 1e6, clock: systemClock }),
  };
  const connections = new Set<Connection>();
  const conns: Connection[] = new Array<Connection>(n);
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const conn = new Connection(inputs.wsForParley[i], remotes[i], inputs.identities[i], deps);
    connections.add(conn);
    (inputs.wsForParley[i] as WebSocket & { conn: Connection | null }).conn = conn;
    conns[i] = conn;
  }
  out.connection = ns(t0, n);

  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) metrics.connections.inc();
  out.metrics = ns(t0, n);

  // The "connection opened" info line (SPEC §Logging), through the real logger, asynchronous as in
  // production; the session line at debug (a no-op at info) as the dispatcher calls it. Main thread
  // only: the stream queues the line and writes it later (timed below with the writes).
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const conn = conns[i];
    connLog.opened(conn.id, remotes[i], inputs.identities[i].userId, null);
    log.debug({ conn: conn.id, session: 'x', userId: inputs.identities[i].userId }, 'session opened');
  }
  out.logLine = ns(t0, n);
  await new Promise<void>((resolve, reject) => log.flush((err) => (err ? reject(err) : resolve())));
  // With the writes: the lines and their flush (the libuv worker that runs fs.write counts too).
  // The lines are batched here, many per write; a server connecting slowly writes more often.
  out.logLineAndWrite = ns(t0, n);

  // The session (sessions/session-manager.ts open, memory backend): quota check, the session, its
  // indexes, the resume token (32 random bytes) and its SHA-256, the token's record in the store.
  const store = new MemoryState();
  const sessions = new SessionManager({ store, graceMs: config.resumeGraceMs, log });
  const opened = new Array<{ session: LiveSession; resumeToken: string }>(n);
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) opened[i] = await sessions.open(inputs.identities[i], conns[i]);
  out.sessionOpen = ns(t0, n);

  // The welcome (dispatcher.ts welcome): the frame as Connection.send encodes it (the write is
  // every server's), then the token's expiry deadline in the shared queue.
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const { session, resumeToken } = opened[i];
    const identity = inputs.identities[i];
    const data = Buffer.from(
      encode('welcome', {
        sessionId: session.id,
        userId: identity.userId,
        name: identity.name,
        protocolVersion: PROTOCOL_VERSION,
        serverTime: systemClock.now(),
        heartbeatIntervalMs: config.limits.heartbeatIntervalMs,
        heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
        resumeToken,
        resumeGraceMs: config.resumeGraceMs,
      }),
    );
    s += data.length;
  }
  out.welcomeFrame = ns(t0, n);

  const policy: TokenExpiryPolicy<Connection> = {
    deadlines: new DeadlineQueue(systemClock, () => undefined),
    leadMs: config.auth.expiringLeadMs,
    toleranceMs: config.auth.clockToleranceS * 1000,
    handlers: { expiring: () => undefined, expired: () => undefined },
  };
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const conn = conns[i];
    const expiresAt = conn.identity?.expiresAt ?? null;
    if (expiresAt !== null) conn.expiry = new TokenExpiry(expiresAt, policy, conn);
  }
  out.expiryArm = ns(t0, n);

  // Closing (not in the connect sum): the deadline, the session's end, the gateway's bookkeeping.
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    conns[i].expiry?.cancel();
    await sessions.end(opened[i].session, 'left');
    connections.delete(conns[i]);
    metrics.connections.dec();
    const remote = remotes[i];
    const left = (perIp.get(remote) ?? 1) - 1;
    if (left <= 0) perIp.delete(remote);
    else perIp.set(remote, left);
    inputs.sockets[i].emit('close', false);
  }
  out.closeAll = ns(t0, n);
  await sessions.close();

  // Baseline: the raw ws server's connection handler (bench/baselines/raw-relay.ts): the id from
  // the URL, the map entry, three listeners (closures).
  const clients = new Map<string, WebSocket>();
  const rawUrl = `/ws?id=user-00001`;
  t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const ws = inputs.wsForRaw[i];
    const id = (new URL(rawUrl, 'http://x').searchParams.get('id') ?? 'anon') + i;
    clients.set(id, ws);
    ws.on('message', (data: Buffer) => void (s += data.length + id.length));
    ws.on('close', () => {
      if (clients.get(id) === ws) clients.delete(id);
    });
    ws.on('error', () => undefined);
  }
  out.rawHandler = ns(t0, n);

  // Baseline: PeerJS's (npm `peer`, dist/module.mjs: _onSocketConnection, _registerClient,
  // _configureWS and PeerServer's 'connection' listener), with its realm's client count taken
  // as it does, by copying the map's keys (so its cost grows with the clients connected).
  out.peerjsHandler = peerjsHandlers(inputs.wsForPeer, n, (x) => (s += x));

  sink += s;
  return out;
}

/** PeerJS's per-connection JavaScript, transcribed from `peer` (1.x) dist/module.mjs. */
function peerjsHandlers(sockets: WebSocket[], n: number, use: (x: number) => void): number {
  class Client {
    socket: WebSocket | null = null;
    lastPing = Date.now();
    constructor(
      readonly id: string,
      readonly token: string,
    ) {}
    setSocket(socket: WebSocket): void {
      this.socket = socket;
    }
  }
  const clients = new Map<string, Client>();
  const messageQueues = new Map<string, unknown>();
  const server = new EventEmitter();
  const app = new EventEmitter();
  server.on('connection', (client: Client) => {
    if (messageQueues.get(client.id)) use(1);
    app.emit('connection', client);
  });
  const key = 'peerjs';
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const socket = sockets[i];
    socket.on('error', (error: Error) => server.emit('error', error));
    const { searchParams } = new URL(`/peerjs?key=peerjs&id=peer-${i}&token=tok-${i}`, 'https://peerjs');
    const { id, token, key: k } = Object.fromEntries(searchParams.entries());
    if (!id || !token || !k || k !== key) continue;
    if (clients.get(id)) continue;
    if ([...clients.keys()].length >= 1_000_000) continue;
    const client = new Client(id, token);
    clients.set(id, client);
    use(JSON.stringify({ type: 'OPEN' }).length);
    client.setSocket(socket);
    socket.on('close', () => {
      if (client.socket === socket) clients.delete(client.id);
    });
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { src?: string };
      message.src = client.id;
      server.emit('message', client, message);
    });
    server.emit('connection', client);
  }
  return ns(t0, n);
}

export async function connectCostScenario(ctx: Ctx): Promise<ScenarioResult[]> {
  const config = loadConfig({
    JWT_SECRET: BENCH_SECRET,
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    MEDIASOUP_WORKERS: '0',
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_CONNECTIONS: '0',
  });
  const token = await tokenFor('user-00001');
  const req = await captureUpgrade(token);
  const verifier = await TokenVerifier.create(config.auth);
  const checked = await verifier.verify(token);
  if (!checked.ok) throw new Error(`connectcost: the bench token does not verify (${checked.reason})`);
  const logFd = openSync('/dev/null', 'w');
  // The server's own stdout stream (logger.ts), on /dev/null; sonic-boom until the eighth pass.
  const log = createLogger('info', new LogStream({ fd: logFd }));
  const f: Fixture = {
    connLog: new ConnectionLog(log),
    config,
    req,
    token,
    identity: checked.identity,
    verifier,
    log,
    logFd,
    metrics: new Metrics(),
  };
  const rounds = Math.max(3, ctx.rounds);
  // Warm-up: let V8 optimise every stage before the first timed round.
  for (let w = 0; w < 2; w++) await oneRound(f, PER_ROUND);
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const t = await oneRound(f, PER_ROUND);
    for (const [k, v] of Object.entries(t)) (samples[k] ??= []).push(round(v, 1));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  // The fd stays open: the stream writes to it until the process exits.
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v), 1)]));
  const byStage = {
    socketGuard: m.socketGuard,
    upgradeChecks: m.upgradeChecks,
    verifyToken: m.verifyToken,
    connection: m.connection,
    metrics: m.metrics,
    logLine: m.logLine,
    sessionOpen: m.sessionOpen,
    welcomeFrame: m.welcomeFrame,
    expiryArm: m.expiryArm,
  };
  const parleyJs = round(
    Object.values(byStage).reduce((a, b) => a + b, 0),
    1,
  );
  // The log line with its share of the writes (every thread's CPU), instead of the main thread's part.
  const parleyWithLogWrite = round(parleyJs - m.logLine + m.logLineAndWrite, 1);
  const result: ScenarioResult = {
    scenario: 'connectcost',
    connectionsPerRound: PER_ROUND,
    rounds,
    nsPerConnection: byStage,
    logLineAndWriteNs: m.logLineAndWrite,
    closeNs: m.closeAll,
    nsPerConnectionByRound: samples,
    parleyJsNs: parleyJs,
    parleyJsWithLogWriteNs: parleyWithLogWrite,
    rawHandlerNs: m.rawHandler,
    peerjsHandlerNs: m.peerjsHandler,
    parleyMinusPeerjsNs: round(parleyWithLogWrite - m.peerjsHandler, 1),
  };
  ctx.say(
    `connectcost (${PER_ROUND}/round): Parley's JS ${parleyJs} CPU ns/connect (${parleyWithLogWrite} with the log write) ` +
      `vs raw ws's handler ${m.rawHandler} ns and PeerJS's ${m.peerjsHandler} ns ` +
      `(guard ${m.socketGuard}, checks ${m.upgradeChecks}, verify ${m.verifyToken}, connection ${m.connection}, ` +
      `metrics ${m.metrics}, log ${m.logLine} alone / ${m.logLineAndWrite} with its write, session ${m.sessionOpen}, ` +
      `welcome ${m.welcomeFrame}, expiry ${m.expiryArm}; close ${m.closeAll})`,
  );
  if (sink === 0) ctx.say('connectcost: (sink 0)');
  return [result];
}
