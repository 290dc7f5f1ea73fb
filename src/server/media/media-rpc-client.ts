import { randomUUID } from 'node:crypto';
import { isErrorCode } from '../../protocol/index.js';
import type { BusHeader, RemoteSessionInfo } from '../cluster/bus.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Session } from '../sessions/session.js';
import type { Clock, Timer } from '../time/clock.js';
import type { MediaOp, MediaOpPayload, MediaOpResult } from './media-ops.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

/**
 * Forwards a media operation to the node that hosts the room's media and waits for its answer
 * (`media-reply` on the bus), for at most `mediaRpcTimeoutMs` (defaults.ts).
 */
export class MediaRpcClient {
  readonly #cluster: ClusterLink;
  readonly #clock: Clock;
  readonly #pending = new Map<string, Pending>();
  #closed = false;

  constructor(cluster: ClusterLink, clock: Clock) {
    this.#cluster = cluster;
    this.#clock = clock;
  }

  readonly call = <K extends MediaOp>(
    nodeId: string,
    session: Session,
    op: K,
    payload: MediaOpPayload<K>,
    holdsFloor?: boolean,
  ): Promise<MediaOpResult<K>> => {
    if (this.#closed) return Promise.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    const cluster = this.#cluster;
    const id = randomUUID();
    const info: RemoteSessionInfo = {
      id: session.id,
      userId: session.userId,
      identity: {
        canPublish: session.identity.canPublish,
        canSubscribe: session.identity.canSubscribe,
        admin: session.identity.admin,
        publishSources: session.identity.publishSources ? [...session.identity.publishSources] : null,
      },
      rooms: [...session.rooms.keys()],
    };
    return new Promise((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(new ParleyError('SERVICE_UNAVAILABLE', 'the node hosting this room’s media did not answer'));
      }, defaults.mediaRpcTimeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      const header = {
        t: 'media-rpc' as const,
        id,
        replyTo: cluster.nodeId,
        session: info,
        op,
        payload,
        ...(holdsFloor === undefined ? {} : { holdsFloor }),
      };
      cluster.bus.publishToNode(nodeId, header, null).catch((err: unknown) => {
        this.#clock.clearTimeout(timer);
        this.#pending.delete(id);
        reject(
          err instanceof ParleyError ? err : new ParleyError('SERVICE_UNAVAILABLE', 'media node unreachable'),
        );
      });
    });
  };

  /** Bus: the owner node answered. */
  readonly settle = (reply: Extract<BusHeader, { t: 'media-reply' }>): void => {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    this.#clock.clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    // A newer node may answer with a code this one does not know yet.
    else
      p.reject(
        new ParleyError(isErrorCode(reply.code) ? reply.code : 'INTERNAL', reply.message, reply.details),
      );
  };

  /** Shutdown: every call still waiting fails with SERVICE_UNAVAILABLE. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const p of this.#pending.values()) {
      this.#clock.clearTimeout(p.timer);
      p.reject(new ParleyError('SERVICE_UNAVAILABLE', 'server shutting down'));
    }
    this.#pending.clear();
  }
}
