import type { Clock } from '../time/clock.js';
import { TokenBucket } from './rate-limiter.js';

interface Entry {
  readonly bucket: TokenBucket;
  lastUsed: number;
}

/**
 * The message rate limit (RATE_LIMIT_PER_SEC, RATE_LIMIT_BURST), kept per user and per address
 * rather than per connection, so that reconnecting does not hand a flooder a fresh burst (issue 13):
 * an authenticated connection draws on its user's bucket (every connection and every reconnect of
 * that user on this node share it), one not yet authenticated on its address's bucket.
 *
 * Memory stays bounded without timers: a bucket left alone for as long as it takes to refill
 * completely is exactly a new bucket, so such entries are dropped, swept at most once per that
 * period. What is left is the users and addresses that sent something in the last refill period.
 */
export class RateLimits {
  readonly #perSec: number;
  readonly #burst: number;
  readonly #clock: Clock;
  /** Time for an empty bucket to fill up again: after that long idle, an entry can go. */
  readonly #idleMs: number;
  readonly #entries = new Map<string, Entry>();
  #lastSweep: number;

  /** @param perSec refill rate (0: no limit). @param burst bucket size. */
  constructor(opts: { perSec: number; burst: number; clock: Clock }) {
    this.#perSec = opts.perSec;
    this.#burst = opts.burst;
    this.#clock = opts.clock;
    this.#idleMs = opts.perSec > 0 ? Math.ceil((opts.burst / opts.perSec) * 1000) : 0;
    this.#lastSweep = opts.clock.monotonic();
  }

  get disabled(): boolean {
    return this.#perSec === 0;
  }

  /** Buckets held now (users and addresses seen within the last refill period, at most). */
  get sizeForTesting(): number {
    return this.#entries.size;
  }

  /**
   * One inbound message from `userId` (null: not authenticated yet) at `address`. False: over the
   * limit, drop it.
   */
  take(userId: string | null, address: string): boolean {
    if (this.#perSec === 0) return true;
    const now = this.#clock.monotonic();
    if (now - this.#lastSweep >= this.#idleMs) this.#sweep(now);
    const key = userId !== null ? `user:${userId}` : `addr:${address}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {
        bucket: new TokenBucket(this.#perSec, this.#burst, () => this.#clock.monotonic()),
        lastUsed: now,
      };
      this.#entries.set(key, entry);
    }
    entry.lastUsed = now;
    return entry.bucket.take();
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastUsed >= this.#idleMs) this.#entries.delete(key);
    }
  }
}
