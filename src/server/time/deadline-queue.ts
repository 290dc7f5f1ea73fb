import type { Clock, Timer } from './clock.js';

/**
 * Something with one deadline at a time in a {@link DeadlineQueue}. The queue owns the three
 * fields (it sets them in `schedule` and `cancel`); the owner implements `onDue`.
 */
export interface Deadline {
  /** When it falls due, in the clock's ms (`Clock.now`). */
  dueAt: number;
  /** Position in the queue's heap; -1 when not queued. Start it at -1. */
  queueSlot: number;
  /** Scheduling order: ties on `dueAt` fall due in the order they were scheduled. */
  queueSeq: number;
  /** Called once when due, after it has left the queue (it may schedule itself again). */
  onDue(): void;
}

/** Node clamps a longer timeout to 1 ms (TimeoutOverflowWarning); a later deadline re-arms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Many deadlines on one timer: a binary heap ordered by due time, with the clock's timer armed for
 * the earliest. Built for what every idle connection holds (its token's expiry): a Node timer each
 * cost ~0.25 KiB (a `Timeout`, its closure and context, and a timer list per distinct duration;
 * docs/benchmarks.md), a place in the heap costs one array slot. Schedule and cancel are O(log n).
 *
 * Deadlines scheduled while due ones are being run (a handler scheduling the next step) wait for
 * the next turn of the timer, as a fresh timer of their own would: the run that found them due is
 * never extended by them, so other work (a refresh answered at once) can come in between.
 */
export class DeadlineQueue {
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  readonly #heap: Deadline[] = [];
  #seq = 0;
  #timer: Timer | null = null;
  /** When the armed timer fires (the clock's ms); Infinity when none is armed. */
  #timerAt = Infinity;

  /** @param onError a throwing `onDue` is reported here; the other deadlines still run. */
  constructor(clock: Clock, onError: (err: unknown) => void) {
    this.#clock = clock;
    this.#onError = onError;
  }

  /** Deadlines queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** Queues `d` to fall due at `at` (moving it if it was queued already). */
  schedule(d: Deadline, at: number): void {
    if (d.queueSlot >= 0) this.cancel(d);
    d.dueAt = at;
    d.queueSeq = this.#seq++;
    d.queueSlot = this.#heap.length;
    this.#heap.push(d);
    this.#up(d.queueSlot);
    this.#arm();
  }

  /** Takes `d` out of the queue. Idempotent. */
  cancel(d: Deadline): void {
    const i = d.queueSlot;
    if (i < 0) return;
    d.queueSlot = -1;
    const last = this.#heap.pop() as Deadline;
    if (i < this.#heap.length) {
      this.#heap[i] = last;
      last.queueSlot = i;
      this.#down(i);
      this.#up(last.queueSlot);
    }
    // The timer stays armed for a deadline that is gone: it fires, finds nothing due and re-arms.
    if (this.#heap.length === 0) this.#disarm();
  }

  #arm(): void {
    const first = this.#heap[0];
    if (!first) return this.#disarm();
    if (this.#timer && this.#timerAt <= first.dueAt) return;
    this.#disarm();
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(0, first.dueAt - this.#clock.now()));
    this.#timerAt = first.dueAt;
    this.#timer = this.#clock.setTimeout(this.#run, delay);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  readonly #run = (): void => {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    const before = this.#seq;
    for (let first = this.#heap[0]; first; first = this.#heap[0]) {
      if (first.dueAt > now || first.queueSeq >= before) break;
      this.cancel(first);
      try {
        first.onDue();
      } catch (err) {
        this.#onError(err);
      }
    }
    this.#arm();
  };

  #less(a: Deadline, b: Deadline): boolean {
    return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.queueSeq < b.queueSeq);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const d = heap[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(d, heap[p])) break;
      heap[i] = heap[p];
      heap[i].queueSlot = i;
      i = p;
    }
    heap[i] = d;
    d.queueSlot = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const d = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#less(heap[r], heap[l]) ? r : l;
      if (!this.#less(heap[c], d)) break;
      heap[i] = heap[c];
      heap[i].queueSlot = i;
      i = c;
    }
    heap[i] = d;
    d.queueSlot = i;
  }
}
