import type { CallRelayType } from '../../protocol/index.js';
import type { Session } from '../sessions/session.js';
import type { DeliveryFilter } from '../sessions/user-delivery.js';

/**
 * Where one sender session's messages of one type in one call went last time, as the multi-device
 * rules and the recipient's whereabouts decided it: the relay plan of that call, kept so that the
 * next such message needs no call key built and hashed, no record lookups, no plan object and no
 * session lookups (docs/benchmarks.md, issue 14: trickled candidates since the fifth pass, offers
 * and answers in a known call since the eleventh).
 */
export interface CallRoute {
  /** The message type it was planned for: an offer and an answer track differently. */
  readonly type: CallRelayType;
  readonly recipientId: string;
  readonly callId: string;
  /** This node's sessions of the recipient that get the messages (empty: none here). */
  readonly local: readonly Session[];
  /** Other nodes with sessions of the recipient that get them, each sent `filter`. */
  readonly remoteNodes: readonly string[];
  readonly filter: DeliveryFilter;
  /** `UserMailbox.routesEpoch` when planned: sessions added or gone, here or in the directory cache. */
  readonly routesEpoch: number;
  /** `CallRecords.epoch` when planned: any call record changed or invalidated. */
  readonly recordsEpoch: number;
  /**
   * `CallRegistry.epoch` when planned (after the message was tracked), for a message the registry
   * tracks (offers and answers): any call of this node started, answered, ended or forgotten. Null
   * for candidates, which the registry does not track.
   */
  readonly callsEpoch: number | null;
  /** Monotonic ms: the earliest expiry of what it was planned from (the record, the directory entry). */
  readonly expiresAt: number;
}

/**
 * One route per sender session: its last (type, recipient, call). Nearly every candidate a session
 * sends is for the call it is in, and so is every renegotiation's offer or answer, so one entry per
 * session (one store for candidates, one for offers and answers) is the whole hit rate, and
 * checking it compares strings instead of hashing one.
 *
 * A route holds only while everything it was planned from is unchanged: the same epochs of the
 * recipient's whereabouts, of the call records and (offers and answers) of this node's call
 * registry (every change bumps them: a call started, answered, rejected or ended, on this node or
 * reported by the bus; a session added, ended, resumed or moved on this node; a directory
 * invalidation), and before the earliest expiry of the cached record and directory entry it used.
 * The caller plans again (and stores the new route) otherwise.
 */
export class CallRoutes {
  readonly #bySender = new WeakMap<Session, CallRoute>();
  #hits = 0;

  /** The sender's route for (type, recipientId, callId), if it still holds at `now`. */
  get(
    sender: Session,
    type: CallRelayType,
    recipientId: string,
    callId: string,
    routesEpoch: number,
    recordsEpoch: number,
    callsEpoch: number,
    now: number,
  ): CallRoute | undefined {
    const r = this.#bySender.get(sender);
    if (
      r === undefined ||
      r.type !== type ||
      r.callId !== callId ||
      r.recipientId !== recipientId ||
      r.routesEpoch !== routesEpoch ||
      r.recordsEpoch !== recordsEpoch ||
      (r.callsEpoch !== null && r.callsEpoch !== callsEpoch) ||
      now >= r.expiresAt
    )
      return undefined;
    this.#hits++;
    return r;
  }

  set(sender: Session, route: CallRoute): void {
    this.#bySender.set(sender, route);
  }

  /** Messages relayed through a kept route (tests). */
  get hitsForTesting(): number {
    return this.#hits;
  }
}
