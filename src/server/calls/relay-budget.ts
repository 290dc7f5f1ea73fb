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
 * Kept on the sender's node, in memory: one Map lookup per relayed message, no shared state. A
 * sender connected to several nodes has a budget on each (bounded by the per-node connection caps).
 */
export class RelayBudget {
  readonly #limits: RelayBudgetLimits;
  readonly #clock: Clock;
  readonly #pairs = new Map<string, Bucket>();

  constructor(limits: RelayBudgetLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  /** Takes one message of `bytes` from the pair's budget, or throws RELAY_BUDGET_EXCEEDED. */
  take(senderId: string, recipientId: string, bytes: number): void {
    const l = this.#limits;
    const now = this.#clock.monotonic();
    const key = `${senderId}\u0000${recipientId}`;
    let b = this.#pairs.get(key);
    if (!b) {
      if (this.#pairs.size >= defaults.relayBudgetPruneAtPairs) this.#prune(now);
      b = { bytes: l.burstBytes, messages: l.burstMessages, last: now };
      this.#pairs.set(key, b);
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
    return this.#pairs.size;
  }

  #refill(b: Bucket, now: number): void {
    const l = this.#limits;
    const elapsedS = (now - b.last) / 1000;
    b.bytes = Math.min(l.burstBytes, b.bytes + elapsedS * l.bytesPerSec);
    b.messages = Math.min(l.burstMessages, b.messages + elapsedS * l.messagesPerSec);
    b.last = now;
  }

  #prune(now: number): void {
    const l = this.#limits;
    for (const [key, b] of this.#pairs) {
      this.#refill(b, now);
      if (b.bytes >= l.burstBytes && b.messages >= l.burstMessages) this.#pairs.delete(key);
    }
  }
}
