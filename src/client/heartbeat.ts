import type { ReplyTo } from '../protocol/registry.js';
import { clientDefaults } from './defaults.js';
import { ParleyError } from './errors.js';
import type { WebSocketLike } from './websocket.js';

/** What the heartbeat needs from the connection. */
export interface HeartbeatPort {
  /** Sends `ping` on `ws` (bypassing the send queue) and resolves with the pong. */
  ping(ws: WebSocketLike, timeoutMs: number): Promise<ReplyTo<'ping'>>;
  isCurrent(ws: WebSocketLike): boolean;
  /** No pong in time: the socket is dead or hung. */
  timedOut(ws: WebSocketLike): void;
}

/**
 * The application ping: detects a hung connection sooner than TCP does, and measures the round
 * trip and the server's clock offset from each pong.
 */
export class Heartbeat {
  readonly #port: HeartbeatPort;
  readonly #intervalMs: number | undefined;
  readonly #timeoutMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #inFlight = false;
  #rttMs: number | null = null;
  #clockOffsetMs = 0;

  /**
   * @param intervalMs ping period; default half the server's heartbeat interval, 5–25 s
   * @param timeoutMs how long a pong may take before the socket is given up
   */
  constructor(port: HeartbeatPort, intervalMs: number | undefined, timeoutMs: number) {
    this.#port = port;
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
  }

  /** Round-trip time of the last ping. */
  get rttMs(): number | null {
    return this.#rttMs;
  }

  /** Server clock minus ours, estimated from the last pong. */
  get clockOffsetMs(): number {
    return this.#clockOffsetMs;
  }

  /** Pings `ws` now and then periodically. */
  start(ws: WebSocketLike, serverIntervalMs = 30_000): void {
    if (this.#timer) clearInterval(this.#timer);
    const every =
      this.#intervalMs ??
      Math.min(
        clientDefaults.maxPingIntervalMs,
        Math.max(clientDefaults.minPingIntervalMs, serverIntervalMs / 2),
      );
    this.ping(ws);
    this.#timer = setInterval(() => this.ping(ws), every);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#inFlight = false;
  }

  /** One ping, unless one is still unanswered. */
  ping(ws: WebSocketLike): void {
    if (this.#inFlight || !this.#port.isCurrent(ws)) return;
    this.#inFlight = true;
    const sentAt = Date.now();
    this.#port.ping(ws, this.#timeoutMs).then(
      (pong) => {
        this.#inFlight = false;
        const now = Date.now();
        this.#rttMs = now - sentAt;
        this.#clockOffsetMs = pong.payload.serverTime - (sentAt + now) / 2;
      },
      (err: unknown) => {
        this.#inFlight = false;
        if (err instanceof ParleyError && err.code === 'TIMEOUT' && this.#port.isCurrent(ws)) {
          this.#port.timedOut(ws);
        }
      },
    );
  }
}
