import {
  STATUS_CODES,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, errorBody, type ErrorCode, type HttpErrorBody } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { peerAddress, type ProxyTrust } from './client-address.js';
import { sendError } from './respond.js';

/**
 * Where an accepted socket stands against the caps:
 * - `admitted`: under both caps; served normally;
 * - `over-address-cap`: its address already holds MAX_CONNECTIONS_PER_IP admitted sockets;
 * - `over-global-cap`: the node already holds MAX_CONNECTIONS admitted sockets;
 * - `answered`: over a cap and beyond its address's share of the reserve: refused at accept, the
 *   answer already written (nothing more may be written to it).
 * A socket over a cap may only ask for `/health` (answered, then closed); anything else gets
 * 429 / 503 and is closed, an upgrade included.
 */
export type SocketStanding = 'admitted' | 'over-address-cap' | 'over-global-cap' | 'answered';

/** What the WebSocket gateway needs from the guard (a port, not the class). */
export interface UpgradeAdmission {
  /** The upgrade request's headers are complete: stop the socket's deadline; how it stands. */
  upgrading(socket: Duplex): SocketStanding;
  /**
   * The admitted upgrade became a WebSocket, whose close the gateway hears anyway: true when the
   * guard counts it, and then the gateway calls {@link closed} once it has closed, in place of the
   * guard's own 'close' listener (a socket's second 'close' listener makes an array: 64 B of every
   * idle connection's heap, docs/benchmarks.md, Round 2, fourteenth pass).
   */
  opened(socket: Duplex): boolean;
  /** A WebSocket that {@link opened} answered true for has closed. */
  closed(): void;
}

export interface SocketGuardOptions {
  /** Admitted sockets per node; 0: no cap (MAX_CONNECTIONS). */
  maxConnections: number;
  /**
   * Per remote address, its open HTTP sockets (from accept until they close or upgrade) plus its
   * WebSockets (counted by the gateway, `webSocketsFrom`); 0: no cap (MAX_CONNECTIONS_PER_IP).
   * A socket that has been served stays counted while it is kept alive: an address cannot hold
   * more than its share of MAX_CONNECTIONS by sending a request now and then on each socket.
   */
  maxConnectionsPerIp: number;
  /** The address's WebSocket connections, open or upgrading (the gateway's count). */
  webSocketsFrom: (address: string) => number;
  /**
   * Behind a trusted proxy (TRUST_PROXY) the socket's address is the proxy's, so the per-address
   * cap cannot be counted at accept for it; the gateway still counts upgrades by forwarded address.
   * Sockets from other addresses are counted as usual.
   */
  proxies: ProxyTrust;
  /** A socket must complete a request or an upgrade this long after accept (or after its last response). */
  headersTimeoutMs: number;
  /** Sockets over a cap kept open at most, so that /health answers while the caps are reached. */
  reserve: number;
  /**
   * Of the reserve, sockets one address (other than a trusted proxy) may hold at once: an address
   * at its cap, or one racing others to the node's cap, cannot take the reserve from the load
   * balancer's health checks.
   */
  reservePerAddress: number;
  log: Logger;
  metrics: Metrics;
}

interface SocketState {
  readonly address: string;
  readonly standing: Exclude<SocketStanding, 'answered'>;
  timer: NodeJS.Timeout | null;
  /** An admitted HTTP socket (not upgraded yet): counted against its address until it closes. */
  counted: boolean;
  /** Requests received and not yet answered (pipelining). */
  inFlight: number;
  served: boolean;
}

const REFUSAL: Record<Exclude<SocketStanding, 'admitted' | 'answered'>, ErrorCode> = {
  'over-address-cap': 'TOO_MANY_CONNECTIONS',
  'over-global-cap': 'SERVICE_UNAVAILABLE',
};

const TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * Socket hygiene, from accept (issue 13, High 1). Node's headersTimeout only fires when bytes
 * arrive, so a socket that sends nothing (or half a request line and then nothing) lived forever
 * and, held open by the thousand from one address, used up the process's file descriptors. Here
 * every accepted socket gets a deadline: it is destroyed unless it completes a request or an
 * upgrade in time, and after each response the deadline starts again (an idle keep-alive socket is
 * closed too). Sockets are counted per address and per node from accept; those over a cap are kept
 * (up to `reserve`) only to answer `/health`, so a load balancer still sees the node while it is full.
 * An address takes at most `reservePerAddress` of that reserve, and its served HTTP sockets stay
 * counted while kept alive, so an address at its cap cannot take the others' share (issue 13).
 */
export class SocketGuard implements UpgradeAdmission {
  readonly #opts: SocketGuardOptions;
  readonly #sockets = new Map<Duplex, SocketState>();
  /** Address → admitted HTTP sockets open. */
  readonly #perAddress = new Map<string, number>();
  /** Address → reserve sockets (over a cap) open. */
  readonly #overCapFrom = new Map<string, number>();
  /** Sockets refused at accept with an answer written at once (nothing they send is served). */
  readonly #answered = new WeakSet<Duplex>();
  #answeredOpen = 0;
  #admitted = 0;
  #overCap = 0;

  constructor(opts: SocketGuardOptions) {
    this.#opts = opts;
  }

  /** Sockets open now: admitted ones and those over a cap. */
  get openForTesting(): { admitted: number; overCap: number; records: number } {
    return { admitted: this.#admitted, overCap: this.#overCap, records: this.#sockets.size };
  }

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.#onAccept(socket));
  }

  /** Wraps the HTTP handler: requests on sockets over a cap get `/health` only. */
  wrap(handler: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      // Already answered at accept: the request is read (and dropped) only so the socket closes cleanly.
      if (this.#answered.has(req.socket)) return;
      const state = this.#sockets.get(req.socket);
      if (!state) return handler(req, res);
      this.#clearDeadline(state);
      state.served = true;
      state.inFlight++;
      res.once('close', () => {
        state.inFlight--;
        if (state.inFlight === 0 && !req.socket.destroyed) this.#arm(req.socket, state);
      });
      if (state.standing === 'admitted') return handler(req, res);
      res.shouldKeepAlive = false;
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) return handler(req, res);
      sendError(res, REFUSAL[state.standing]);
    };
  }

  upgrading(socket: Duplex): SocketStanding {
    if (this.#answered.has(socket)) return 'answered';
    const state = this.#sockets.get(socket);
    if (!state) return 'admitted';
    this.#clearDeadline(state);
    state.served = true;
    // From here the gateway counts it (as a WebSocket) or refuses it.
    this.#uncount(state);
    if (state.standing === 'admitted') {
      // It still counts towards MAX_CONNECTIONS until it closes, but keeps no record here: an idle
      // WebSocket costs the guard only its one shared close listener (docs/benchmarks.md, memory
      // per idle connection). Its deadline is cleared and it no longer counts per address.
      this.#sockets.delete(socket);
      socket.off('close', this.#onClose);
      socket.on('close', this.#onUpgradedClose);
    }
    return state.standing;
  }

  opened(socket: Duplex): boolean {
    if (socket.listenerCount('close', this.#onUpgradedClose) === 0) return false;
    socket.off('close', this.#onUpgradedClose);
    return true;
  }

  closed(): void {
    this.#admitted--;
  }

  #onAccept(socket: Socket): void {
    const { maxConnections, maxConnectionsPerIp, proxies, reserve, reservePerAddress } = this.#opts;
    const address = peerAddress(socket);
    const proxied = proxies.isProxy(address);
    const open = this.#perAddress.get(address) ?? 0;
    const standing: SocketStanding =
      !proxied && maxConnectionsPerIp > 0 && open + this.#opts.webSocketsFrom(address) >= maxConnectionsPerIp
        ? 'over-address-cap'
        : maxConnections > 0 && this.#admitted >= maxConnections
          ? 'over-global-cap'
          : 'admitted';
    if (standing !== 'admitted') {
      this.#opts.metrics.errors(REFUSAL[standing]).inc();
      if (this.#overCap >= reserve) {
        // Even the reserve is full: nothing can be answered without giving up the fd bound.
        socket.destroy();
        return;
      }
      const mine = this.#overCapFrom.get(address) ?? 0;
      if (!proxied && mine >= reservePerAddress) {
        // This address holds its share of the reserve: no slot for it, but the refusal is still
        // told (a flood of upgrades from one address keeps getting its 429s), at once.
        this.#answerAtOnce(socket, REFUSAL[standing]);
        return;
      }
      this.#overCap++;
      this.#overCapFrom.set(address, mine + 1);
    } else {
      this.#admitted++;
      this.#perAddress.set(address, open + 1);
    }
    const state: SocketState = {
      address,
      standing,
      timer: null,
      counted: standing === 'admitted',
      inFlight: 0,
      served: false,
    };
    this.#sockets.set(socket, state);
    this.#arm(socket, state);
    socket.on('close', this.#onClose);
  }

  // One listener for every socket (a socket emits 'close' once), so that an open WebSocket's
  // socket holds no closure of its own for the guard.
  readonly #onClose = ((guard: SocketGuard) =>
    function onClose(this: Duplex): void {
      const state = guard.#sockets.get(this);
      if (state) guard.#release(this, state);
    })(this);

  /** An admitted socket that upgraded closed: all `#release` would do for it, without a record. */
  readonly #onUpgradedClose = ((guard: SocketGuard) =>
    function onUpgradedClose(this: Duplex): void {
      guard.#admitted--;
    })(this);

  /**
   * Writes the refusal before the request is even read and half-closes. What the client sends is
   * still read and dropped (closing on unread data would reset the connection and could lose the
   * answer); the socket goes when the client closes it, or after ANSWERED_LINGER_MS. At most
   * `reserve` of them are open at once; beyond that they are destroyed unanswered.
   */
  #answerAtOnce(socket: Socket, code: ErrorCode): void {
    if (this.#answeredOpen >= this.#opts.reserve) return void socket.destroy();
    this.#answeredOpen++;
    this.#answered.add(socket);
    const spec = ERRORS[code];
    const status = 'httpStatus' in spec ? spec.httpStatus : 500;
    const body = JSON.stringify({ error: errorBody(code) } satisfies HttpErrorBody);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const timer = setTimeout(() => socket.destroy(), defaults.socketAnsweredLingerMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.#answeredOpen--;
    });
  }

  #arm(socket: Duplex, state: SocketState): void {
    this.#clearDeadline(state);
    state.timer = setTimeout(() => {
      state.timer = null;
      if (socket.destroyed) return;
      this.#opts.log.debug({ remote: state.address, served: state.served }, 'socket deadline: closed');
      // A socket that never completed a request is told why, as Node's own headersTimeout does;
      // an idle keep-alive socket is simply closed.
      if (state.served || !socket.writable) return void socket.destroy();
      socket.end(TIMEOUT_RESPONSE, () => socket.destroy());
    }, this.#opts.headersTimeoutMs);
    state.timer.unref();
  }

  #clearDeadline(state: SocketState): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }

  /** The socket upgraded (or closed): it no longer counts as an HTTP socket of its address. */
  #uncount(state: SocketState): void {
    if (!state.counted) return;
    state.counted = false;
    decrement(this.#perAddress, state.address);
  }

  #release(socket: Duplex, state: SocketState): void {
    this.#clearDeadline(state);
    this.#sockets.delete(socket);
    this.#uncount(state);
    if (state.standing === 'admitted') {
      this.#admitted--;
    } else {
      this.#overCap--;
      decrement(this.#overCapFrom, state.address);
    }
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 1) - 1;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}

/** Sockets over a cap kept to answer /health: a tenth of MAX_CONNECTIONS, at least `min`. */
export function socketReserve(maxConnections: number, fraction: number, min: number): number {
  if (maxConnections === 0) return Number.MAX_SAFE_INTEGER;
  return Math.max(min, Math.ceil(maxConnections * fraction));
}
