import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  closeCodeOf,
  CLOSE_REASONS,
  errorBody,
  type ClosingErrorCode,
  type ErrorCode,
  type ErrorDetails,
  type ServerMessageType,
  type ServerPayload,
} from '../../protocol/index.js';
import type { Identity } from '../auth/claims.js';
import type { TokenExpiry } from '../auth/token-expiry.js';
import type { LimitsConfig } from '../config/env.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { LiveSession } from '../sessions/live-session.js';
import type { SessionLink } from '../sessions/session-link.js';
import type { RateLimits } from './rate-limits.js';
import { encode, type Correlation, type Frame } from '../wire/frame.js';
import { wireBytes, writePrebuilt } from './prebuilt-frame.js';
import { holdDuringBurst } from './write-burst.js';
import type { Dialect, ErrorSubject } from './dialect.js';

/** What every connection of a gateway uses: one object shared by all of them, not four fields each. */
export interface ConnectionDeps {
  readonly limits: LimitsConfig;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The message rate limit, per user (or per address before authentication), across connections. */
  readonly rateLimits: RateLimits;
}

/**
 * One WebSocket: framing out, rate limiting in, backpressure, ordered processing. It knows nothing
 * about rooms or calls; the dispatcher does. A connection belongs to at most one session.
 */
export class Connection implements SessionLink<LiveSession> {
  readonly id = randomUUID();
  readonly ws: WebSocket;
  readonly remoteAddress: string;
  identity: Identity | null;
  session: LiveSession | null = null;
  /** The earlier system's wire this connection chose at the upgrade (docs/migration.md); null: Parley's. */
  readonly dialect: Dialect | null;
  /** Last time anything (message or pong) arrived; read by the heartbeat sweep. */
  lastSeen = performance.now();
  /** The timers of the token this connection authenticated with (the dispatcher arms them). */
  expiry: TokenExpiry<Connection> | null = null;

  /** Shared by the gateway's connections. */
  readonly #deps: ConnectionDeps;
  /** Messages refused in a row by the rate limiter; reaching the burst size closes with 1008. */
  #refusedInRow = 0;
  /** Tail of the in-order processing chain while an async handler runs; null when idle. */
  #busy: Promise<void> | null = null;
  #closed = false;
  #draining = false;
  /** Frames waiting to be written behind a replay (see `replay`); null when writing directly. */
  #replay: Frame[] | null = null;
  #replayBytes = 0;

  constructor(
    ws: WebSocket,
    remoteAddress: string,
    identity: Identity | null,
    deps: ConnectionDeps,
    dialect: Dialect | null = null,
  ) {
    this.ws = ws;
    this.dialect = dialect;
    this.remoteAddress = remoteAddress;
    this.identity = identity;
    this.#deps = deps;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * True while the server closes this connection for a drain: what the client sent before it saw
   * the close is still relayed (its session lives on elsewhere), but requests are not served.
   */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Rate limit check for one inbound message, received at `now` (the clock's monotonic ms, read by
   * the limiter when not given). Returns false when the message must be dropped.
   */
  admit(now?: number): boolean {
    // A connection the server is closing gets nothing more processed (hardening: a flooder's
    // backlog), except during a drain (see `draining`).
    if (this.#closed && !this.#draining) return false;
    if (this.#deps.rateLimits.take(this.identity?.userId ?? null, this.remoteAddress, now)) {
      this.#refusedInRow = 0;
      return true;
    }
    this.#refusedInRow++;
    if (this.#refusedInRow === 1) {
      this.sendError('RATE_LIMITED', undefined, 'rate limit exceeded; further messages are dropped');
    } else if (this.#refusedInRow >= this.#deps.limits.rateLimitBurst) {
      this.#deps.log.warn({ conn: this.id, remote: this.remoteAddress }, 'closing flooding connection');
      this.closeFor('RATE_LIMITED', 'rate limit', { stopReading: true });
    }
    return false;
  }

  /**
   * Runs `task` after every earlier message of this connection has been handled, so a client's
   * messages take effect in the order sent. Synchronous tasks on an idle connection run at once.
   */
  process(task: () => void | Promise<void>): void {
    if (this.#busy === null) {
      const result = task();
      if (result instanceof Promise) this.#track(result);
      return;
    }
    this.#track(this.#busy.then(task));
  }

  #track(p: Promise<void>): void {
    const tail: Promise<void> = p.then(
      () => {
        if (this.#busy === tail) this.#busy = null;
      },
      (err: unknown) => {
        // Handlers catch their own errors; reaching this is a bug worth a loud log.
        this.#deps.log.error({ err, conn: this.id }, 'unhandled error in message processing');
        if (this.#busy === tail) this.#busy = null;
      },
    );
    this.#busy = tail;
  }

  /** A string correlation is a `correlationId`; a {@link Correlation} is echoed under its own key. */
  send<T extends ServerMessageType>(
    type: T,
    payload: ServerPayload<T>,
    correlation?: Correlation | string,
  ): void {
    this.sendFrame({ type, data: Buffer.from(encode(type, payload, correlation)) });
  }

  /**
   * `about`: the message the error answers, when known; a dialect may answer with its own error
   * frame instead (calls-v0: `call-error` for a refused `call-*` message).
   */
  sendError(
    code: ErrorCode,
    correlation?: Correlation | string,
    message?: string,
    details?: ErrorDetails,
    about?: ErrorSubject,
  ): void {
    this.#deps.metrics.errors(code).inc();
    const body = errorBody(code, message, details);
    const own =
      this.dialect && about
        ? this.dialect.error(body, about, typeof correlation === 'string' ? undefined : correlation)
        : null;
    if (own) this.sendFrame(own);
    else this.send('error', body, correlation);
  }

  /**
   * Writes a pre-encoded frame. Closes the client with 4008 if it is not reading (backpressure).
   * While a replay is being written, the frame waits behind it.
   */
  sendFrame(f: Frame): void {
    if (this.#closed) return;
    if (this.#replay) {
      this.#replay.push(f);
      this.#replayBytes += f.data.length;
      if (this.#replayBytes + this.ws.bufferedAmount > this.#deps.limits.maxBufferedBytes) this.#dropSlow();
      return;
    }
    this.#write(f);
  }

  /**
   * Writes a resumed session's buffered frames with backpressure (issue 13, High 3: replayed all at
   * once, they dropped the receiver again for unread output): a frame at a time while the socket's
   * unsent data stays under half of MAX_BUFFERED_BYTES, the rest once it has been written out.
   * Frames sent meanwhile queue behind the replay, so order is kept; a client that stops reading
   * altogether is still dropped at MAX_BUFFERED_BYTES, counting the queue.
   */
  replay(frames: readonly Frame[]): void {
    if (frames.length === 0 || this.#closed) return;
    this.#replay = [...(this.#replay ?? []), ...frames];
    for (const f of frames) this.#replayBytes += f.data.length;
    this.#pump();
  }

  /** Frames still waiting behind a replay (tests). */
  get replayQueuedForTesting(): number {
    return this.#replay?.length ?? 0;
  }

  #pump(): void {
    const queue = this.#replay;
    if (!queue) return;
    const low = this.#deps.limits.maxBufferedBytes / 2;
    while (queue.length > 0 && !this.#closed) {
      const f = queue.shift() as Frame;
      this.#replayBytes -= f.data.length;
      if (queue.length > 0 && this.ws.bufferedAmount + f.data.length > low) {
        // Enough in flight: go on once this one has been handed to the socket.
        this.#write(f, () => this.#pump());
        return;
      }
      this.#write(f);
    }
    this.#replay = null;
    this.#replayBytes = 0;
  }

  #write(f: Frame, written?: () => void): void {
    if (this.#closed) return;
    holdDuringBurst(this.ws);
    // Parley's own wire: the frame's bytes are framed once and shared by every recipient (a
    // broadcast writes the same buffer to each member's socket). A dialect rewrites per connection;
    // a replay (`written`) needs ws's callback.
    if (this.dialect !== null) this.ws.send(this.dialect.outbound(f).data, { binary: false }, written);
    else if (written !== undefined || !writePrebuilt(this.ws, wireBytes(f)))
      this.ws.send(f.data, { binary: false }, written);
    this.#deps.metrics.messagesOut(f.type).inc();
    if (this.ws.bufferedAmount > this.#deps.limits.maxBufferedBytes) this.#dropSlow();
  }

  #dropSlow(): void {
    this.#deps.log.warn(
      { conn: this.id, remote: this.remoteAddress, buffered: this.ws.bufferedAmount + this.#replayBytes },
      'dropping slow consumer',
    );
    // Nothing more is written, and the close frame queues behind what is buffered, so a client
    // that reads again sees 4008 (terminating at once showed it 1006). A client that never reads
    // cannot answer it: it is cut off after a short wait, holding at most this buffer meanwhile.
    this.#replay = null;
    this.#replayBytes = 0;
    this.close(CLOSE_REASONS.BACKPRESSURE.code, 'backpressure', {
      timeoutMs: this.#deps.limits.backpressureCloseTimeoutMs,
    });
  }

  /**
   * Starts the close handshake. `stopReading` (flood closes): stop reading the socket at once.
   * Hardening fix (test/hardening/abuse.test.ts): a flooder's socket buffers hold thousands of
   * frames, and ws would read and parse every one of them while it waits for the peer's close
   * frame; under a sequence of flooders that kept calm clients' p99 latency at 15x its baseline.
   * A paused peer cannot complete the handshake, so it is cut off after floodCloseTimeoutMs.
   * `timeoutMs` overrides how long the peer has to answer (default closeTimeoutMs).
   */
  close(
    code: number,
    reason: string,
    opts: { stopReading?: boolean; timeoutMs?: number; drain?: boolean } = {},
  ): void {
    if (this.#closed) return;
    this.#closed = true;
    this.expiry?.cancel();
    this.#draining = opts.drain === true && !opts.stopReading;
    this.ws.close(code, reason);
    if (opts.stopReading) this.ws.pause();
    // A peer that never answers the close handshake must not hold the socket open.
    const timeoutMs =
      opts.timeoutMs ??
      (opts.stopReading ? this.#deps.limits.floodCloseTimeoutMs : this.#deps.limits.closeTimeoutMs);
    const timer = setTimeout(() => this.ws.terminate(), timeoutMs);
    timer.unref();
  }

  /** Ends the connection for an error, with the close status the catalogue gives that error. */
  closeFor(
    code: ClosingErrorCode,
    reason: string,
    opts: { stopReading?: boolean; timeoutMs?: number } = {},
  ): void {
    this.close(closeCodeOf(code), reason, opts);
  }

  terminate(): void {
    this.#closed = true;
    this.expiry?.cancel();
    this.#draining = false;
    this.ws.terminate();
  }

  /** Called by the gateway once the socket has closed. */
  markClosed(): void {
    this.#closed = true;
    this.expiry?.cancel();
    this.#draining = false;
  }
}
