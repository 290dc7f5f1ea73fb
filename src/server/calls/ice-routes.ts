import type { Session } from '../sessions/session.js';
import type { DeliveryFilter } from '../sessions/user-delivery.js';

/**
 * Where one sender session's trickled ICE candidates for one call went last time, as the
 * multi-device rules and the recipient's whereabouts decided it: the relay plan of that call,
 * kept so that the next candidate needs no call key built and hashed, no record lookups, no
 * plan object and no session lookups (docs/benchmarks.md, issue 14, fifth pass).
 */
export interface IceRoute {
  readonly recipientId: string;
  readonly callId: string;
  /** This node's sessions of the recipient that get the candidates (empty: none here). */
  readonly local: readonly Session[];
  /** Other nodes with sessions of the recipient that get them, each sent `filter`. */
  readonly remoteNodes: readonly string[];
  readonly filter: DeliveryFilter;
  /** `UserMailbox.routesEpoch` when planned: sessions added or gone, here or in the directory cache. */
  readonly routesEpoch: number;
  /** `CallRecords.epoch` when planned: any call record changed or invalidated. */
  readonly recordsEpoch: number;
  /** Monotonic ms: the earliest expiry of what it was planned from (the record, the directory entry). */
  readonly expiresAt: number;
}

/**
 * One route per sender session: its last (recipient, call) of trickled candidates. Nearly every
 * candidate a session sends is for the call it is in, so one entry per session is the whole hit
 * rate, and checking it compares two strings instead of hashing one.
 *
 * A route holds only while everything it was planned from is unchanged: the same epochs of the
 * recipient's whereabouts and of the call records (every change bumps them: a call answered,
 * rejected or ended, on this node or reported by the bus; a session added, ended, resumed or moved
 * on this node; a directory invalidation), and before the earliest expiry of the cached record and
 * directory entry it used. The caller plans again (and stores the new route) otherwise.
 */
export class IceRoutes {
  readonly #bySender = new WeakMap<Session, IceRoute>();
  #hits = 0;

  /** The sender's route for (recipientId, callId), if it still holds at `now`. */
  get(
    sender: Session,
    recipientId: string,
    callId: string,
    routesEpoch: number,
    recordsEpoch: number,
    now: number,
  ): IceRoute | undefined {
    const r = this.#bySender.get(sender);
    if (
      r === undefined ||
      r.callId !== callId ||
      r.recipientId !== recipientId ||
      r.routesEpoch !== routesEpoch ||
      r.recordsEpoch !== recordsEpoch ||
      now >= r.expiresAt
    )
      return undefined;
    this.#hits++;
    return r;
  }

  set(sender: Session, route: IceRoute): void {
    this.#bySender.set(sender, route);
  }

  /** Candidates relayed through a kept route (tests). */
  get hitsForTesting(): number {
    return this.#hits;
  }
}
