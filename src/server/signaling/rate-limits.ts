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
  /**
   * Buckets by user id and by address, in two maps keyed by the strings themselves: a `user:<id>`
   * key built per message was a new string to hash on every lookup.
   */
  readonly #users = new Map<string, Entry>();
  readonly #addresses = new Map<string, Entry>();
  /** The clock for the buckets, one function shared by all of them. */
  readonly #now: () => number;
  #lastSweep: number;

  /** @param perSec refill rate (0: no limit). @param burst bucket size. */
  constructor(opts: { perSec: number; burst: number; clock: Clock }) {
    this.#perSec = opts.perSec;
    this.#burst = opts.burst;
    this.#clock = opts.clock;
    this.#idleMs = opts.perSec > 0 ? Math.ceil((opts.burst / opts.perSec) * 1000) : 0;
    this.#lastSweep = opts.clock.monotonic();
    this.#now = () => this.#clock.monotonic();
  }

  get disabled(): boolean {
    return this.#perSec === 0;
  }

  /** Buckets held now (users and addresses seen within the last refill period, at most). */
  get sizeForTesting(): number {
    return this.#users.size + this.#addresses.size;
  }

  /**
   * One inbound message from `userId` (null: not authenticated yet) at `address`, received at
   * `now` (the clock's monotonic ms; read here when not given). False: over the limit, drop it.
   */
  take(userId: string | null, address: string, now: number = this.#clock.monotonic()): boolean {
    if (this.#perSec === 0) return true;
    if (now - this.#lastSweep >= this.#idleMs) this.#sweep(now);
    const entries = userId !== null ? this.#users : this.#addresses;
    const key = userId ?? address;
    let entry = entries.get(key);
    if (!entry) {
      entry = { bucket: new TokenBucket(this.#perSec, this.#burst, this.#now), lastUsed: now };
      entries.set(key, entry);
    }
    entry.lastUsed = now;
    return entry.bucket.take(now);
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const entries of [this.#users, this.#addresses]) {
      for (const [key, entry] of entries) {
        if (now - entry.lastUsed >= this.#idleMs) entries.delete(key);
      }
    }
  }
}
