import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { PROTOCOL_VERSION, SUBPROTOCOL } from '../protocol/common.js';
import type {
  ClientMessageType,
  ClientPayload,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
  ServerPayload,
} from '../protocol/index.js';
import { clientDefaults } from './defaults.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { DefaultReconnectPolicy, type ReconnectPolicy } from './reconnect-policy.js';
import {
  defaultWebSocketFactory,
  jwtExpiry,
  toWebSocketUrl,
  WS_OPEN,
  type TokenSource,
  type WebSocketFactory,
  type WebSocketLike,
} from './websocket.js';

// Pinned to the protocol's constants at compile time (importing the values would pull Zod into the
// browser bundle).
const PARLEY_SUBPROTOCOL: typeof SUBPROTOCOL = 'parley';
/** The wire protocol version this SDK speaks (compared with `welcome.protocolVersion`). */
export const CLIENT_PROTOCOL_VERSION: typeof PROTOCOL_VERSION = 1;

/** The reply (or replies) each request type gets on success. Errors come as `error`. */
export interface ReplyTypes {
  'auth:request': 'auth:response';
  'session:resume': 'session:resumed';
  ping: 'pong';
  'room:join': 'room:state';
  'room:leave': 'room:left';
  'media:capabilities': 'media:capabilities';
  'transport:create': 'transport:created';
  'transport:connect': 'transport:connected';
  'transport:restart-ice': 'transport:ice-restarted';
  produce: 'produced';
  consume: 'consumed';
  'consumer:resume': 'consumer:resumed';
  'producer:close': 'producer:closed';
  'ptt:start': 'ptt:granted' | 'ptt:denied' | 'ptt:queued';
  'ptt:stop': 'ptt:stopped';
}
/** Client messages that get a reply. */
export type RequestType = keyof ReplyTypes & ClientMessageType;
/** Client messages that are relayed to a peer and get no reply on success (calls, in-room relay). */
export type RelayType = Exclude<ClientMessageType, RequestType>;
export type ReplyTo<T extends RequestType> = ServerMessageOf<ReplyTypes[T] & ServerMessageType>;

// The runtime twin of ReplyTypes; the mapped type makes the compiler keep both in step.
const REPLIES: { readonly [K in RequestType]: readonly ReplyTypes[K][] } = {
  'auth:request': ['auth:response'],
  'session:resume': ['session:resumed'],
  ping: ['pong'],
  'room:join': ['room:state'],
  'room:leave': ['room:left'],
  'media:capabilities': ['media:capabilities'],
  'transport:create': ['transport:created'],
  'transport:connect': ['transport:connected'],
  'transport:restart-ice': ['transport:ice-restarted'],
  produce: ['produced'],
  consume: ['consumed'],
  'consumer:resume': ['consumer:resumed'],
  'producer:close': ['producer:closed'],
  'ptt:start': ['ptt:granted', 'ptt:denied', 'ptt:queued'],
  'ptt:stop': ['ptt:stopped'],
};

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

/** Every server message as an event `(payload, message)`, plus the connection's lifecycle. */
export type SignalingEvents = {
  [K in ServerMessageType]: [payload: ServerPayload<K>, message: ServerMessageOf<K>];
} & {
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

export interface SignalingClientOptions {
  /** `ws(s)://host/ws`, or the server's `http(s)://` base (then `/ws` is appended). */
  url: string;
  /** The JWT, or a function returning a fresh one; called again on every reconnect. */
  token: TokenSource;
  /** When and whether to reconnect after a drop. Default {@link DefaultReconnectPolicy}. */
  reconnectPolicy?: ReconnectPolicy;
  /** Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Socket open + `welcome`. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Application ping period. Default: half the server's heartbeat interval, 5–25 s. */
  pingIntervalMs?: number;
  /** Default 10 000 ms. */
  pingTimeoutMs?: number;
  /** Default 256. */
  maxQueuedMessages?: number;
  /** Default: the global `WebSocket` (browsers, Deno, Node ≥ 22). In Node 20 pass one built on `ws`. */
  webSocketFactory?: WebSocketFactory;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SendOptions {
  /** Called if the server refuses the message (e.g. RECIPIENT_OFFLINE). */
  onError?: (error: ParleyError) => void;
}

interface Pending {
  readonly type: ClientMessageType;
  readonly expects: readonly string[] | null;
  readonly resolve: (msg: ServerMessage) => void;
  readonly reject: (err: ParleyError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

interface Outage {
  readonly since: number;
  attempt: number;
}

/**
 * The wire layer (LiveKit's SignalClient): one WebSocket to `/ws`, authenticated with the
 * `['parley', token]` subprotocols. Requests carry correlation ids and resolve with their typed
 * reply; every other server message is a typed event. After a drop it reconnects per the
 * ReconnectPolicy, resumes the session (`session:resume`) or, failing that, re-joins its rooms,
 * and sends what was queued meanwhile.
 *
 * ```ts
 * const client = new SignalingClient({ url: 'https://voice.example.com', token });
 * await client.connect();
 * client.on('room:participant-joined', ({ participant }) => console.log(participant.name));
 * const state = await client.request('room:join', { roomId: 'dispatch' });
 * ```
 */
export class SignalingClient extends TypedEmitter<SignalingEvents> {
  readonly url: string;
  readonly #token: TokenSource;
  readonly #policy: ReconnectPolicy;
  readonly #requestTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #pingIntervalMs: number | undefined;
  readonly #pingTimeoutMs: number;
  readonly #maxQueued: number;
  readonly #factory: WebSocketFactory;

  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | null = null;
  /** Welcome of the current socket; null until it arrives. */
  #socketWelcome: ServerPayload<'welcome'> | null = null;
  #welcome: ServerPayload<'welcome'> | null = null;
  #sessionId: string | null = null;
  #resumeToken: string | null = null;
  /** False after `server:shutdown`: that session is gone, re-join instead. */
  #canResume = false;
  #serverHintMs: number | undefined;
  readonly #pending = new Map<string, Pending>();
  #outbox: { frame: string; cid?: string }[] = [];
  readonly #rooms = new Map<string, { displayName?: string }>();
  readonly #cidPrefix = Math.random().toString(36).slice(2, 8);
  #seq = 0;
  #outage: Outage | null = null;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  #pingInFlight = false;
  #rttMs: number | null = null;
  #clockOffsetMs = 0;
  #connectWaiters: { resolve: (w: ServerPayload<'welcome'>) => void; reject: (e: ParleyError) => void }[] =
    [];
  /** After session:resumed: the rooms whose room:state snapshot has not arrived yet. */
  #snapshots: { expected: readonly string[] | null; seen: Set<string>; done: () => void } | null = null;
  readonly #onOnline = () => this.#retryNow();

  constructor(options: SignalingClientOptions) {
    super();
    this.url = toWebSocketUrl(options.url);
    this.#token = options.token;
    this.#policy = options.reconnectPolicy ?? new DefaultReconnectPolicy();
    this.#requestTimeoutMs = options.requestTimeoutMs ?? clientDefaults.requestTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? clientDefaults.connectTimeoutMs;
    this.#pingIntervalMs = options.pingIntervalMs;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? clientDefaults.pingTimeoutMs;
    this.#maxQueued = options.maxQueuedMessages ?? clientDefaults.maxQueuedMessages;
    this.#factory = options.webSocketFactory ?? defaultWebSocketFactory();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The session id (the resumed one after a resume): how rooms list this connection. */
  get sessionId(): string | null {
    return this.#sessionId;
  }

  get userId(): string | null {
    return this.#welcome?.userId ?? null;
  }

  get name(): string | null {
    return this.#welcome?.name ?? null;
  }

  get welcome(): ServerPayload<'welcome'> | null {
    return this.#welcome;
  }

  /** Rooms this client is in; they are re-joined automatically after a failed resume. */
  get rooms(): ReadonlySet<string> {
    return new Set(this.#rooms.keys());
  }

  /** Round-trip time of the last application ping. */
  get rttMs(): number | null {
    return this.#rttMs;
  }

  /** The server's clock now (ms since epoch), estimated from pongs: compare with `since`/`at` fields. */
  serverNow(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  /**
   * Opens the connection and resolves with `welcome`. The first connection fails fast (rejects
   * with a ParleyError); drops after that are retried per the ReconnectPolicy.
   */
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

  /**
   * After `disconnected` because the policy gave up: start reconnecting again (resume if still
   * possible). While reconnecting: retry now instead of waiting for the next back-off.
   */
  reconnect(): void {
    if (this.#closed) return;
    if (this.#state === 'reconnecting') return this.#retryNow();
    if (this.#state !== 'disconnected') return;
    this.#outage = { since: Date.now(), attempt: 0 };
    this.#setState('reconnecting');
    void this.#openSocket();
  }

  /**
   * Sends a request and resolves with its reply; rejects with a ParleyError (the server's code,
   * TIMEOUT, DISCONNECTED if the connection dropped before the reply, CLOSED). While reconnecting
   * the request is queued and goes out once the session is back.
   */
  request<T extends RequestType>(
    type: T,
    payload: ClientPayload<T>,
    options: RequestOptions = {},
  ): Promise<ReplyTo<T>> {
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    if (this.#outbox.length >= this.#maxQueued && this.#state !== 'connected') {
      return Promise.reject(new ParleyError('DISCONNECTED', 'send queue is full while reconnecting'));
    }
    const cid = this.#nextCid();
    const frame = encode(type, payload, cid);
    const promise = this.#expect(cid, type, REPLIES[type], options) as Promise<ReplyTo<T>>;
    this.#sendOrQueue(frame, cid);
    return promise.then((reply) => {
      this.#trackRooms(type, payload);
      return reply;
    });
  }

  /**
   * Sends a relayed message (calls, in-room relay), which gets no reply on success. Queued while
   * reconnecting. Returns false if it could not be sent or queued.
   */
  send<T extends RelayType>(type: T, payload: ClientPayload<T>, options: SendOptions = {}): boolean {
    if (this.#refusal()) return false;
    if (this.#state !== 'connected' && this.#outbox.length >= this.#maxQueued) return false;
    let cid: string | undefined;
    if (options.onError) {
      const onError = options.onError;
      cid = this.#nextCid();
      this.#expect(cid, type, null, {}).catch((err: unknown) => {
        if (err instanceof ParleyError && err.code !== 'TIMEOUT') onError(err);
      });
    }
    this.#sendOrQueue(encode(type, payload, cid), cid);
    return true;
  }

  /** Joins a room (and keeps it across reconnects). Same as `request('room:join', …)`. */
  joinRoom(roomId: string, displayName?: string): Promise<ServerMessageOf<'room:state'>> {
    return this.request('room:join', displayName ? { roomId, displayName } : { roomId });
  }

  leaveRoom(roomId: string): Promise<ServerMessageOf<'room:left'>> {
    return this.request('room:leave', { roomId });
  }

  /**
   * Closes for good: the server ends the session at once (others see us leave), pending requests
   * reject with CLOSED, and `disconnected` is emitted once. Idempotent and synchronous.
   */
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

  /** Drops the socket without a close handshake, as a network failure would. For tests and demos. */
  dropConnectionForTesting(): void {
    const ws = this.#ws;
    if (!ws) return;
    this.#abandon(ws, new ParleyError('DISCONNECTED', 'connection dropped (simulated)'));
  }

  // ---- connection lifecycle --------------------------------------------------------------------------

  async #openSocket(): Promise<void> {
    this.#retryTimer = null;
    let token: string;
    try {
      token = typeof this.#token === 'string' ? this.#token : await this.#token();
    } catch (err) {
      return this.#attemptFailed(ParleyError.from(err, 'UNAUTHORIZED'));
    }
    if (this.#closed || this.#ws) return;
    const exp = jwtExpiry(token);
    if (exp !== null && exp * 1000 <= Date.now()) {
      return this.#terminate(new ParleyError('UNAUTHORIZED', 'the token has expired; get a new one'));
    }
    let ws: WebSocketLike;
    try {
      ws = this.#factory(this.url, [PARLEY_SUBPROTOCOL, token]);
    } catch (err) {
      return this.#attemptFailed(ParleyError.from(err, 'CONNECTION_FAILED'));
    }
    this.#ws = ws;
    this.#socketWelcome = null;
    let opened = false;
    let errorText: string | undefined;
    ws.onopen = () => {
      opened = true;
    };
    ws.onerror = (event) => {
      const message = (event as { message?: unknown }).message;
      if (typeof message === 'string') errorText = message;
    };
    ws.onmessage = (event) => this.#onFrame(ws, event.data);
    ws.onclose = (event) => {
      if (ws !== this.#ws) return;
      this.#socketClosed(ws, classifyClose(event.code, event.reason, opened, errorText));
    };
    this.#handshakeTimer = setTimeout(() => {
      if (ws === this.#ws && !this.#socketWelcome) {
        this.#abandon(ws, new ParleyError('TIMEOUT', 'no welcome from the server in time'));
      }
    }, this.#connectTimeoutMs);
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
    // Requests already on the wire may never be answered; those still queued survive.
    for (const [cid, p] of this.#pending) {
      if (!p.sent) continue;
      this.#pending.delete(cid);
      clearTimeout(p.timer);
      p.reject(new ParleyError('DISCONNECTED', `connection lost before the reply to ${p.type}`));
    }
    if (this.#closed) return;
    const fatal = reason.code === 'UNAUTHORIZED' || reason.code === 'SESSION_REPLACED';
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
    const delay = this.#policy.nextRetryDelayInMs({
      attempt: outage.attempt,
      elapsedMs: Date.now() - outage.since,
      reason,
      ...(hint !== undefined ? { serverHintMs: hint } : {}),
    });
    if (delay === null) return this.#terminate(reason);
    this.#setState('reconnecting');
    this.#watchNetwork();
    this.emit('reconnecting', { attempt: outage.attempt + 1, delayMs: delay, reason });
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
      this.#sessionId = welcome.sessionId;
      this.#resumeToken = welcome.resumeToken;
      this.#canResume = true;
      this.#becomeConnected(ws);
      this.emit('connected', welcome);
      for (const w of this.#connectWaiters.splice(0)) w.resolve(welcome);
      return;
    }
    void this.#restoreSession(ws, welcome);
  }

  /** After a reconnect: resume the old session, or fall back to a fresh one and re-join the rooms. */
  async #restoreSession(ws: WebSocketLike, welcome: ServerPayload<'welcome'>): Promise<void> {
    const since = this.#outage?.since ?? Date.now();
    const downtimeMs = Date.now() - since;
    const graceMs = (this.#welcome?.resumeGraceMs ?? 0) - clientDefaults.resumeMarginMs;
    let resumed = false;
    let missedFrames = false;
    if (this.#canResume && this.#resumeToken && downtimeMs < graceMs) {
      try {
        const snapshots = new Promise<void>((done) => {
          this.#snapshots = { expected: null, seen: new Set(), done };
        });
        const reply = await this.#requestOn(ws, 'session:resume', { resumeToken: this.#resumeToken });
        // The server follows session:resumed with a room:state per room: report `reconnected`
        // once listeners have the fresh snapshots (bounded, in case one never comes).
        const pendingSnapshots = this.#snapshots;
        if (pendingSnapshots) {
          pendingSnapshots.expected = reply.payload.rooms;
          checkSnapshots(pendingSnapshots);
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([
            snapshots,
            new Promise((r) => (timer = setTimeout(r, this.#requestTimeoutMs))),
          ]);
          clearTimeout(timer);
          this.#snapshots = null;
        }
        if (ws !== this.#ws) return;
        resumed = true;
        missedFrames = reply.payload.missedFrames;
        this.#sessionId = reply.payload.sessionId;
        this.#resumeToken = reply.payload.resumeToken;
        for (const roomId of [...this.#rooms.keys()]) {
          if (!reply.payload.rooms.includes(roomId)) this.#rooms.delete(roomId);
        }
      } catch (err) {
        this.#snapshots = null;
        if (ws !== this.#ws) return; // dropped again: the close handler carries on
        if (!(err instanceof ParleyError) || err.code !== 'RESUME_FAILED') {
          return this.#abandon(ws, ParleyError.from(err, 'DISCONNECTED'));
        }
      }
    }
    if (!resumed) {
      this.#sessionId = welcome.sessionId;
      this.#resumeToken = welcome.resumeToken;
      for (const [roomId, { displayName }] of [...this.#rooms]) {
        try {
          const state = await this.#requestOn(
            ws,
            'room:join',
            displayName ? { roomId, displayName } : { roomId },
          );
          this.#emitMessage(state);
        } catch (err) {
          if (ws !== this.#ws) return;
          this.#rooms.delete(roomId);
          this.emit('roomLost', roomId, ParleyError.from(err, 'DISCONNECTED'));
        }
      }
    }
    if (ws !== this.#ws || this.#closed) return;
    this.#welcome = { ...welcome, sessionId: this.#sessionId ?? welcome.sessionId };
    this.#canResume = true;
    this.#becomeConnected(ws);
    this.emit('reconnected', { resumed, rooms: [...this.#rooms.keys()], downtimeMs, missedFrames });
    for (const w of this.#connectWaiters.splice(0)) w.resolve(this.#welcome);
  }

  #becomeConnected(ws: WebSocketLike): void {
    this.#outage = null;
    this.#unwatchNetwork();
    this.#setState('connected');
    const queued = this.#outbox;
    this.#outbox = [];
    for (const item of queued) {
      if (item.cid) {
        const p = this.#pending.get(item.cid);
        if (p) p.sent = true;
      }
      ws.send(item.frame);
    }
    this.#startPing(ws);
  }

  #terminate(reason: ParleyError): void {
    this.#clearTimers();
    this.#unwatchNetwork();
    for (const [cid, p] of this.#pending) {
      this.#pending.delete(cid);
      clearTimeout(p.timer);
      p.reject(reason.code === 'CLOSED' ? reason : new ParleyError('DISCONNECTED', reason.reason));
    }
    this.#outbox = [];
    if (this.#state === 'disconnected') return;
    this.#setState('disconnected');
    for (const w of this.#connectWaiters.splice(0)) w.reject(reason);
    this.emit('disconnected', reason);
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('connectionStateChanged', state, previous);
  }

  #clearTimers(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#retryTimer = this.#handshakeTimer = this.#pingTimer = null;
    this.#pingInFlight = false;
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

  // ---- heartbeat ---------------------------------------------------------------------------------------

  #startPing(ws: WebSocketLike): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    const serverInterval = this.#socketWelcome?.heartbeatIntervalMs ?? 30_000;
    const every =
      this.#pingIntervalMs ??
      Math.min(
        clientDefaults.maxPingIntervalMs,
        Math.max(clientDefaults.minPingIntervalMs, serverInterval / 2),
      );
    this.#ping(ws);
    this.#pingTimer = setInterval(() => this.#ping(ws), every);
  }

  #ping(ws: WebSocketLike): void {
    if (this.#pingInFlight || ws !== this.#ws) return;
    this.#pingInFlight = true;
    const sentAt = Date.now();
    this.#requestOn(ws, 'ping', {}, this.#pingTimeoutMs).then(
      (pong) => {
        this.#pingInFlight = false;
        const now = Date.now();
        this.#rttMs = now - sentAt;
        this.#clockOffsetMs = pong.payload.serverTime - (sentAt + now) / 2;
      },
      (err: unknown) => {
        this.#pingInFlight = false;
        if (err instanceof ParleyError && err.code === 'TIMEOUT' && ws === this.#ws) {
          this.#abandon(ws, new ParleyError('DISCONNECTED', 'no pong from the server (heartbeat timeout)'));
        }
      },
    );
  }

  // ---- messages ------------------------------------------------------------------------------------------

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
    const cid = msg.correlationId;
    if (cid !== undefined) {
      const p = this.#pending.get(cid);
      if (p) {
        this.#pending.delete(cid);
        clearTimeout(p.timer);
        if (msg.type === 'error') {
          p.reject(errorFrom(msg.payload));
        } else if (p.expects && !p.expects.includes(msg.type)) {
          p.reject(new ParleyError('PROTOCOL_ERROR', `unexpected reply ${msg.type} to ${p.type}`));
        } else {
          p.resolve(msg);
        }
        return;
      }
    }
    if (msg.type === 'room:state' && this.#snapshots) {
      const waiting = this.#snapshots;
      waiting.seen.add(msg.payload.roomId);
      this.#emitMessage(msg);
      checkSnapshots(waiting);
      return;
    }
    if (msg.type === 'server:shutdown') {
      this.#canResume = false;
      this.#serverHintMs = msg.payload.reconnectInMs;
    }
    this.#emitMessage(msg);
  }

  #emitMessage(msg: ServerMessage): void {
    // The map is keyed by msg.type with [payload, msg]; TypeScript cannot correlate the union here.
    (this.emit as (type: string, payload: unknown, message: unknown) => boolean)(msg.type, msg.payload, msg);
  }

  #nextCid(): string {
    return `${this.#cidPrefix}-${++this.#seq}`;
  }

  #refusal(): ParleyError | null {
    if (this.#closed) return new ParleyError('CLOSED');
    if (this.#state === 'idle') return new ParleyError('DISCONNECTED', 'call connect() first');
    if (this.#state === 'disconnected') return new ParleyError('DISCONNECTED');
    return null;
  }

  #expect(
    cid: string,
    type: ClientMessageType,
    expects: readonly string[] | null,
    { timeoutMs = this.#requestTimeoutMs, signal }: RequestOptions,
  ): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        // A request that timed out in the queue is not sent late; a relayed message still is
        // (only its error callback expired).
        if (expects) this.#outbox = this.#outbox.filter((o) => o.cid !== cid);
        reject(new ParleyError('TIMEOUT', `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(cid, { type, expects, resolve, reject, timer, sent: false });
      signal?.addEventListener(
        'abort',
        () => {
          if (!this.#pending.delete(cid)) return;
          clearTimeout(timer);
          this.#outbox = this.#outbox.filter((o) => o.cid !== cid);
          reject(ParleyError.from(signal.reason, 'TIMEOUT'));
        },
        { once: true },
      );
    });
  }

  #sendOrQueue(frame: string, cid: string | undefined): void {
    const ws = this.#ws;
    if (this.#state === 'connected' && ws && ws.readyState === WS_OPEN) {
      if (cid) {
        const p = this.#pending.get(cid);
        if (p) p.sent = true;
      }
      ws.send(frame);
    } else {
      this.#outbox.push(cid ? { frame, cid } : { frame });
    }
  }

  /** A request on a given socket, bypassing the queue: for the handshake (resume, re-join, ping). */
  #requestOn<T extends RequestType>(
    ws: WebSocketLike,
    type: T,
    payload: ClientPayload<T>,
    timeoutMs = this.#requestTimeoutMs,
  ): Promise<ReplyTo<T>> {
    const cid = this.#nextCid();
    const promise = this.#expect(cid, type, REPLIES[type], { timeoutMs }) as Promise<ReplyTo<T>>;
    const p = this.#pending.get(cid);
    if (p) p.sent = true;
    ws.send(encode(type, payload, cid));
    return promise;
  }

  #trackRooms(type: RequestType, payload: unknown): void {
    if (type === 'room:join') {
      const { roomId, displayName } = payload as ClientPayload<'room:join'>;
      this.#rooms.set(roomId, displayName ? { displayName } : {});
    } else if (type === 'room:leave') {
      this.#rooms.delete((payload as ClientPayload<'room:leave'>).roomId);
    }
  }
}

function checkSnapshots(s: {
  expected: readonly string[] | null;
  seen: Set<string>;
  done: () => void;
}): void {
  if (s.expected && s.expected.every((r) => s.seen.has(r))) s.done();
}

function encode(type: ClientMessageType, payload: unknown, correlationId?: string): string {
  return JSON.stringify({ type, payload, timestamp: Date.now(), correlationId });
}

function detach(ws: WebSocketLike): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // A socket we abandon may still report an error (e.g. closed while connecting); Node's `ws`
  // throws an error event nobody listens to, so keep a listener that ignores it.
  ws.onerror = () => undefined;
}

function errorFrom(payload: ServerPayload<'error'>): ParleyError {
  return ParleyError.fromBody(payload);
}

/** Turns a close event into the error that explains it (and decides whether to retry). */
function classifyClose(code: number, reason: string, opened: boolean, errorText?: string): ParleyError {
  const details = { closeCode: code, ...(reason ? { closeReason: reason } : {}) };
  // Node's `ws` reports a refused upgrade as "Unexpected server response: 401"; browsers cannot see it.
  const status = errorText ? /Unexpected server response: (\d{3})/.exec(errorText)?.[1] : undefined;
  if (status === '401') return new ParleyError('UNAUTHORIZED', 'the server refused the token (HTTP 401)');
  if (status === '429') return new ParleyError('TOO_MANY_CONNECTIONS', undefined, { details });
  if (status === '503') return new ParleyError('SERVICE_UNAVAILABLE', 'the server is draining', { details });
  switch (code) {
    case CLOSE_CODES.UNAUTHORIZED.code:
      return new ParleyError('UNAUTHORIZED', reason || undefined, { details });
    case CLOSE_CODES.SESSION_REPLACED.code:
      return new ParleyError('SESSION_REPLACED', undefined, { details });
    case CLOSE_CODES.GOING_AWAY.code:
      return new ParleyError('SERVICE_UNAVAILABLE', 'the server is shutting down', { details });
    case CLOSE_CODES.POLICY_VIOLATION.code:
      return new ParleyError('RATE_LIMITED', 'closed for sending too fast', { details });
    case CLOSE_CODES.MESSAGE_TOO_BIG.code:
      return new ParleyError('PAYLOAD_TOO_LARGE', undefined, { details });
    default:
      if (!opened) {
        return new ParleyError(
          'CONNECTION_FAILED',
          'could not open the WebSocket (server unreachable, or the token was refused)',
          { details },
        );
      }
      return new ParleyError('DISCONNECTED', `connection closed (${code}${reason ? `: ${reason}` : ''})`, {
        details,
      });
  }
}
