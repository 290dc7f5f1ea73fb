import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { sendError } from './respond.js';

/**
 * Where an accepted socket stands against the caps:
 * - `admitted`: under both caps; served normally;
 * - `over-address-cap`: its address already holds MAX_CONNECTIONS_PER_IP admitted sockets;
 * - `over-global-cap`: the node already holds MAX_CONNECTIONS admitted sockets.
 * A socket over a cap may only ask for `/health` (answered, then closed); anything else gets
 * 429 / 503 and is closed, an upgrade included.
 */
export type SocketStanding = 'admitted' | 'over-address-cap' | 'over-global-cap';

/** The one thing the WebSocket gateway needs from the guard (a port, not the class). */
export interface UpgradeAdmission {
  /** The upgrade request's headers are complete: stop the socket's deadline; how it stands. */
  upgrading(socket: Duplex): SocketStanding;
}

export interface SocketGuardOptions {
  /** Admitted sockets per node; 0: no cap (MAX_CONNECTIONS). */
  maxConnections: number;
  /**
   * Per remote address, sockets still to complete their first request or upgrade plus the
   * address's WebSockets (counted by the gateway, `webSocketsFrom`); 0: no cap (MAX_CONNECTIONS_PER_IP).
   * A socket that has been served plain HTTP is no longer counted here: the deadline closes it
   * when idle, and MAX_CONNECTIONS bounds it.
   */
  maxConnectionsPerIp: number;
  /** The address's WebSocket connections, open or upgrading (the gateway's count). */
  webSocketsFrom: (address: string) => number;
  /**
   * Behind a trusted proxy every socket comes from the proxy, so the per-address cap cannot be
   * counted at accept; the gateway still counts upgrades by forwarded address (TRUST_PROXY).
   */
  trustProxy: boolean;
  /** A socket must complete a request or an upgrade this long after accept (or after its last response). */
  headersTimeoutMs: number;
  /** Sockets over a cap kept open at most, so that /health answers while the caps are reached. */
  reserve: number;
  log: Logger;
  metrics: Metrics;
}

interface SocketState {
  readonly address: string;
  readonly standing: SocketStanding;
  timer: NodeJS.Timeout | null;
  /** Accepted, not yet through its first request or upgrade: counted against its address. */
  pending: boolean;
  /** Requests received and not yet answered (pipelining). */
  inFlight: number;
  served: boolean;
}

const REFUSAL: Record<Exclude<SocketStanding, 'admitted'>, ErrorCode> = {
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
 */
export class SocketGuard implements UpgradeAdmission {
  readonly #opts: SocketGuardOptions;
  readonly #sockets = new Map<Duplex, SocketState>();
  readonly #perAddress = new Map<string, number>();
  #admitted = 0;
  #overCap = 0;

  constructor(opts: SocketGuardOptions) {
    this.#opts = opts;
  }

  /** Sockets open now: admitted ones and those over a cap. */
  get openForTesting(): { admitted: number; overCap: number } {
    return { admitted: this.#admitted, overCap: this.#overCap };
  }

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.#onAccept(socket));
  }

  /** Wraps the HTTP handler: requests on sockets over a cap get `/health` only. */
  wrap(handler: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      const state = this.#sockets.get(req.socket);
      if (!state) return handler(req, res);
      this.#clearDeadline(state);
      this.#settle(state);
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
    const state = this.#sockets.get(socket);
    if (!state) return 'admitted';
    this.#clearDeadline(state);
    // From here the gateway counts it (as a WebSocket) or refuses it.
    this.#settle(state);
    return state.standing;
  }

  #onAccept(socket: Socket): void {
    const { maxConnections, maxConnectionsPerIp, trustProxy, reserve } = this.#opts;
    const address = socket.remoteAddress ?? 'unknown';
    const pending = this.#perAddress.get(address) ?? 0;
    const standing: SocketStanding =
      !trustProxy &&
      maxConnectionsPerIp > 0 &&
      pending + this.#opts.webSocketsFrom(address) >= maxConnectionsPerIp
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
      this.#overCap++;
    } else {
      this.#admitted++;
      this.#perAddress.set(address, pending + 1);
    }
    const state: SocketState = {
      address,
      standing,
      timer: null,
      pending: standing === 'admitted',
      inFlight: 0,
      served: false,
    };
    this.#sockets.set(socket, state);
    this.#arm(socket, state);
    socket.once('close', () => this.#release(socket, state));
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

  /** The socket completed a request or an upgrade: it no longer counts as pending for its address. */
  #settle(state: SocketState): void {
    state.served = true;
    if (!state.pending) return;
    state.pending = false;
    const n = (this.#perAddress.get(state.address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(state.address);
    else this.#perAddress.set(state.address, n);
  }

  #release(socket: Duplex, state: SocketState): void {
    this.#clearDeadline(state);
    this.#sockets.delete(socket);
    this.#settle(state);
    if (state.standing === 'admitted') this.#admitted--;
    else this.#overCap--;
  }
}

/** Sockets over a cap kept to answer /health: a tenth of MAX_CONNECTIONS, at least `min`. */
export function socketReserve(maxConnections: number, fraction: number, min: number): number {
  if (maxConnections === 0) return Number.MAX_SAFE_INTEGER;
  return Math.max(min, Math.ceil(maxConnections * fraction));
}
