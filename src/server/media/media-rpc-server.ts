import { errorBody, type ErrorBody } from '../../protocol/index.js';
import type { BusHeader } from '../cluster/bus.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Announced } from '../wire/announced.js';
import type { GuestRegistry } from './guest-registry.js';
import type { MediaOp, MediaOpPayload, MediaOpResult } from './media-ops.js';
import type { MediaService } from './media-service.js';
import type { RemoteSession } from './remote-session.js';

type Request = Extract<BusHeader, { t: 'media-rpc' }>;
type Reply = { ok: true; result: unknown } | ({ ok: false } & ErrorBody);

/** What serving one op yields: its result, and work to run once the reply is on its way. */
interface Served<K extends MediaOp> {
  result: MediaOpResult<K>;
  after?: () => void;
}
type OpHandler<K extends MediaOp> = (
  guest: RemoteSession,
  payload: MediaOpPayload<K>,
  request: Request,
) => Promise<Served<K>> | Served<K>;

/**
 * Serves media operations that other nodes forward to this one (it hosts the rooms' media): each
 * runs against the local MediaService on behalf of a guest stand-in, and its result or error goes
 * back to the asking node as `media-reply`.
 */
export class MediaRpcServer {
  readonly #cluster: ClusterLink;
  readonly #guests: GuestRegistry;
  readonly #log: Logger;
  readonly #ops: { [K in MediaOp]: OpHandler<K> };

  constructor(deps: { media: MediaService; cluster: ClusterLink; guests: GuestRegistry; log: Logger }) {
    const media = deps.media;
    this.#cluster = deps.cluster;
    this.#guests = deps.guests;
    this.#log = deps.log;
    const done = async <R>(p: Promise<R> | R) => ({ result: await p });
    // Announcements to the room go out after the reply, as on a local request.
    const announced = async <R>(p: Promise<Announced<R>> | Announced<R>) => {
      const { result, announce } = await p;
      return { result, after: () => void announce() };
    };
    const none = async (p: Promise<void>) => {
      await p;
      return { result: null };
    };
    this.#ops = {
      'media:capabilities': (g, p) => done(media.capabilities(g, p.roomId)),
      'transport:create': async (g, p) => ({
        result: await media.createTransport(g, p),
        // Existing producers are announced after the reply, as on a local request.
        ...(p.direction === 'recv' ? { after: () => media.announceExisting(g, p.roomId) } : {}),
      }),
      'transport:connect': (g, p) => none(media.connectTransport(g, p)),
      'transport:restart-ice': (g, p) => done(media.restartIce(g, p.transportId)),
      produce: (g, p, req) => announced(media.produce(g, p, () => req.holdsFloor ?? false)),
      consume: (g, p) => done(media.consume(g, p)),
      'consumer:resume': (g, p) => none(media.resumeConsumer(g, p.consumerId)),
      'consumer:pause': (g, p) => done(media.pauseConsumer(g, p.consumerId)),
      'consumer:set-preferred-layers': (g, p) => done(media.setPreferredLayers(g, p)),
      'producer:close': (g, p) => announced(media.closeProducer(g, p.producerId)),
      'producer:pause': (g, p) => announced(media.pauseProducer(g, p.producerId)),
      'producer:resume': (g, p) => announced(media.resumeProducer(g, p.producerId)),
      'floor-granted': (g, p) => none(media.floorGranted(g, p.roomId)),
      'floor-released': (g, p) => none(media.floorReleased(g, p.roomId)),
    };
  }

  /** Bus: another node forwards an operation. */
  async serve(request: Request, from: string): Promise<void> {
    const guest = this.#guests.upsert(request.session, from);
    let served: Served<MediaOp>;
    try {
      served = await this.#run(request.op, guest, request);
    } catch (err) {
      if (err instanceof ParleyError)
        await this.#reply(request, { ok: false, ...errorBody(err.code, err.message, err.details) });
      else {
        this.#log.error({ err, op: request.op }, 'remote media operation failed');
        await this.#reply(request, { ok: false, ...errorBody('INTERNAL') });
      }
      return;
    }
    await this.#reply(request, { ok: true, result: served.result ?? null });
    served.after?.();
  }

  #run<K extends MediaOp>(op: K, guest: RemoteSession, request: Request): Promise<Served<K>> | Served<K> {
    // The payload was written by a node of this cluster for this very op (MediaRpcClient.call).
    return this.#ops[op](guest, request.payload as MediaOpPayload<K>, request);
  }

  async #reply(request: Request, body: Reply): Promise<void> {
    await this.#cluster.bus
      .publishToNode(request.replyTo, { t: 'media-reply', id: request.id, ...body }, null)
      .catch(() => undefined);
  }
}
