import type { Clock, Timer } from '../../src/server/time/clock.js';

interface Scheduled {
  id: number;
  at: number;
  fn: () => void;
  every: number | null;
}

/**
 * A clock that only moves when a test says so. `advance(ms)` runs every timer that falls due, in
 * order, at its own instant, and lets promises settle after each, so code under test sees the
 * same sequence it would in real time, in microseconds of real time.
 */
export class FakeClock implements Clock {
  #wall: number;
  #mono = 0;
  #nextId = 1;
  readonly #timers = new Map<number, Scheduled>();

  constructor(startWallMs = Date.UTC(2026, 0, 1)) {
    this.#wall = startWallMs;
  }

  now(): number {
    return this.#wall + this.#mono;
  }

  monotonic(): number {
    return this.#mono;
  }

  /** Timers still scheduled. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Milliseconds until the earliest scheduled timer falls due (null: none is scheduled). */
  nextDueIn(): number | null {
    const next = this.#due(Number.POSITIVE_INFINITY);
    return next ? next.at - this.#mono : null;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.#schedule(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.#schedule(fn, ms, Math.max(1, ms));
  }

  clearTimeout(timer: Timer): void {
    this.#timers.delete((timer as FakeTimer).id);
  }

  clearInterval(timer: Timer): void {
    this.clearTimeout(timer);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Moves time forward by `ms`, running what falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.#mono + ms;
    await settle();
    for (;;) {
      const next = this.#due(target);
      if (!next) break;
      this.#mono = next.at;
      if (next.every === null) this.#timers.delete(next.id);
      else next.at += next.every;
      next.fn();
      await settle();
    }
    this.#mono = target;
    await settle();
  }

  #due(target: number): Scheduled | null {
    let first: Scheduled | null = null;
    for (const t of this.#timers.values()) {
      if (t.at <= target && (!first || t.at < first.at || (t.at === first.at && t.id < first.id))) first = t;
    }
    return first;
  }

  #schedule(fn: () => void, ms: number, every: number | null): Timer {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#mono + Math.max(0, ms), fn, every });
    return new FakeTimer(id);
  }
}

class FakeTimer implements Timer {
  constructor(readonly id: number) {}
  unref(): void {}
}

/** Lets every pending promise callback run (a macrotask turn, not a wait on time). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
