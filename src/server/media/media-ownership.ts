import type { ClusterLink } from '../cluster/cluster-link.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../time/clock.js';
import { Lease } from '../time/lease.js';

/**
 * This node's claim, in the cluster directory, to host the media of the rooms it has media for.
 * Each claim is a lease renewed every third of its TTL while the room's media is here, and
 * released when it goes; a node that dies stops renewing and its claims expire.
 */
export class MediaOwnership {
  readonly #cluster: ClusterLink;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #leases = new Map<string, Lease>();

  constructor(deps: { cluster: ClusterLink; log: Logger; clock: Clock; ttlMs: number }) {
    this.#cluster = deps.cluster;
    this.#log = deps.log;
    this.#clock = deps.clock;
    this.#ttlMs = deps.ttlMs;
  }

  /** The room's media came up here: claim it and keep the claim. */
  readonly keep = (roomId: string): void => {
    if (this.#leases.has(roomId)) return;
    const { directory, nodeId } = this.#cluster;
    const lease = new Lease({
      clock: this.#clock,
      log: this.#log,
      what: `media ownership of room ${roomId}`,
      intervalMs: Math.max(defaults.mediaOwnerRenewMinMs, Math.floor(this.#ttlMs / 3)),
      // The claim is kept trying while Redis is unreachable: the media is here either way.
      renew: () => directory.claimMediaOwner(roomId, nodeId, this.#ttlMs).then(() => true),
      lostOnError: false,
    });
    this.#leases.set(roomId, lease);
    lease.start({ renewNow: true });
  };

  /** The room's media went away here: stop claiming it and give it up. */
  readonly drop = (roomId: string): void => {
    this.#leases.get(roomId)?.close();
    this.#leases.delete(roomId);
    this.#cluster.directory.releaseMediaOwner(roomId, this.#cluster.nodeId).catch(() => undefined);
  };

  /** Shutdown: stops renewing every claim (they expire). Idempotent. */
  close(): void {
    for (const lease of this.#leases.values()) lease.close();
    this.#leases.clear();
  }
}
