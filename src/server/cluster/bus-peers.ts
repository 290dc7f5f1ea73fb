import type { Logger } from '../logger.js';
import { BUS_BATCH_FORMAT } from './bus.js';
import type { NodeInfo } from './directory.js';

/**
 * Which other nodes read batched bus publications (`encodeBusBatch`), as this node last saw the
 * node registry. A node of an earlier release decodes one message per publication and would drop
 * a whole batch, so during a rolling upgrade the bus batches only to nodes whose registry record
 * says `bus >= BUS_BATCH_FORMAT`, and sends single messages (the old format) to every other node.
 *
 * The check on the relay path is a local map lookup. The map is refreshed from the registry on
 * every heartbeat tick (`seen`, node-registry.ts); a node not in it yet is looked up once, in the
 * background, and gets single messages until the answer is in (safe either way, only less batched).
 */
export class BusPeers {
  readonly #lookup: (nodeId: string) => Promise<NodeInfo | null>;
  readonly #log: Logger;
  readonly #readsBatches = new Map<string, boolean>();
  readonly #asking = new Set<string>();

  /** `lookup` reads one node's registry record (null: not registered). */
  constructor(deps: { lookup: (nodeId: string) => Promise<NodeInfo | null>; log: Logger }) {
    this.#lookup = deps.lookup;
    this.#log = deps.log;
  }

  /** Whether `nodeId` is known to read batches. Unknown: false, and its record is fetched once. */
  readsBatches(nodeId: string): boolean {
    const known = this.#readsBatches.get(nodeId);
    if (known !== undefined) return known;
    this.#ask(nodeId);
    return false;
  }

  /**
   * The whole registry as just read: every record's capability replaces what was known (a node
   * restarted on another release says so at its first heartbeat), and nodes no longer registered
   * are forgotten.
   */
  seen(nodes: readonly NodeInfo[]): void {
    const present = new Set<string>();
    for (const info of nodes) {
      present.add(info.nodeId);
      this.#readsBatches.set(info.nodeId, readsBatches(info));
    }
    for (const nodeId of this.#readsBatches.keys())
      if (!present.has(nodeId)) this.#readsBatches.delete(nodeId);
  }

  #ask(nodeId: string): void {
    if (this.#asking.has(nodeId)) return;
    this.#asking.add(nodeId);
    this.#lookup(nodeId)
      .then((info) => {
        // A registry tick that answered meanwhile is as fresh: keep it.
        if (!this.#readsBatches.has(nodeId))
          this.#readsBatches.set(nodeId, info ? readsBatches(info) : false);
      })
      .catch((err: unknown) => this.#log.debug({ err, nodeId }, 'bus peer lookup failed; will ask again'))
      .finally(() => this.#asking.delete(nodeId));
  }
}

function readsBatches(info: NodeInfo): boolean {
  return typeof info.bus === 'number' && info.bus >= BUS_BATCH_FORMAT;
}
