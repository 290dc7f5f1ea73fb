import {
  PROTOCOL_VERSION,
  RELAYS,
  isRequestType,
  type CallRelayType,
  type ClientMessage,
  type ClientMessageOf,
  type ReplyType,
  type RequestType,
  type RoomRelayType,
  type ServerPayload,
} from '../../protocol/index.js';
import { mayJoinRoom, type Identity } from '../auth/claims.js';
import { TokenExpiry, type TokenExpiryPolicy } from '../auth/token-expiry.js';
import { DeadlineQueue } from '../time/deadline-queue.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { CallRelay } from '../calls/call-relay.js';
import type { Config } from '../config/env.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MediaPlane } from '../media/media-plane.js';
import type { FloorControl } from '../ptt/floor-control.js';
import type { RoomService } from '../rooms/room-service.js';
import type { LiveSession } from '../sessions/live-session.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { systemClock, type Clock } from '../time/clock.js';
import type { Correlation } from '../wire/frame.js';
import type { RelaySource } from '../wire/relay-splice.js';
import { decode } from './codec.js';
import type { Connection } from './connection.js';
import { beginBurst, endBurst, framesFollow } from './write-burst.js';

export interface DispatcherDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  verifier: TokenVerifier;
  sessions: SessionManager;
  rooms: RoomService;
  relay: CallRelay;
  media: MediaPlane;
  floor: FloorControl;
  clock?: Clock;
}

/** One of the replies of request `T`, and work to run once it is sent (e.g. a broadcast it causes). */
export type Reply<T extends RequestType> = {
  [R in ReplyType<T>]: { type: R; payload: ServerPayload<R>; after?: () => void | Promise<void> };
}[ReplyType<T>];

/**
 * Returned by a handler that answered by itself (ctx.reply) or refused and closed the connection.
 * Only `ctx.reply` and the dispatcher's own handlers can produce it.
 */
export interface Handled {
  readonly __brand: 'Handled';
}

export interface RequestContext<T extends RequestType> {
  conn: Connection;
  /** Null only for `auth:request` on a connection that is not authenticated yet. */
  session: T extends 'auth:request' ? LiveSession | null : LiveSession;
  msg: ClientMessageOf<T>;
  /** How the request named itself; replies echo it (see `reply`). */
  correlation: Correlation | undefined;
  /** Sends a reply now (for handlers that must order it before other frames). */
  reply: (r: Reply<T>) => Handled;
}

type RequestHandler<T extends RequestType> = (
  ctx: RequestContext<T>,
) => Reply<T> | Handled | Promise<Reply<T> | Handled>;
/** One handler per request type in the protocol registry: a request without one does not compile. */
export type RequestHandlers = { [T in RequestType]: RequestHandler<T> };
/**
 * One handler per relay kind in the registry. `verbatim`: the received frame, when its payload is
 * exactly what was validated (the relay may forward its text instead of re-encoding it).
 */
export type RelayHandlers = {
  call: (
    session: LiveSession,
    msg: ClientMessageOf<CallRelayType>,
    receivedAt: number,
    verbatim?: RelaySource,
  ) => void | Promise<void>;
  room: (
    session: LiveSession,
    msg: ClientMessageOf<RoomRelayType>,
    receivedAt: number,
    verbatim?: RelaySource,
  ) => void | Promise<void>;
};

const HANDLED: Handled = Object.freeze({ __brand: 'Handled' });

/**
 * Turns inbound frames into handler calls: decode + validate, authentication gate, then the
 * handler of the message's type from a table typed by the protocol registry. A request's reply
 * goes out before anything the request causes (its `after`). Refusals become `error` replies with
 * the request's correlationId; unexpected exceptions become INTERNAL and are logged.
 */
export class Dispatcher {
  readonly #d: DispatcherDeps;
  readonly #clock: Clock;
  /** Every connection's token deadlines (one timer) and what they do, shared by all. */
  readonly #expiryPolicy: TokenExpiryPolicy<Connection>;
  readonly #debug: boolean;
  readonly #requests: RequestHandlers;
  readonly #relays: RelayHandlers;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#expiryPolicy = {
      deadlines: new DeadlineQueue(this.#clock, (err) =>
        deps.log.error({ err }, 'token deadline handler failed'),
      ),
      leadMs: deps.config.auth.expiringLeadMs,
      toleranceMs: deps.config.auth.clockToleranceS * 1000,
      handlers: {
        expiring: (conn, at) =>
          conn.send('auth:expiring', {
            expiresAt: at,
            expiresInMs: Math.max(0, Math.round(at - this.#clock.now())),
          }),
        expired: (conn) => {
          deps.log.info(
            { conn: conn.id, remote: conn.remoteAddress, userId: conn.identity?.userId },
            'token expired on a live connection',
          );
          conn.sendError('UNAUTHORIZED', undefined, 'your token expired; reconnect with a fresh one');
          conn.closeFor('UNAUTHORIZED', 'token expired');
        },
      },
    };
    this.#debug = deps.log.isLevelEnabled('debug');
    const { rooms, media, floor, relay } = deps;
    this.#requests = {
      'auth:request': (ctx) => this.#authRequest(ctx),
      'session:resume': (ctx) => this.#resume(ctx),
      ping: () => ({ type: 'pong', payload: { serverTime: this.#clock.now() } }),
      // A request that others hear about returns that announcement as `after`: the requester's
      // reply goes first (SPEC §9; docs/protocol.md, "Order").
      'room:join': async ({ session, msg }) => {
        const { result, announce } = await rooms.join(session, msg.payload.roomId, msg.payload.displayName);
        return { type: 'room:state', payload: result, after: announce };
      },
      'room:leave': async ({ session, msg }) => {
        const { announce } = await rooms.beginLeave(session, msg.payload.roomId, 'left');
        return { type: 'room:left', payload: { roomId: msg.payload.roomId }, after: announce };
      },
      'media:capabilities': async ({ session, msg }) => ({
        type: 'media:capabilities',
        payload: await media.capabilities(session, msg.payload.roomId),
      }),
      'transport:create': async ({ session, msg }) => {
        const { created, announce } = await media.createTransport(session, msg.payload);
        return {
          type: 'transport:created',
          payload: created,
          ...(created.direction === 'recv' ? { after: announce } : {}),
        };
      },
      'transport:connect': async ({ session, msg }) => {
        await media.connectTransport(session, msg.payload);
        return { type: 'transport:connected', payload: { transportId: msg.payload.transportId } };
      },
      'transport:restart-ice': async ({ session, msg }) => ({
        type: 'transport:ice-restarted',
        payload: await media.restartIce(session, msg.payload.transportId),
      }),
      produce: async ({ session, msg }) => {
        const holds = (roomId: string) => floor.holds(session, roomId);
        const { result, announce } = await media.produce(session, msg.payload, holds);
        return { type: 'produced', payload: result, after: announce };
      },
      consume: async ({ session, msg }) => ({
        type: 'consumed',
        payload: await media.consume(session, msg.payload),
      }),
      'consumer:resume': async ({ session, msg }) => {
        await media.resumeConsumer(session, msg.payload.consumerId);
        return { type: 'consumer:resumed', payload: { consumerId: msg.payload.consumerId } };
      },
      'consumer:pause': async ({ session, msg }) => ({
        type: 'consumer:paused',
        payload: await media.pauseConsumer(session, msg.payload.consumerId),
      }),
      'consumer:set-preferred-layers': async ({ session, msg }) => ({
        type: 'consumer:preferred-layers-set',
        payload: await media.setPreferredLayers(session, msg.payload),
      }),
      'producer:close': async ({ session, msg }) => {
        const { result, announce } = await media.closeProducer(session, msg.payload.producerId);
        return { type: 'producer:closed', payload: result, after: announce };
      },
      'producer:pause': async ({ session, msg }) => {
        const { result, announce } = await media.pauseProducer(session, msg.payload.producerId);
        return { type: 'producer:paused', payload: result, after: announce };
      },
      'producer:resume': async ({ session, msg }) => {
        const { result, announce } = await media.resumeProducer(session, msg.payload.producerId);
        return { type: 'producer:resumed', payload: result, after: announce };
      },
      // Floor changes are serialised per room: the floor sends the reply itself, inside its chain,
      // before the broadcast, so no other change of the room's floor can come between them.
      'ptt:start': async ({ session, msg, reply }) => {
        await floor.start(session, msg.payload.roomId, reply);
        return HANDLED;
      },
      'ptt:stop': async ({ session, msg, reply }) => {
        await floor.stop(session, msg.payload.roomId, (payload) => reply({ type: 'ptt:stopped', payload }));
        return HANDLED;
      },
    };
    this.#relays = {
      call: (session, msg, receivedAt, verbatim) => relay.relayCall(session, msg, receivedAt, verbatim),
      room: (session, msg, receivedAt, verbatim) => relay.relayInRoom(session, msg, receivedAt, verbatim),
    };
  }

  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    // One clock read per frame: liveness, the rate limit and the relay-latency start share it.
    const receivedAt = this.#clock.monotonic();
    conn.lastSeen = receivedAt;
    if (!conn.admit(receivedAt)) return;
    if (isBinary) {
      this.#d.metrics.messagesIn('binary').inc();
      conn.sendError('INVALID_MESSAGE', undefined, 'binary frames are not supported; send JSON text frames');
      return;
    }
    const decoded = decode(data.toString('utf8'), conn.dialect);
    if (!decoded.ok) {
      this.#d.metrics
        .messagesIn(decoded.code === 'UNKNOWN_TYPE' ? 'unknown' : (decoded.type ?? 'invalid'))
        .inc();
      const about = decoded.type === undefined ? undefined : { type: decoded.type, payload: decoded.payload };
      conn.sendError(decoded.code, decoded.correlation, decoded.message, decoded.details, about);
      return;
    }
    const msg = decoded.msg;
    this.#d.metrics.messagesIn(msg.type).inc();
    if (this.#debug) {
      this.#d.log.debug({ conn: conn.id, type: msg.type, correlationId: msg.correlationId }, 'message');
    }
    const { correlation, verbatim } = decoded;
    // More frames in this chunk: what handling them writes goes out together (write-burst.ts).
    const burst = framesFollow(conn.ws);
    if (burst) beginBurst();
    try {
      conn.process(() => this.#handle(conn, msg, correlation, receivedAt, verbatim));
    } finally {
      if (burst) endBurst();
    }
  }

  #handle(
    conn: Connection,
    msg: ClientMessage,
    correlation: Correlation | undefined,
    receivedAt: number,
    verbatim: RelaySource | undefined,
  ): void | Promise<void> {
    try {
      const result = this.#route(conn, msg, correlation, receivedAt, verbatim);
      if (result instanceof Promise)
        return result.catch((err: unknown) => this.#fail(conn, msg, correlation, err));
    } catch (err) {
      this.#fail(conn, msg, correlation, err);
    }
  }

  #fail(conn: Connection, msg: ClientMessage, correlation: Correlation | undefined, err: unknown): void {
    if (err instanceof ParleyError) {
      conn.sendError(err.code, correlation, err.message, err.details, msg);
      return;
    }
    this.#d.log.error({ err, conn: conn.id, type: msg.type }, 'handler failed');
    conn.sendError('INTERNAL', correlation, undefined, undefined, msg);
  }

  #route(
    conn: Connection,
    msg: ClientMessage,
    correlation: Correlation | undefined,
    receivedAt: number,
    verbatim: RelaySource | undefined,
  ): void | Promise<void> {
    const session = conn.session;
    if (!session && msg.type !== 'auth:request') {
      throw new ParleyError('UNAUTHORIZED', 'authenticate with auth:request first');
    }
    if (isRequestType(msg.type)) {
      // Its reply could not be sent any more; the client fails it (DISCONNECTED) and may retry.
      if (conn.draining) return;
      return this.#request(conn, session, msg, msg.type, correlation);
    }
    // Not a request, so a relay (registry.ts proves the two partition the client messages).
    const relayed = msg as ClientMessageOf<CallRelayType | RoomRelayType>;
    const live = session as LiveSession;
    return RELAYS[relayed.type] === 'call'
      ? this.#relays.call(live, relayed as ClientMessageOf<CallRelayType>, receivedAt, verbatim)
      : this.#relays.room(live, relayed as ClientMessageOf<RoomRelayType>, receivedAt, verbatim);
  }

  #request<T extends RequestType>(
    conn: Connection,
    session: LiveSession | null,
    msg: ClientMessage,
    type: T,
    correlation: Correlation | undefined,
  ): void | Promise<void> {
    const send = (r: Reply<T>): void => conn.send(r.type, r.payload as never, correlation);
    const ctx = {
      conn,
      session,
      msg,
      correlation,
      reply: (r: Reply<T>) => {
        send(r);
        return HANDLED;
      },
    } as RequestContext<T>;
    // The table is indexed by the message's own type, so its handler takes exactly this context.
    const handler = this.#requests[type] as RequestHandler<T>;
    const deliver = (r: Reply<T> | Handled): void | Promise<void> => {
      if (r === HANDLED) return;
      const reply = r as Reply<T>;
      send(reply);
      return reply.after?.();
    };
    const result = handler(ctx);
    return result instanceof Promise ? result.then(deliver) : deliver(result);
  }

  /** Authenticates a connection that came without a token, or refreshes the token of one that did. */
  async #authRequest({
    conn,
    msg,
    correlation,
    reply,
  }: RequestContext<'auth:request'>): Promise<Reply<'auth:request'> | Handled> {
    const result = await this.#d.verifier.verify(msg.payload.token);
    if (!result.ok) {
      this.#d.log.info(
        { conn: conn.id, remote: conn.remoteAddress, reason: result.reason },
        'in-band auth refused',
      );
      conn.sendError('UNAUTHORIZED', correlation);
      if (!conn.identity) conn.closeFor('UNAUTHORIZED', 'unauthorized');
      return HANDLED;
    }
    const identity = result.identity;
    const response = {
      type: 'auth:response' as const,
      payload: { userId: identity.userId, name: identity.name },
    };
    if (conn.identity) {
      // Token refresh on a live connection: same user only.
      if (identity.userId !== conn.identity.userId) {
        throw new ParleyError('FORBIDDEN', 'a connection cannot change user; open a new connection');
      }
      conn.identity = identity;
      this.#armExpiry(conn);
      if (!conn.session) return response;
      const session = conn.session;
      const previous = session.identity;
      session.identity = identity;
      // Grants hold for the whole session: what the fresh token no longer allows goes now, after the reply.
      return { ...response, after: () => this.#applyGrants(conn, session, previous) };
    }
    if (conn.closed) return HANDLED; // the auth deadline fired while the token was being verified
    conn.identity = identity;
    reply(response);
    await this.welcome(conn, { inBand: true });
    return HANDLED;
  }

  /**
   * Creates the connection's session and sends `welcome`. `inBand`: the user authenticated with
   * `auth:request` after the connection opened, so "connection opened" could not name them.
   */
  async welcome(conn: Connection, opts: { inBand?: boolean } = {}): Promise<LiveSession | null> {
    const identity = conn.identity;
    if (!identity || conn.closed) return null;
    let opened: Awaited<ReturnType<SessionManager['open']>>;
    try {
      opened = await this.#d.sessions.open(identity, conn);
    } catch (err) {
      if (!(err instanceof ParleyError) || err.code !== 'QUOTA_EXCEEDED') throw err;
      // MAX_SESSIONS_PER_USER, every session live: say why, then close (4429) without a session.
      conn.sendError(err.code, undefined, err.message, err.details);
      conn.closeFor('QUOTA_EXCEEDED', 'too many sessions of this user');
      return null;
    }
    const { session, resumeToken } = opened;
    const { config } = this.#d;
    conn.send('welcome', {
      sessionId: session.id,
      userId: identity.userId,
      name: identity.name,
      protocolVersion: PROTOCOL_VERSION,
      serverTime: this.#clock.now(),
      heartbeatIntervalMs: config.limits.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
      resumeToken,
      resumeGraceMs: config.resumeGraceMs,
    });
    this.#armExpiry(conn);
    // At info when in-band: only this line ties the connection to its user. A connection
    // authenticated at the upgrade was logged at info with its user already ("connection opened");
    // its session id is in "connection closed". One log line less per connect (docs/benchmarks.md).
    const line = { conn: conn.id, session: session.id, userId: identity.userId };
    if (opts.inBand) this.#d.log.info(line, 'session opened');
    else this.#d.log.debug(line, 'session opened');
    return session;
  }

  /**
   * (Re-)arms the connection's token timers: `auth:expiring` AUTH_EXPIRING_LEAD_MS before `exp`,
   * and a 4401 close at `exp` plus the clock tolerance unless an `auth:request` refreshed it.
   */
  #armExpiry(conn: Connection): void {
    conn.expiry?.cancel();
    conn.expiry = null;
    const expiresAt = conn.identity?.expiresAt ?? null;
    if (expiresAt === null || conn.closed) return;
    conn.expiry = new TokenExpiry(expiresAt, this.#expiryPolicy, conn);
  }

  /**
   * Grants hold for the whole session (issue 13, Medium 3): after a resume or a token refresh, the
   * session leaves the rooms its token no longer allows and loses what it may no longer publish
   * (those producers close; a floor it held without the right to publish is released), and the
   * user is told with `auth:grants-reduced`.
   */
  async #applyGrants(conn: Connection, session: LiveSession, previous: Identity | null): Promise<void> {
    const identity = session.identity;
    const { rooms, media, floor } = this.#d;
    const left: string[] = [];
    for (const roomId of [...session.rooms.keys()]) {
      if (mayJoinRoom(identity, roomId)) continue;
      await rooms.leave(session, roomId, 'left');
      left.push(roomId);
    }
    const closedProducers = await media.withdrawPublishing(session);
    let publishing = closedProducers.length > 0;
    const { canPublish, publishSources } = identity;
    if (!canPublish || (publishSources && !publishSources.has('microphone'))) {
      for (const roomId of session.rooms.keys()) {
        if (!floor.holds(session, roomId)) continue;
        await floor.stop(session, roomId);
        publishing = true;
      }
    }
    if (previous && previous.canPublish && !canPublish) publishing = true;
    if (left.length === 0 && !publishing) return;
    this.#d.log.info({ conn: conn.id, session: session.id, left, closedProducers }, 'grants reduced');
    conn.send('auth:grants-reduced', { rooms: left, publishing, closedProducers });
  }

  async #resume({ conn, msg, reply }: RequestContext<'session:resume'>): Promise<Handled> {
    let replayed = 0;
    let previous: Identity | null = null;
    const session = await this.#d.sessions.resume(
      msg.payload.resumeToken,
      conn,
      (s, resumeToken, buffered, missedFrames, before) => {
        previous = before;
        // The reply, then what was buffered while away, before anything delivered afterwards.
        reply({
          type: 'session:resumed',
          payload: { sessionId: s.id, rooms: [...s.rooms.keys()], resumeToken, missedFrames },
        });
        conn.replay(buffered);
        replayed = buffered.length;
      },
    );
    // The token this connection brought may grant less than the one the session began with.
    await this.#applyGrants(conn, session, previous);
    // Snapshots last: they are authoritative over any buffered presence events.
    for (const roomId of session.rooms.keys()) {
      const state = await this.#d.rooms.stateFor(session, roomId);
      if (state) conn.send('room:state', state);
    }
    this.#d.log.info({ conn: conn.id, session: session.id, replayed }, 'session resumed');
    return HANDLED;
  }
}
