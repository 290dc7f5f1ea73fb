import type { BusHeader, RemoteSessionInfo } from '../cluster/bus.js';
import { BusCalls } from '../wire/bus-calls.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { defaults } from '../config/defaults.js';
import type { Session } from '../sessions/session.js';
import type { Clock } from '../time/clock.js';
import type { MediaOp, MediaOpPayload, MediaOpResult } from './media-ops.js';

/**
 * Forwards a media operation to the node that hosts the room's media and waits for its answer
 * (`media-reply` on the bus), for at most `mediaRpcTimeoutMs` (defaults.ts).
 */
export class MediaRpcClient {
  readonly #cluster: ClusterLink;
  readonly #calls: BusCalls;

  constructor(cluster: ClusterLink, clock: Clock) {
    this.#cluster = cluster;
    this.#calls = new BusCalls(clock);
  }

  readonly call = <K extends MediaOp>(
    nodeId: string,
    session: Session,
    op: K,
    payload: MediaOpPayload<K>,
    holdsFloor?: boolean,
  ): Promise<MediaOpResult<K>> => {
    const cluster = this.#cluster;
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
    return this.#calls.call<MediaOpResult<K>>(
      (id) =>
        cluster.bus.publishToNode(
          nodeId,
          {
            t: 'media-rpc',
            id,
            replyTo: cluster.nodeId,
            session: info,
            op,
            payload,
            ...(holdsFloor === undefined ? {} : { holdsFloor }),
          },
          null,
        ),
      defaults.mediaRpcTimeoutMs,
      'the node hosting this room’s media',
    );
  };

  /** Bus: the owner node answered. */
  readonly settle = (reply: Extract<BusHeader, { t: 'media-reply' }>): void => this.#calls.settle(reply);

  /** Shutdown: every call still waiting fails with SERVICE_UNAVAILABLE. Idempotent. */
  close(): void {
    this.#calls.close();
  }
}
