import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { SUBPROTOCOL } from '../protocol/common.js';
import type { ServerMessage, ServerPayload } from '../protocol/index.js';
import { classifyClose } from './close-reason.js';
import { diagnoseFailedOpen } from './connect-diagnosis.js';
import { ParleyError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import type { ReconnectPolicy } from './reconnect-policy.js';
import { RequestTracker } from './request-tracker.js';
import { SessionResume } from './session-resume.js';
import { resolveToken } from './token.js';
import {
  jwtExpiry,
  WS_OPEN,
  type TokenSource,
  type WebSocketFactory,
  type WebSocketLike,
} from './websocket.js';

// Pinned to the protocol's constant at compile time (importing the value would pull Zod into the
// browser bundle).
const PARLEY_SUBPROTOCOL: typeof SUBPROTOCOL = 'parley';

/**
 * - `idle`: created, `connect()` not called yet
 * - `connecting`: first connection under way
 * - `connected`: welcome received (and, after a drop, the session resumed or the rooms rejoined)
 * - `reconnecting`: the connection dropped; retrying per the ReconnectPolicy, sends are queued
 * - `disconnected`: closed by `close()`, refused for good, or the policy gave up
 */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface ReconnectingInfo {
  /** 1 for the first retry of this outage. */
  attempt: number;
  delayMs: number;
  reason: ParleyError;
}

export interface ReconnectedInfo {
  /** True if the old session was resumed (rooms never saw us leave); false if rooms were re-joined. */
  resumed: boolean;
  /** Rooms we are in now. */
  rooms: string[];
  downtimeMs: number;
  /** Resumed, but messages sent to us while away overflowed the server's buffer. */
  missedFrames: boolean;
}

/** The connection's lifecycle events (SignalingClient adds one event per server message). */
export type ConnectionEvents = {
  connectionStateChanged: [state: ConnectionState, previous: ConnectionState];
  /** First successful connection. */
  connected: [welcome: ServerPayload<'welcome'>];
  reconnecting: [info: ReconnectingInfo];
  reconnected: [info: ReconnectedInfo];
  /** A room could not be re-joined after a failed resume (e.g. it was removed, or is full). */
  roomLost: [roomId: string, error: ParleyError];
  /** Terminal: emitted exactly once, by `close()` (code CLOSED) or when reconnecting gave up. */
  disconnected: [reason: ParleyError];
};

/** Where the connection reports to (the SignalingClient, which owns the listeners). */
export interface ConnectionHost {
  emit<K extends keyof ConnectionEvents>(event: K, ...args: ConnectionEvents[K]): void;
  /** A server message that answers no request. */
  deliver(msg: ServerMessage): void;
}

/**
 * How the token reaches the server:
 * - `in-band` (default): the upgrade carries none; the first message is `auth:request {token}`, so
 *   a refused token arrives as close 4401 (`UNAUTHORIZED`), which a browser can see (it cannot
 *   see an HTTP 401), and tells it apart from an unreachable server or a wrong path;
 * - `subprotocol`: the token is offered as a WebSocket subprotocol next to `parley` (servers with
 *   IN_BAND_AUTH=false); a refused token then looks like any failed open in a browser.
 */
export type AuthMode = 'in-band' | 'subprotocol';

export interface ConnectionSettings {
  url: string;
  /** The HTTP base of the same server (for diagnosing a connection that never opened). */
  httpBase: string;
  token: TokenSource;
  auth: AuthMode;
  policy: ReconnectPolicy;
  factory: WebSocketFactory;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  pingIntervalMs: number | undefined;
  pingTimeoutMs: number;
}

interface Outage {
  readonly since: number;
  attempt: number;
}

/**
 * The socket state machine behind SignalingClient: opens the WebSocket, waits for `welcome`,
 * reconnects per the ReconnectPolicy after a drop, has the session restored (SessionResume), and
 * sends what was queued meanwhile (RequestTracker). One socket at a time: every handler first
 * checks that its socket is still the current one.
 */
export class SignalingConnection {
  readonly requests: RequestTracker;
  readonly session: SessionResume;
  readonly heartbeat: Heartbeat;
  readonly #host: ConnectionHost;
  readonly #s: ConnectionSettings;

  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | null = null;
  /** Welcome of the current socket; null until it arrives. */
  #socketWelcome: ServerPayload<'welcome'> | null = null;
  #welcome: ServerPayload<'welcome'> | null = null;
  #serverHintMs: number | undefined;
  #outage: Outage | null = null;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  #connectWaiters: { resolve: (w: ServerPayload<'welcome'>) => void; reject: (e: ParleyError) => void }[] =
    [];
  readonly #onOnline = () => this.#retryNow();

  constructor(host: ConnectionHost, settings: ConnectionSettings) {
    this.#host = host;
    this.#s = settings;
    const requests = new RequestTracker(settings.requestTimeoutMs);
    const isCurrent = (ws: WebSocketLike) => ws === this.#ws;
    this.requests = requests;
    this.session = new SessionResume(
      {
        requestOn: (ws, type, payload) => requests.requestOn(ws, type, payload),
        isCurrent,
        abandon: (ws, reason) => this.#abandon(ws, reason),
        deliver: (msg) => host.deliver(msg),
        roomLost: (roomId, error) => host.emit('roomLost', roomId, error),
      },
      settings.requestTimeoutMs,
    );
    this.heartbeat = new Heartbeat(
      {
        ping: (ws, timeoutMs) => requests.requestOn(ws, 'ping', {}, timeoutMs),
        isCurrent,
        timedOut: (ws) =>
          this.#abandon(ws, new ParleyError('DISCONNECTED', 'no pong from the server (heartbeat timeout)')),
      },
      settings.pingIntervalMs,
      settings.pingTimeoutMs,
    );
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get welcome(): ServerPayload<'welcome'> | null {
    return this.#welcome;
  }

  get closed(): boolean {
    return this.#closed;
  }

  connect(): Promise<ServerPayload<'welcome'>> {
    if (this.#closed) return Promise.reject(new ParleyError('CLOSED'));
    if (this.#state === 'connected' && this.#welcome) return Promise.resolve(this.#welcome);
    const waiter = new Promise<ServerPayload<'welcome'>>((resolve, reject) => {
      this.#connectWaiters.push({ resolve, reject });
    });
    if (this.#state === 'idle') {
      this.#setState('connecting');
      void this.#openSocket();
    } else if (this.#state === 'disconnected') {
      this.reconnect();
    }
    return waiter;
  }

  reconnect(): void {
    if (this.#closed) return;
    if (this.#state === 'reconnecting') return this.#retryNow();
    if (this.#state !== 'disconnected') return;
    this.#outage = { since: Date.now(), attempt: 0 };
    this.#setState('reconnecting');
    void this.#openSocket();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const ws = this.#ws;
    this.#ws = null;
    this.#clearTimers();
    this.#unwatchNetwork();
    if (ws) {
      detach(ws);
      try {
        ws.close(CLOSE_CODES.NORMAL.code, 'client closed');
      } catch {
        // already closing
      }
    }
    this.#terminate(new ParleyError('CLOSED'));
  }

  dropConnectionForTesting(): void {
    const ws = this.#ws;
    if (!ws) return;
    this.#abandon(ws, new ParleyError('DISCONNECTED', 'connection dropped (simulated)'));
  }

  /** Why nothing can be sent now, or null. */
  refusal(): ParleyError | null {
    if (this.#closed) return new ParleyError('CLOSED');
    if (this.#state === 'idle') return new ParleyError('DISCONNECTED', 'call connect() first');
    if (this.#state === 'disconnected') return new ParleyError('DISCONNECTED');
    return null;
  }

  /** Sends now if connected, else queues until the session is back. */
  sendOrQueue(frame: string, cid: string | undefined): void {
    const ws = this.#ws;
    if (this.#state === 'connected' && ws && ws.readyState === WS_OPEN) this.requests.send(ws, frame, cid);
    else this.requests.queue(frame, cid);
  }

  // ---- sockets -------------------------------------------------------------------------------------------

  async #openSocket(): Promise<void> {
    this.#retryTimer = null;
    let token: string;
    try {
      token = await resolveToken(this.#s.token);
    } catch (err) {
      const reason = ParleyError.from(err, 'UNAUTHORIZED');
      // A token of the wrong shape will not get better by retrying.
      if (reason.code === 'INVALID_TOKEN') return this.#terminate(reason);
      return this.#attemptFailed(reason);
    }
    if (this.#closed || this.#ws) return;
    const exp = jwtExpiry(token);
    if (exp !== null && exp * 1000 <= Date.now()) {
      return this.#terminate(new ParleyError('UNAUTHORIZED', 'the token has expired; get a new one'));
    }
    let ws: WebSocketLike;
    try {
      const inBand = this.#s.auth === 'in-band';
      ws = this.#s.factory(this.#s.url, inBand ? [PARLEY_SUBPROTOCOL] : [PARLEY_SUBPROTOCOL, token]);
    } catch (err) {
      return this.#attemptFailed(ParleyError.from(err, 'CONNECTION_FAILED'));
    }
    this.#ws = ws;
    this.#socketWelcome = null;
    let opened = false;
    let errorText: string | undefined;
    ws.onopen = () => {
      opened = true;
      // A refusal comes as error UNAUTHORIZED and close 4401: the close is what ends the attempt.
      if (this.#s.auth === 'in-band')
        this.requests.requestOn(ws, 'auth:request', { token }).catch(() => undefined);
    };
    ws.onerror = (event) => {
      const message = (event as { message?: unknown }).message;
      if (typeof message === 'string') errorText = message;
    };
    ws.onmessage = (event) => this.#onFrame(ws, event.data);
    ws.onclose = (event) => {
      if (ws !== this.#ws) return;
      if (opened || this.#state !== 'connecting') {
        return this.#socketClosed(ws, classifyClose(event.code, event.reason, opened, errorText));
      }
      // The first connection never opened: find out why before saying so (see connect-diagnosis.ts).
      void diagnoseFailedOpen({
        wsUrl: this.#s.url,
        httpBase: this.#s.httpBase,
        tokenOnUpgrade: this.#s.auth === 'subprotocol',
        errorText,
        probeTimeoutMs: this.#s.connectTimeoutMs,
      }).then((diagnosed) => this.#socketClosed(ws, diagnosed));
    };
    this.#handshakeTimer = setTimeout(() => {
      if (ws === this.#ws && !this.#socketWelcome) {
        this.#abandon(ws, new ParleyError('TIMEOUT', 'no welcome from the server in time'));
      }
    }, this.#s.connectTimeoutMs);
  }

  /** Stops using a socket that is dead or hung, without waiting for its close event. */
  #abandon(ws: WebSocketLike, reason: ParleyError): void {
    if (ws !== this.#ws) return;
    detach(ws);
    try {
      // 4000: not 1000/1001, so the server keeps the session for a resume if it still sees us.
      ws.close(4000, 'client abandoned connection');
    } catch {
      // not open yet, or already closing
    }
    this.#socketClosed(ws, reason);
  }

  #socketClosed(ws: WebSocketLike, reason: ParleyError): void {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#clearTimers();
    this.requests.failSent();
    if (this.#closed) return;
    // QUOTA_EXCEEDED: every session of the user is live; reconnecting would be refused again.
    const fatal =
      reason.code === 'UNAUTHORIZED' ||
      reason.code === 'SESSION_REPLACED' ||
      reason.code === 'REMOVED' ||
      reason.code === 'QUOTA_EXCEEDED';
    if (fatal || this.#state === 'connecting') return this.#terminate(reason);
    this.#scheduleReconnect(reason);
  }

  #attemptFailed(reason: ParleyError): void {
    if (this.#closed) return;
    if (this.#state === 'connecting') return this.#terminate(reason);
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason: ParleyError): void {
    if (this.#outage) this.#outage.attempt++;
    else this.#outage = { since: Date.now(), attempt: 0 };
    const outage = this.#outage;
    const hint = this.#serverHintMs;
    this.#serverHintMs = undefined;
    const delay = this.#s.policy.nextRetryDelayInMs({
      attempt: outage.attempt,
      elapsedMs: Date.now() - outage.since,
      reason,
      ...(hint !== undefined ? { serverHintMs: hint } : {}),
    });
    if (delay === null) return this.#terminate(reason);
    this.#setState('reconnecting');
    this.#watchNetwork();
    this.#host.emit('reconnecting', { attempt: outage.attempt + 1, delayMs: delay, reason });
    this.#retryTimer = setTimeout(() => void this.#openSocket(), Math.max(0, delay));
  }

  #retryNow(): void {
    if (this.#state !== 'reconnecting' || !this.#retryTimer || this.#ws) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    void this.#openSocket();
  }

  #onWelcome(ws: WebSocketLike, welcome: ServerPayload<'welcome'>): void {
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.#socketWelcome = welcome;
    if (this.#state === 'connecting') {
      this.#welcome = welcome;
      this.session.begin(welcome);
      this.#becomeConnected(ws);
      this.#host.emit('connected', welcome);
      for (const w of this.#connectWaiters.splice(0)) w.resolve(welcome);
      return;
    }
    void this.#restoreSession(ws, welcome);
  }

  async #restoreSession(ws: WebSocketLike, welcome: ServerPayload<'welcome'>): Promise<void> {
    const since = this.#outage?.since ?? Date.now();
    const downtimeMs = Date.now() - since;
    const restored = await this.session.restore(ws, welcome, this.#welcome, downtimeMs);
    if (!restored || ws !== this.#ws || this.#closed) return;
    this.#welcome = { ...welcome, sessionId: this.session.sessionId ?? welcome.sessionId };
    this.session.restored();
    this.#becomeConnected(ws);
    const { resumed, missedFrames } = restored;
    this.#host.emit('reconnected', { resumed, rooms: this.session.rooms, downtimeMs, missedFrames });
    for (const w of this.#connectWaiters.splice(0)) w.resolve(this.#welcome);
  }

  #becomeConnected(ws: WebSocketLike): void {
    this.#outage = null;
    this.#unwatchNetwork();
    this.#setState('connected');
    this.requests.flush(ws);
    this.heartbeat.start(ws, this.#socketWelcome?.heartbeatIntervalMs);
  }

  #terminate(reason: ParleyError): void {
    this.#clearTimers();
    this.#unwatchNetwork();
    this.requests.failAll(reason);
    if (this.#state === 'disconnected') return;
    this.#setState('disconnected');
    for (const w of this.#connectWaiters.splice(0)) w.reject(reason);
    this.#host.emit('disconnected', reason);
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#host.emit('connectionStateChanged', state, previous);
  }

  #clearTimers(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#retryTimer = this.#handshakeTimer = null;
    this.heartbeat.stop();
  }

  #watchNetwork(): void {
    (globalThis as { addEventListener?: EventTarget['addEventListener'] }).addEventListener?.(
      'online',
      this.#onOnline,
    );
  }

  #unwatchNetwork(): void {
    (globalThis as { removeEventListener?: EventTarget['removeEventListener'] }).removeEventListener?.(
      'online',
      this.#onOnline,
    );
  }

  // ---- frames --------------------------------------------------------------------------------------------

  #onFrame(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.#ws) return;
    let msg: ServerMessage;
    try {
      const text = typeof data === 'string' ? data : new TextDecoder().decode(data as ArrayBuffer);
      msg = JSON.parse(text) as ServerMessage;
    } catch {
      return; // not JSON: nothing a client can act on
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') return;
    if (msg.type === 'welcome') return this.#onWelcome(ws, msg.payload);
    if (this.requests.settle(msg)) return;
    if (msg.type === 'room:state' && this.session.onRoomState(msg)) return;
    // The server API ended the room: we are out of it, and a reconnect must not join it again.
    if (msg.type === 'room:ended') this.session.forget(msg.payload.roomId);
    if (msg.type === 'server:shutdown') {
      // A cluster hands the session over to another node (resume: true); a lone server ends it.
      if (msg.payload.resume !== true) this.session.forbidResume();
      this.#serverHintMs = msg.payload.reconnectInMs;
    }
    this.#host.deliver(msg);
  }
}

function detach(ws: WebSocketLike): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // A socket we abandon may still report an error (e.g. closed while connecting); Node's `ws`
  // throws an error event nobody listens to, so keep a listener that ignores it.
  ws.onerror = () => undefined;
}
