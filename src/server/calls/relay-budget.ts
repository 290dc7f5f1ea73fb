import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Clock } from '../time/clock.js';

/** How much one sender may relay to one recipient: two token buckets, bytes and messages. */
export interface RelayBudgetLimits {
  bytesPerSec: number;
  burstBytes: number;
  messagesPerSec: number;
  burstMessages: number;
}

interface Bucket {
  bytes: number;
  messages: number;
  last: number;
}

/**
 * Per (sender user, recipient user) budget for relayed messages (1:1 calls and in-room relay).
 * A sender under its own rate limit could otherwise aim everything it may send at one receiver
 * and fill that receiver's send buffer until the server drops it (audit, issue 13: 60 KB offers
 * at a receiver reading 1 MB/s). Past the budget the SENDER is refused with
 * RELAY_BUDGET_EXCEEDED; the receiver never sees the excess.
 *
 * Kept on the sender's node, in memory: two Map lookups per relayed message (sender, then
 * recipient: both strings the relay already holds, so no key is built and hashed per message), no
 * shared state. A
 * sender connected to several nodes has a budget on each (bounded by the per-node connection caps).
 */
export class RelayBudget {
  readonly #limits: RelayBudgetLimits;
  readonly #clock: Clock;
  /** Buckets by sender, then by recipient. */
  readonly #pairs = new Map<string, Map<string, Bucket>>();
  /** How many (sender, recipient) buckets `#pairs` holds. */
  #size = 0;

  constructor(limits: RelayBudgetLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  /** Takes one message of `bytes` from the pair's budget, or throws RELAY_BUDGET_EXCEEDED. */
  take(senderId: string, recipientId: string, bytes: number, now: number = this.#clock.monotonic()): void {
    const l = this.#limits;
    let b = this.#pairs.get(senderId)?.get(recipientId);
    if (!b) {
      if (this.#size >= defaults.relayBudgetPruneAtPairs) this.#prune(now);
      b = { bytes: l.burstBytes, messages: l.burstMessages, last: now };
      let bySender = this.#pairs.get(senderId);
      if (!bySender) this.#pairs.set(senderId, (bySender = new Map<string, Bucket>()));
      bySender.set(recipientId, b);
      this.#size++;
    }
    this.#refill(b, now);
    if (b.messages < 1 || b.bytes < bytes) {
      throw new ParleyError(
        'RELAY_BUDGET_EXCEEDED',
        `too much relayed to "${recipientId}" right now; this message was not delivered`,
        { recipientId },
      );
    }
    b.messages -= 1;
    b.bytes -= bytes;
  }

  /** Pairs with a budget in use (tests and metrics). */
  get sizeForTesting(): number {
    return this.#size;
  }

  #refill(b: Bucket, now: number): void {
    const l = this.#limits;
    // `now` is when the message arrived; one that waited behind its connection's earlier messages
    // can be older than the pair's last refill (another connection of the sender's): no refill then.
    if (now <= b.last) return;
    const elapsedS = (now - b.last) / 1000;
    b.bytes = Math.min(l.burstBytes, b.bytes + elapsedS * l.bytesPerSec);
    b.messages = Math.min(l.burstMessages, b.messages + elapsedS * l.messagesPerSec);
    b.last = now;
  }

  #prune(now: number): void {
    const l = this.#limits;
    for (const [senderId, bySender] of this.#pairs) {
      for (const [recipientId, b] of bySender) {
        this.#refill(b, now);
        if (b.bytes >= l.burstBytes && b.messages >= l.burstMessages) {
          bySender.delete(recipientId);
          this.#size--;
        }
      }
      if (bySender.size === 0) this.#pairs.delete(senderId);
    }
  }
}
