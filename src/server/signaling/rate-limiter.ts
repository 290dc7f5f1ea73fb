/**
 * Per-connection token bucket. `take()` is called once per inbound message; it refills lazily from
 * the clock, so an idle connection costs nothing.
 */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /**
   * @param perSec refill rate; 0 disables limiting. @param burst bucket size.
   * @param now monotonic time in ms (a Clock's `monotonic`). Default `performance.now()`.
   */
  constructor(perSec: number, burst: number, now: () => number = () => performance.now()) {
    this.#ratePerMs = perSec / 1000;
    this.#capacity = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#last = now();
  }

  get disabled(): boolean {
    return this.#ratePerMs === 0;
  }

  /** One token, at `now` (monotonic ms; the bucket's clock is read when not given). */
  take(now: number = this.#now()): boolean {
    if (this.#ratePerMs === 0) return true;
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#ratePerMs);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
