/**
 * The heartbeat's schedule: every item of a live set is visited once per interval, a slice at a
 * time, so that the work is spread over the interval instead of falling in one synchronous burst.
 *
 * With one sweep of every connection per interval, a node holding 20,000 connections wrote 20,000
 * pings in one turn every 30 s (and read 20,000 pongs right after), which stalled the event loop
 * for tens of milliseconds; whatever else was in flight then (a PTT press to a 1,000-member channel,
 * say) waited behind it. Here the interval is cut into ticks of about a second, and each tick
 * visits its share of the set (the set's size over the ticks per interval, rounded up).
 *
 * A pass is one interval long and walks the set with one live iterator (a connection closed before
 * its turn is skipped), so each connection is visited once per interval, at about the same point
 * of it every time: the timeout check runs for each connection once per interval, as the single
 * sweep did.
 */
export class HeartbeatSweep<T> {
  /** Ticks per interval; intervals under 1.5 s keep one sweep of everything per interval. */
  readonly slices: number;
  /** Time between ticks. */
  readonly tickMs: number;
  readonly #items: ReadonlySet<T>;
  readonly #visit: (item: T) => void;
  #pass: Iterator<T> | null = null;
  /** Where the current pass is: its tick, the set's size when it began, the items visited. */
  #tickInPass = 0;
  #passSize = 0;
  #visited = 0;

  constructor(items: ReadonlySet<T>, intervalMs: number, visit: (item: T) => void) {
    this.#items = items;
    this.#visit = visit;
    this.slices = Math.max(1, Math.min(MAX_SLICES, Math.round(intervalMs / TARGET_TICK_MS)));
    this.tickMs = intervalMs / this.slices;
  }

  /**
   * Visits this tick's share of the pass. A pass is `slices` ticks long and covers the items there
   * were when it began (its tick k ends at the first k/slices of them); an item added during a pass
   * is visited by it only if one closed earlier made room, else by the next pass. So no tick visits
   * more than its share (a ramp of new connections does not pile onto the last tick), and a new item
   * waits at most two intervals for its first visit (one interval, as before, after that).
   */
  tick(): void {
    if (this.#tickInPass === 0) {
      this.#pass = this.#items.values();
      this.#passSize = this.#items.size;
      this.#visited = 0;
    }
    const due = Math.ceil((this.#passSize * (this.#tickInPass + 1)) / this.slices);
    const pass = this.#pass as Iterator<T>;
    while (this.#visited < due) {
      const next = pass.next();
      if (next.done) break;
      this.#visited++;
      this.#visit(next.value);
    }
    this.#tickInPass++;
    if (this.#tickInPass === this.slices) {
      this.#tickInPass = 0;
      this.#pass = null;
    }
  }
}

const TARGET_TICK_MS = 1_000;
const MAX_SLICES = 60;
