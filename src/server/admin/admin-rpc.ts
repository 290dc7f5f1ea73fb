import { errorBody, type ErrorBody } from '../../protocol/index.js';
import type { BusHeader } from '../cluster/bus.js';
import { BusCalls } from '../wire/bus-calls.js';
import type { ClusterLink } from '../cluster/cluster-link.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import { background } from '../lifecycle/background.js';
import type { Clock } from '../time/clock.js';
import type { AdminOp, AdminOpHandlers, AdminOpPayload, AdminOpResult } from './admin-ops.js';

/**
 * Runs server API operations on the node that can do them: here directly, elsewhere over the bus
 * (`admin-rpc`, answered by `admin-reply`, at most `adminRpcTimeoutMs`). On a single node every
 * call is local.
 */
export class AdminRpc {
  readonly #cluster: ClusterLink | null;
  readonly #local: AdminOpHandlers;
  readonly #log: Logger;
  readonly #calls: BusCalls;
  #closed = false;

  constructor(deps: { cluster: ClusterLink | null; local: AdminOpHandlers; clock: Clock; log: Logger }) {
    this.#cluster = deps.cluster;
    this.#local = deps.local;
    this.#calls = new BusCalls(deps.clock);
    this.#log = deps.log;
  }

  /** Runs `op` on `nodeId` (null or this node: here). */
  call<K extends AdminOp>(
    nodeId: string | null,
    op: K,
    payload: AdminOpPayload<K>,
  ): Promise<AdminOpResult<K>> {
    const cluster = this.#cluster;
    if (!cluster || nodeId === null || nodeId === cluster.nodeId) return this.#runLocal(op, payload);
    return this.#calls.call<AdminOpResult<K>>(
      (id) =>
        cluster.bus.publishToNode(nodeId, { t: 'admin-rpc', id, replyTo: cluster.nodeId, op, payload }, null),
      defaults.adminRpcTimeoutMs,
      `node "${nodeId}"`,
    );
  }

  /** Runs `op` here and on every other live node; the results in no particular order. */
  async everywhere<K extends AdminOp>(op: K, payload: AdminOpPayload<K>): Promise<AdminOpResult<K>[]> {
    const cluster = this.#cluster;
    if (!cluster) return [await this.#runLocal(op, payload)];
    let others: string[];
    try {
      others = (await cluster.directory.nodes())
        .filter((n) => n.alive && n.info.nodeId !== cluster.nodeId)
        .map((n) => n.info.nodeId);
    } catch {
      throw new ParleyError('SERVICE_UNAVAILABLE', 'the cluster directory is unavailable');
    }
    return Promise.all([this.#runLocal(op, payload), ...others.map((n) => this.call(n, op, payload))]);
  }

  /** Bus: another node asks this one to run an op. */
  readonly onRequest = (request: Extract<BusHeader, { t: 'admin-rpc' }>): void => {
    const cluster = this.#cluster;
    if (!cluster || this.#closed) return;
    const reply = (body: { ok: true; result: unknown } | ({ ok: false } & ErrorBody)) =>
      cluster.bus.publishToNode(request.replyTo, { t: 'admin-reply', id: request.id, ...body }, null);
    const work = this.#runLocal(request.op, request.payload as AdminOpPayload<AdminOp>).then(
      (result) => reply({ ok: true, result }),
      (err: unknown) => {
        if (err instanceof ParleyError)
          return reply({ ok: false, ...errorBody(err.code, err.message, err.details) });
        this.#log.error({ err, op: request.op }, 'server API operation failed');
        return reply({ ok: false, ...errorBody('INTERNAL') });
      },
    );
    background(work, this.#log, 'serve a server API operation');
  };

  /** Bus: the answer to an op this node forwarded. */
  readonly onReply = (reply: Extract<BusHeader, { t: 'admin-reply' }>): void => this.#calls.settle(reply);

  /** Shutdown: calls still waiting fail with SERVICE_UNAVAILABLE; requests are no longer served. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#calls.close();
  }

  #runLocal<K extends AdminOp>(op: K, payload: AdminOpPayload<K>): Promise<AdminOpResult<K>> {
    // The table is indexed by the op itself, so its handler takes exactly this payload.
    const handler = this.#local[op] as (p: AdminOpPayload<K>) => Promise<AdminOpResult<K>>;
    return handler(payload);
  }
}
