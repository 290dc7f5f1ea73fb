import { PROTOCOL_VERSION, type ClientMessage } from '../../protocol/index.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { CallRelay } from '../calls/call-relay.js';
import type { Config } from '../config/env.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MediaPlane } from '../media/media-plane.js';
import type { FloorControl } from '../ptt/floor-control.js';
import type { RoomService } from '../rooms/room-service.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { Session } from '../sessions/session.js';
import { decode } from './codec.js';
import type { Connection } from './connection.js';

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
}

/**
 * Turns inbound frames into handler calls: decode + validate, authentication gate, then an
 * exhaustive switch on the message type. Refusals become `error` replies with the request's
 * correlationId; unexpected exceptions become INTERNAL and are logged.
 */
export class Dispatcher {
  readonly #d: DispatcherDeps;
  readonly #debug: boolean;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
    this.#debug = deps.log.isLevelEnabled('debug');
  }

  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.lastSeen = performance.now();
    if (!conn.admit()) return;
    const receivedAt = performance.now();
    if (isBinary) {
      this.#d.metrics.messagesIn('binary').inc();
      conn.sendError('INVALID_MESSAGE', undefined, 'binary frames are not supported; send JSON text frames');
      return;
    }
    const decoded = decode(data.toString('utf8'));
    if (!decoded.ok) {
      this.#d.metrics
        .messagesIn(decoded.code === 'UNKNOWN_TYPE' ? 'unknown' : (decoded.type ?? 'invalid'))
        .inc();
      conn.sendError(decoded.code, decoded.correlationId, decoded.message, decoded.details);
      return;
    }
    const msg = decoded.msg;
    this.#d.metrics.messagesIn(msg.type).inc();
    if (this.#debug) {
      this.#d.log.debug({ conn: conn.id, type: msg.type, correlationId: msg.correlationId }, 'message');
    }
    conn.process(() => this.#handle(conn, msg, receivedAt));
  }

  #handle(conn: Connection, msg: ClientMessage, receivedAt: number): void | Promise<void> {
    try {
      const result = this.#route(conn, msg, receivedAt);
      if (result instanceof Promise) return result.catch((err: unknown) => this.#fail(conn, msg, err));
    } catch (err) {
      this.#fail(conn, msg, err);
    }
  }

  #fail(conn: Connection, msg: ClientMessage, err: unknown): void {
    if (err instanceof ParleyError) {
      conn.sendError(err.code, msg.correlationId, err.message, err.details);
      return;
    }
    this.#d.log.error({ err, conn: conn.id, type: msg.type }, 'handler failed');
    conn.sendError('INTERNAL', msg.correlationId);
  }

  #route(conn: Connection, msg: ClientMessage, receivedAt: number): void | Promise<void> {
    if (msg.type === 'auth:request') return this.#authRequest(conn, msg.payload.token, msg.correlationId);
    const session = conn.session;
    if (!session) throw new ParleyError('UNAUTHORIZED', 'authenticate with auth:request first');
    const cid = msg.correlationId;

    switch (msg.type) {
      case 'ping':
        conn.send('pong', { serverTime: Date.now() }, cid);
        return;
      case 'session:resume':
        return this.#resume(conn, msg.payload.resumeToken, cid);
      case 'room:join':
        return this.#d.rooms.join(session, msg.payload.roomId, msg.payload.displayName).then((state) => {
          conn.send('room:state', state, cid);
        });
      case 'room:leave':
        return this.#d.rooms.leave(session, msg.payload.roomId, 'left').then(() => {
          conn.send('room:left', { roomId: msg.payload.roomId }, cid);
        });
      case 'call:offer':
      case 'call:answer':
      case 'call:ice-candidate':
      case 'call:accept':
      case 'call:reject':
      case 'call:hangup':
        return this.#d.relay.relayCall(session, msg, receivedAt);
      case 'sdp:offer':
      case 'sdp:answer':
      case 'ice:candidate':
        return this.#d.relay.relayInRoom(session, msg, receivedAt);
      case 'media:capabilities':
        return this.#d.media.capabilities(session, msg.payload.roomId).then((p) => {
          conn.send('media:capabilities', p, cid);
        });
      case 'transport:create':
        return this.#d.media.createTransport(session, msg.payload).then(({ created, announce }) => {
          conn.send('transport:created', created, cid);
          if (created.direction === 'recv') announce();
        });
      case 'transport:connect':
        return this.#d.media.connectTransport(session, msg.payload).then(() => {
          conn.send('transport:connected', { transportId: msg.payload.transportId }, cid);
        });
      case 'transport:restart-ice':
        return this.#d.media.restartIce(session, msg.payload.transportId).then((p) => {
          conn.send('transport:ice-restarted', p, cid);
        });
      case 'produce':
        return this.#d.media
          .produce(session, msg.payload, (roomId) => this.#d.floor.holds(session, roomId))
          .then((p) => conn.send('produced', p, cid));
      case 'consume':
        return this.#d.media.consume(session, msg.payload).then((p) => conn.send('consumed', p, cid));
      case 'consumer:resume':
        return this.#d.media.resumeConsumer(session, msg.payload.consumerId).then(() => {
          conn.send('consumer:resumed', { consumerId: msg.payload.consumerId }, cid);
        });
      case 'producer:close':
        return this.#d.media.closeProducer(session, msg.payload.producerId).then((p) => {
          conn.send('producer:closed', p, cid);
        });
      case 'ptt:start':
        return this.#d.floor.start(session, msg.payload.roomId).then((r) => {
          if (r.type === 'ptt:granted') conn.send('ptt:granted', r.payload, cid);
          else if (r.type === 'ptt:denied') conn.send('ptt:denied', r.payload, cid);
          else conn.send('ptt:queued', r.payload, cid);
        });
      case 'ptt:stop':
        return this.#d.floor.stop(session, msg.payload.roomId).then((p) => conn.send('ptt:stopped', p, cid));
      default:
        return assertNever(msg);
    }
  }

  /** Authenticates a connection that came without a token, or refreshes the token of one that did. */
  async #authRequest(conn: Connection, token: string, cid?: string): Promise<void> {
    const result = await this.#d.verifier.verify(token);
    if (!result.ok) {
      this.#d.log.info(
        { conn: conn.id, remote: conn.remoteAddress, reason: result.reason },
        'in-band auth refused',
      );
      conn.sendError('UNAUTHORIZED', cid);
      if (!conn.identity) conn.closeFor('UNAUTHORIZED', 'unauthorized');
      return;
    }
    const identity = result.identity;
    if (conn.identity) {
      // Token refresh on a live connection: same user only.
      if (identity.userId !== conn.identity.userId) {
        throw new ParleyError('FORBIDDEN', 'a connection cannot change user; open a new connection');
      }
      conn.identity = identity;
      if (conn.session) conn.session.identity = identity;
      conn.send('auth:response', { userId: identity.userId, name: identity.name }, cid);
      return;
    }
    if (conn.closed) return; // the auth deadline fired while the token was being verified
    conn.identity = identity;
    conn.send('auth:response', { userId: identity.userId, name: identity.name }, cid);
    await this.welcome(conn);
  }

  /** Creates the connection's session and sends `welcome`. */
  async welcome(conn: Connection): Promise<Session | null> {
    const identity = conn.identity;
    if (!identity || conn.closed) return null;
    const { session, resumeToken } = await this.#d.sessions.open(identity, conn);
    const { config } = this.#d;
    conn.send('welcome', {
      sessionId: session.id,
      userId: identity.userId,
      name: identity.name,
      protocolVersion: PROTOCOL_VERSION,
      serverTime: Date.now(),
      heartbeatIntervalMs: config.limits.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
      resumeToken,
      resumeGraceMs: config.resumeGraceMs,
    });
    this.#d.log.info({ conn: conn.id, session: session.id, userId: identity.userId }, 'session opened');
    return session;
  }

  async #resume(conn: Connection, token: string, cid?: string): Promise<void> {
    let replayed = 0;
    const session = await this.#d.sessions.resume(token, conn, (s, resumeToken, buffered, missedFrames) => {
      conn.send(
        'session:resumed',
        { sessionId: s.id, rooms: [...s.rooms.keys()], resumeToken, missedFrames },
        cid,
      );
      for (const f of buffered) conn.sendFrame(f);
      replayed = buffered.length;
    });
    // Snapshots last: they are authoritative over any buffered presence events.
    for (const roomId of session.rooms.keys()) {
      const state = await this.#d.rooms.stateFor(session, roomId);
      if (state) conn.send('room:state', state);
    }
    this.#d.log.info({ conn: conn.id, session: session.id, replayed }, 'session resumed');
  }
}

function assertNever(x: never): never {
  throw new Error(`unhandled message type: ${JSON.stringify(x)}`);
}
