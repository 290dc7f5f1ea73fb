import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  CLOSE_CODES,
  ERRORS,
  errorBody,
  CALLS_V0_COMPAT,
  CALLS_V0_SUBPROTOCOL,
  type ErrorCode,
  type HttpErrorBody,
} from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import { extractToken, selectSubprotocol, type TokenSource } from '../auth/extract-token.js';
import type { TokenVerifier, VerifyResult } from '../auth/token-verifier.js';
import type { Config } from '../config/env.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { Connection, type ConnectionDeps } from './connection.js';
import { ConnectionLog } from './connection-log.js';
import { callsV0, type Dialect } from './dialect.js';
import type { Dispatcher } from './dispatcher.js';
import { HeartbeatSweep } from './heartbeat-sweep.js';
import type { RateLimits } from './rate-limits.js';
import { clientAddress, type ProxyTrust } from '../http/client-address.js';
import { background } from '../lifecycle/background.js';
import type { UpgradeAdmission } from '../http/socket-guard.js';
import { serveUpgradeAsHttp } from '../http/upgrade-as-http.js';

export const WS_PATH = '/ws';

/** RFC 6455 §7.4.1: reported when the peer's close frame carried no status code (never sent on the wire). */
const NO_STATUS_RECEIVED = 1005;

/** An upgrade request past the gateway's checks, waiting for its token's verdict. */
interface PendingUpgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  remote: string;
  compat: string | null;
  /** Where the token was found (for the log); null: no token (in-band auth). */
  source: TokenSource | null;
}

/** A socket of the gateway's own class: it carries its connection (null before open and after close). */
type GatewaySocket = WebSocket & { conn: Connection | null; guarded: boolean };

/**
 * The WebSocket front door: path check, per-address limit and authentication happen on the HTTP
 * upgrade request, so a bad token gets a 401 before any WebSocket exists. Then it owns the
 * connections: heartbeats, the in-band auth deadline, and the hand-off to the dispatcher.
 */
export class Gateway {
  readonly #wss: WebSocketServer;
  readonly #config: Config;
  readonly #log: Logger;
  /** "connection opened" / "connection closed" (SPEC §Logging). */
  readonly #connLog: ConnectionLog;
  readonly #metrics: Metrics;
  readonly #verifier: TokenVerifier;
  readonly #sessions: SessionManager;
  readonly #dispatcher: Dispatcher;
  readonly #admission: UpgradeAdmission | null;
  readonly #proxies: ProxyTrust;
  /** Shared by every connection. */
  readonly #connectionDeps: ConnectionDeps;
  readonly #connections = new Set<Connection>();
  /** Remote address → open or upgrading connections. */
  readonly #perIp = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | null = null;
  #accepting = true;

  constructor(deps: {
    config: Config;
    log: Logger;
    metrics: Metrics;
    verifier: TokenVerifier;
    sessions: SessionManager;
    dispatcher: Dispatcher;
    /** Socket caps counted from accept (http/socket-guard.ts); null: none. */
    admission?: UpgradeAdmission | null;
    /** Who the client is behind TRUST_PROXY (http/client-address.ts). */
    proxies: ProxyTrust;
    /** Message rate limits per user and per address, kept across reconnects. */
    rateLimits: RateLimits;
  }) {
    this.#config = deps.config;
    this.#log = deps.log;
    this.#connLog = new ConnectionLog(deps.log);
    this.#metrics = deps.metrics;
    this.#verifier = deps.verifier;
    this.#sessions = deps.sessions;
    this.#dispatcher = deps.dispatcher;
    this.#admission = deps.admission ?? null;
    this.#proxies = deps.proxies;
    this.#connectionDeps = {
      limits: deps.config.limits,
      metrics: deps.metrics,
      log: deps.log,
      rateLimits: deps.rateLimits,
    };
    this.#wss = new WebSocketServer({
      WebSocket: this.#socketClass(),
      noServer: true,
      clientTracking: false,
      maxPayload: deps.config.limits.maxFrameBytes,
      perMessageDeflate: false,
      // Select `parley` (or the calls adapter's `parley.v0-calls`) when offered; never echo the
      // token the browser put beside it. Only LEGACY_TOKEN_SUBPROTOCOL selects a token offered alone.
      handleProtocols: (protocols) =>
        selectSubprotocol(protocols, { legacySubprotocol: deps.config.auth.legacyTokenSubprotocol }),
    });
  }

  /** WebSocket connections, open or upgrading, from one address (the per-address limit's count). */
  connectionsFrom(address: string): number {
    return this.#perIp.get(address) ?? 0;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  connections(): ReadonlySet<Connection> {
    return this.#connections;
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.#onUpgrade(server, req, socket, head);
      } catch (err) {
        this.#upgradeFailed(socket, err);
      }
    });
    const sweep = new HeartbeatSweep(this.#connections, this.#config.limits.heartbeatIntervalMs, (conn) =>
      this.#heartbeatOf(conn, performance.now()),
    );
    this.#heartbeat = setInterval(() => sweep.tick(), sweep.tickMs);
    this.#heartbeat.unref();
  }

  /** Stop accepting upgrades (shutdown step 1). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /**
   * Runs in the turn the request arrived in whenever the token checks synchronously (HS256): no
   * promise and no microtask per connect (docs/benchmarks.md, Round 2, eighth pass). RS256/ES256
   * verification (jose) continues in {@link #admit} when its promise settles.
   */
  #onUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A module-level listener: a closure here would keep this upgrade's scope alive with the socket.
    socket.on('error', destroyOnError);
    // A bare `/ws` (a token in a header or a subprotocol) has no query to parse: no URL object.
    const target = req.url ?? '/';
    const url = target === WS_PATH ? null : new URL(target, 'http://localhost');
    // Only /ws upgrades; anywhere else `Upgrade` (h2c, say) is ignored and the request served as HTTP.
    if (url !== null && url.pathname !== WS_PATH) return serveUpgradeAsHttp(server, req, socket);
    // The headers are complete: the accept deadline stops; a socket over a cap gets no WebSocket.
    const standing = this.#admission?.upgrading(socket) ?? 'admitted';
    if (standing === 'over-address-cap') return refuse(socket, 'TOO_MANY_CONNECTIONS');
    if (standing === 'over-global-cap') return refuse(socket, 'SERVICE_UNAVAILABLE');
    if (standing === 'answered') return; // refused at accept, the answer already written
    if (!this.#accepting) return refuse(socket, 'SERVICE_UNAVAILABLE');
    const compat = url?.searchParams.get('compat') ?? null;
    if (compat !== null && compat !== CALLS_V0_COMPAT) {
      return refuse(
        socket,
        'INVALID_MESSAGE',
        `unknown compat "${compat.slice(0, 32)}"; known: ${CALLS_V0_COMPAT}`,
      );
    }

    const remote = clientAddress(req, this.#proxies);
    const max = this.#config.limits.maxConnectionsPerIp;
    const current = this.#perIp.get(remote) ?? 0;
    if (max > 0 && current >= max) {
      this.#metrics.errors('TOO_MANY_CONNECTIONS').inc();
      this.#log.warn({ remote }, 'per-address connection limit reached');
      return refuse(socket, 'TOO_MANY_CONNECTIONS');
    }
    this.#perIp.set(remote, current + 1);

    const { inBandAuth, legacyTokenSubprotocol } = this.#config.auth;
    const found = extractToken(req, url, { legacySubprotocol: legacyTokenSubprotocol });
    if (!found && !inBandAuth) {
      this.#releaseAddress(remote);
      this.#metrics.errors('UNAUTHORIZED').inc();
      this.#log.info({ remote }, 'upgrade refused: no token (IN_BAND_AUTH=false)');
      return refuse(socket, 'UNAUTHORIZED');
    }
    const upgrade: PendingUpgrade = { req, socket, head, remote, compat, source: found?.source ?? null };
    if (!found) return this.#admit(upgrade, null);
    const verified = this.#verifier.verify(found.token);
    if (!(verified instanceof Promise)) return this.#admit(upgrade, verified);
    verified
      .then(
        (result) => this.#admit(upgrade, result),
        (err: unknown) => {
          this.#releaseAddress(remote);
          throw err;
        },
      )
      .catch((err: unknown) => this.#upgradeFailed(socket, err));
  }

  /**
   * The rest of an upgrade once its token is checked (`result` null: no token, in-band auth):
   * refuse a bad token, or complete the WebSocket handshake. The address slot taken in
   * {@link #onUpgrade} is released here on every path that does not open a connection.
   */
  #admit(upgrade: PendingUpgrade, result: VerifyResult | null): void {
    const { req, socket, head, remote, compat } = upgrade;
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      this.#releaseAddress(remote);
    };
    let identity: Identity | null = null;
    if (result !== null) {
      if (!result.ok) {
        release();
        this.#metrics.errors('UNAUTHORIZED').inc();
        // The reason goes to the log; the token never does.
        this.#log.info(
          { remote, source: upgrade.source, reason: result.reason },
          'upgrade refused: bad token',
        );
        return refuse(socket, 'UNAUTHORIZED');
      }
      identity = result.identity;
    }
    if (socket.destroyed || !this.#accepting) {
      release();
      if (!socket.destroyed) refuse(socket, 'SERVICE_UNAVAILABLE');
      return;
    }
    // The 101 response and the welcome go out in one write rather than two (one syscall, and one
    // wake-up of the client, less per connect: docs/benchmarks.md, Round 2, fourth pass). The
    // socket is corked until this turn of the event loop is over: the welcome is written in it
    // whenever opening the session needs no I/O (the memory backend); otherwise (Redis) the 101
    // goes out at the end of the turn, as it would have, and the welcome after it.
    socket.cork();
    setImmediate(uncork, socket);
    let opened = false;
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      // From here the connection's close releases the slot (once: ws emits 'close' once).
      opened = true;
      socket.off('close', release);
      // ws listens for the socket's errors from here (and destroys it); the connection's close
      // tells the guard. Neither listener stays beside ws's (each would make an array of two).
      socket.off('error', destroyOnError);
      (ws as GatewaySocket).guarded = this.#admission?.opened(socket) ?? false;
      const dialect = compat !== null || ws.protocol === CALLS_V0_SUBPROTOCOL ? callsV0 : null;
      this.#onOpen(ws, remote, identity, dialect);
    });
    // ws answers a malformed handshake itself and never calls back: the slot is released when that
    // socket closes. Without a `verifyClient`, ws completes or refuses a handshake before
    // `handleUpgrade` returns, so an opened connection never held this listener: a third 'close'
    // listener beside the guard's and ws's grew the socket's listener array to 19 slots, 144 B of
    // every idle connection's heap (docs/benchmarks.md, Round 2, fourteenth pass).
    if (!opened) socket.once('close', release);
  }

  #upgradeFailed(socket: Duplex, err: unknown): void {
    this.#log.error({ err }, 'upgrade failed');
    refuse(socket, 'INTERNAL');
  }

  #releaseAddress(remote: string): void {
    const n = (this.#perIp.get(remote) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(remote);
    else this.#perIp.set(remote, n);
  }

  #onOpen(ws: WebSocket, remote: string, identity: Identity | null, dialect: Dialect | null): void {
    const conn = new Connection(ws, remote, identity, this.#connectionDeps, dialect);
    this.#connections.add(conn);
    this.#metrics.connections.inc();
    // SPEC: connections and disconnections are logged with the remote address, at info.
    this.#connLog.opened(conn.id, remote, identity?.userId ?? null, dialect?.name ?? null);

    // The socket hands its events to the gateway itself (#socketClass): no listener, no map entry.
    (ws as GatewaySocket).conn = conn;

    if (identity) {
      this.#dispatcher.welcome(conn).catch((err: unknown) => {
        // No session could be opened (state backend down): refuse, the client retries with backoff.
        this.#log.warn({ err, conn: conn.id }, 'could not open a session');
        conn.sendError('SERVICE_UNAVAILABLE', undefined, 'cannot open a session right now; retry shortly');
        conn.closeFor('SERVICE_UNAVAILABLE', 'try again later');
      });
    } else {
      const timer = setTimeout(() => {
        if (!conn.identity && !conn.closed) {
          this.#log.info({ conn: conn.id, remote }, 'auth deadline passed');
          conn.closeFor('UNAUTHORIZED', 'authentication timeout');
        }
      }, this.#config.limits.authTimeoutMs);
      timer.unref();
      ws.once('close', () => clearTimeout(timer));
    }
  }

  /**
   * The class ws builds this gateway's sockets with (ws's `WebSocket` option). Each socket carries
   * its connection in a field and hands `message`, `pong`, `error` and `close` to the gateway from
   * `emit`, before any listener: an idle connection holds no listener, no closure and no map entry
   * for them. Listening with `on()` grew every socket's listener dictionary (~0.25 KiB of heap
   * with four event names) and needed a WeakMap from socket to connection (docs/benchmarks.md,
   * Round 2, fourth pass). Listeners added with `on()`/`once()` (shutdown, the in-band auth
   * deadline) still run after the gateway's handling, as before.
   */
  #socketClass(): typeof WebSocket {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the socket's `this` is the socket
    const gateway = this;
    return class GatewayWebSocket extends WebSocket {
      conn: Connection | null = null;
      /** The socket guard counts this socket until it closes (UpgradeAdmission.opened). */
      guarded = false;

      override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
        const conn = this.conn;
        if (conn !== null) {
          switch (event) {
            case 'message':
              gateway.#dispatcher.onFrame(conn, a as Buffer, b as boolean);
              break;
            case 'pong':
              conn.lastSeen = performance.now();
              break;
            case 'error':
              gateway.#connectionError(conn, a as Error & { code?: string });
              // Handled: an 'error' without a listener would throw (EventEmitter's rule).
              if (this.listenerCount('error') === 0) return true;
              break;
            case 'close':
              gateway.#connectionClosed(this, conn, a as number);
              break;
          }
        }
        return super.emit(event, a, b);
      }
    };
  }

  #connectionError(conn: Connection, err: Error & { code?: string }): void {
    // ws reports protocol violations (oversize frame → 1009, bad UTF-8 → 1007) here and closes.
    this.#log.info(
      { conn: conn.id, remote: conn.remoteAddress, code: err.code, msg: err.message },
      'connection error',
    );
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#metrics.errors('PAYLOAD_TOO_LARGE').inc();
  }

  #connectionClosed(ws: GatewaySocket, conn: Connection, code: number): void {
    ws.conn = null;
    if (ws.guarded) {
      ws.guarded = false;
      this.#admission?.closed();
    }
    const remote = conn.remoteAddress;
    conn.markClosed();
    this.#releaseAddress(remote);
    this.#connections.delete(conn);
    this.#metrics.connections.dec();
    this.#connLog.closed(conn.id, remote, code, conn.session?.id ?? null);
    const session = conn.session;
    if (session && session.connection === conn) {
      // 1000 from the client means "I am leaving"; anything else may be a network drop worth a grace window.
      // 1005 is a close frame that carried no status code: what a browser's plain `ws.close()` sends. A close
      // frame is a deliberate goodbye, not a drop (a drop is 1006), so it must not leave a ghost member for
      // the whole grace window.
      // During a cluster drain, 1001 is the client answering our own close: the session is handed
      // over for a resume on another node, not ended.
      const intentional =
        code === CLOSE_CODES.NORMAL.code ||
        (code === CLOSE_CODES.GOING_AWAY.code && !this.#sessions.handingOff) ||
        code === NO_STATUS_RECEIVED;
      background(this.#sessions.disconnected(session, intentional), this.#log, 'session disconnected');
    }
  }

  /**
   * One connection's heartbeat, once per interval (heartbeat-sweep.ts spreads the connections over
   * the interval): ping it if it is live, terminate it if it has been silent too long.
   */
  #heartbeatOf(conn: Connection, now: number): void {
    if (now - conn.lastSeen > this.#config.limits.heartbeatTimeoutMs) {
      this.#log.info({ conn: conn.id, remote: conn.remoteAddress }, 'heartbeat timeout');
      conn.terminate();
    } else if (!conn.closed) {
      conn.ws.ping();
    }
  }

  /**
   * Shutdown: `server:shutdown` to everyone, close 1001, wait for the closes (bounded), and
   * terminate stragglers.
   *
   * @param resume whether the sessions survive (handed over to the cluster): clients then resume
   *   rather than re-join.
   */
  async closeAll(reconnectHintMs: number, waitMs: number, resume: boolean): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const closed = [...this.#connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
          conn.ws.once('close', () => resolve());
          conn.send('server:shutdown', {
            reconnectInMs: reconnectHintMs + Math.floor(Math.random() * reconnectHintMs),
            reason: 'server shutting down',
            resume,
          });
          // A handed-over session stops using this socket now, not when the client has answered
          // the close: anything sent to it meanwhile would go into a closing socket and be lost.
          const session = conn.session;
          if (resume && session && session.connection === conn) {
            background(this.#sessions.disconnected(session, false), this.#log, 'session handed over');
          }
          // Frames the client sent before it sees the close are still relayed (drain: true): a
          // relayed message in flight must not be lost in a rolling restart.
          conn.close(CLOSE_CODES.GOING_AWAY.code, 'server shutting down', { drain: resume });
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closed),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
    for (const conn of this.#connections) conn.terminate();
    this.#wss.close();
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function uncork(socket: Duplex): void {
  socket.uncork();
}

/** Answers a refused upgrade with a plain HTTP response and closes the socket. */
function refuse(socket: Duplex, code: ErrorCode, message?: string): void {
  if (socket.destroyed) return;
  const spec = ERRORS[code];
  const status = 'httpStatus' in spec ? spec.httpStatus : 500;
  const body = JSON.stringify({ error: errorBody(code, message) } satisfies HttpErrorBody);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
