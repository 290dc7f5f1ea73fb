import type { PROTOCOL_VERSION } from '../protocol/common.js';
import type {
  ClientPayload,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
  ServerPayload,
} from '../protocol/index.js';
import type { RelayType, ReplyTo, ReplyType, RequestType } from '../protocol/registry.js';
import { clientDefaults } from './defaults.js';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { DefaultReconnectPolicy, type ReconnectPolicy } from './reconnect-policy.js';
import { encode, type RequestOptions } from './request-tracker.js';
import { serverUrls } from './server-url.js';
import {
  SignalingConnection,
  type AuthMode,
  type ConnectionEvents,
  type ConnectionState,
  type ReconnectedInfo,
  type ReconnectingInfo,
} from './signaling-connection.js';
import { defaultWebSocketFactory, type TokenSource, type WebSocketFactory } from './websocket.js';
import { resolveToken, type TokenValue } from './token.js';

export type { AuthMode, ConnectionState, ReconnectedInfo, ReconnectingInfo, RequestOptions };

/** The wire protocol version this SDK speaks (compared with `welcome.protocolVersion`). Pinned to
 * the protocol's constant at compile time (importing the value would pull Zod into the browser bundle). */
export const CLIENT_PROTOCOL_VERSION: typeof PROTOCOL_VERSION = 1;

/** The reply (or replies) each request type gets on success, from the protocol's registry. Errors come as `error`. */
export type ReplyTypes = { readonly [K in RequestType]: ReplyType<K> };
export type { RelayType, ReplyTo, RequestType };

/** Every server message as an event `(payload, message)`, plus the connection's lifecycle. */
export type SignalingEvents = {
  [K in ServerMessageType]: [payload: ServerPayload<K>, message: ServerMessageOf<K>];
} & ConnectionEvents;

export interface SignalingClientOptions {
  /**
   * The server: its origin (`https://host`, `wss://host`), a base path behind a proxy
   * (`https://host/prefix`), or the endpoint itself (`wss://host/ws`). See ACCEPTED_URL_FORMS.
   */
  url: string;
  /**
   * The JWT, `{token}` (what /api/dev-token answers), or a function returning either; a function
   * is called again on every reconnect.
   */
  token: TokenSource;
  /** How the token reaches the server. Default `in-band` (see {@link AuthMode}). */
  auth?: AuthMode;
  /**
   * Returns a fresh JWT (or `{token}`) for the same user. Called when the server says the
   * connection's token is about to expire (`auth:expiring`): the client sends it with
   * `auth:request` and stays connected. Without it (and with a plain string `token`), the server
   * closes the connection with 4401 at the token's `exp`. Also used, instead of `token`, for every
   * reconnect. Default: none.
   */
  getToken?: () => TokenValue | Promise<TokenValue>;
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

export interface SendOptions {
  /** Called if the server refuses the message (e.g. RECIPIENT_OFFLINE). */
  onError?: (error: ParleyError) => void;
}

/**
 * The wire layer (LiveKit's SignalClient): one WebSocket to `/ws`, authenticated with the
 * `['parley', token]` subprotocols. Requests carry correlation ids and resolve with their typed
 * reply; every other server message is a typed event. After a drop it reconnects per the
 * ReconnectPolicy, resumes the session (`session:resume`) or, failing that, re-joins its rooms,
 * and sends what was queued meanwhile.
 *
 * The work is done by a SignalingConnection (the socket state machine), its RequestTracker (replies
 * by correlationId, timeouts, the send queue), SessionResume (resume or re-join) and Heartbeat.
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
  readonly #maxQueued: number;
  readonly #conn: SignalingConnection;
  readonly #getToken: (() => Promise<string>) | null;
  readonly #token: TokenSource;
  readonly #httpBase: string;

  constructor(options: SignalingClientOptions) {
    super();
    const urls = serverUrls(options.url);
    this.url = urls.ws;
    this.#httpBase = urls.http;
    this.#token = options.token;
    this.#maxQueued = options.maxQueuedMessages ?? clientDefaults.maxQueuedMessages;
    const token = options.token;
    const refresh = options.getToken ?? (typeof token === 'function' ? token : null);
    this.#getToken = refresh ? () => resolveToken(refresh) : null;
    this.#conn = new SignalingConnection(
      {
        // ConnectionEvents is part of SignalingEvents; TypeScript cannot see that through the generic.
        emit: (event, ...args) =>
          void (this.emit as (e: keyof ConnectionEvents, ...a: ConnectionEvents[typeof event]) => boolean)(
            event,
            ...args,
          ),
        deliver: (msg) => this.#emitMessage(msg),
      },
      {
        url: this.url,
        httpBase: urls.http,
        token: reconnectToken(options.token, options.getToken),
        auth: options.auth ?? 'in-band',
        policy: options.reconnectPolicy ?? new DefaultReconnectPolicy(),
        factory: options.webSocketFactory ?? defaultWebSocketFactory(),
        requestTimeoutMs: options.requestTimeoutMs ?? clientDefaults.requestTimeoutMs,
        connectTimeoutMs: options.connectTimeoutMs ?? clientDefaults.connectTimeoutMs,
        pingIntervalMs: options.pingIntervalMs,
        pingTimeoutMs: options.pingTimeoutMs ?? clientDefaults.pingTimeoutMs,
      },
    );
    this.on('auth:expiring', () => void this.#refreshToken());
  }

  /**
   * `auth:expiring`: fetch a fresh token (getToken, or a function `token`) and authenticate the
   * live connection with it. If that fails, the server closes at exp and the reconnect gets one.
   */
  async #refreshToken(): Promise<void> {
    const source = this.#getToken;
    if (!source) return;
    try {
      await this.request('auth:request', { token: await source() });
    } catch {
      // Nothing better to do here: the 4401 close at exp is followed by a reconnect with a new token.
    }
  }

  /** The server's HTTP base (`http(s)://host`), for the HTTP API (recordings, TURN credentials). */
  get httpBase(): string {
    return this.#httpBase;
  }

  /** The JWT for an HTTP API request (`Authorization: Bearer`): the token, or a fresh one from its function. */
  async bearerToken(): Promise<string> {
    return resolveToken(this.#token);
  }

  get state(): ConnectionState {
    return this.#conn.state;
  }

  /** The session id (the resumed one after a resume): how rooms list this connection. */
  get sessionId(): string | null {
    return this.#conn.session.sessionId;
  }

  get userId(): string | null {
    return this.#conn.welcome?.userId ?? null;
  }

  get name(): string | null {
    return this.#conn.welcome?.name ?? null;
  }

  get welcome(): ServerPayload<'welcome'> | null {
    return this.#conn.welcome;
  }

  /** Rooms this client is in; they are re-joined automatically after a failed resume. */
  get rooms(): ReadonlySet<string> {
    return new Set(this.#conn.session.rooms);
  }

  /** Round-trip time of the last application ping. */
  get rttMs(): number | null {
    return this.#conn.heartbeat.rttMs;
  }

  /** The server's clock now (ms since epoch), estimated from pongs: compare with `since`/`at` fields. */
  serverNow(): number {
    return Date.now() + this.#conn.heartbeat.clockOffsetMs;
  }

  /**
   * Opens the connection and resolves with `welcome`. The first connection fails fast (rejects
   * with a ParleyError); drops after that are retried per the ReconnectPolicy.
   */
  connect(): Promise<ServerPayload<'welcome'>> {
    return this.#conn.connect();
  }

  /**
   * After `disconnected` because the policy gave up: start reconnecting again (resume if still
   * possible). While reconnecting: retry now instead of waiting for the next back-off.
   */
  reconnect(): void {
    this.#conn.reconnect();
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
    const conn = this.#conn;
    const refused = conn.refusal();
    if (refused) return Promise.reject(refused);
    if (conn.requests.queued >= this.#maxQueued && conn.state !== 'connected') {
      return Promise.reject(new ParleyError('DISCONNECTED', 'send queue is full while reconnecting'));
    }
    const cid = conn.requests.nextCid();
    const frame = encode(type, payload, cid);
    const promise = conn.requests.expectReply(cid, type, options);
    conn.sendOrQueue(frame, cid);
    return promise.then((reply) => {
      conn.session.track(type, payload);
      return reply;
    });
  }

  /**
   * Sends a relayed message (calls, in-room relay), which gets no reply on success. Queued while
   * reconnecting. Returns false if it could not be sent or queued.
   */
  send<T extends RelayType>(type: T, payload: ClientPayload<T>, options: SendOptions = {}): boolean {
    const conn = this.#conn;
    if (conn.refusal()) return false;
    if (conn.state !== 'connected' && conn.requests.queued >= this.#maxQueued) return false;
    let cid: string | undefined;
    if (options.onError) {
      const onError = options.onError;
      cid = conn.requests.nextCid();
      conn.requests.expectRefusal(cid, type).catch((err: unknown) => {
        if (err instanceof ParleyError && err.code !== 'TIMEOUT') onError(err);
      });
    }
    conn.sendOrQueue(encode(type, payload, cid), cid);
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
    this.#conn.close();
  }

  /** Drops the socket without a close handshake, as a network failure would. For tests and demos. */
  dropConnectionForTesting(): void {
    this.#conn.dropConnectionForTesting();
  }

  #emitMessage(msg: ServerMessage): void {
    // The map is keyed by msg.type with [payload, msg]; TypeScript cannot correlate the union here.
    (this.emit as (type: string, payload: unknown, message: unknown) => boolean)(msg.type, msg.payload, msg);
  }
}

/** The token for each connect: `token` the first time, then `getToken` (if given) for every reconnect. */
function reconnectToken(
  token: TokenSource,
  getToken: (() => TokenValue | Promise<TokenValue>) | undefined,
): TokenSource {
  if (!getToken) return token;
  let first = true;
  return () => {
    if (!first) return getToken();
    first = false;
    return typeof token === 'function' ? token() : token;
  };
}
