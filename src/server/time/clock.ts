/**
 * Time as a dependency. Leases, grace windows, talk limits, reaping and rate limits read the time
 * and set timers through a `Clock`, so that unit tests can drive them on a fake clock in
 * milliseconds of real time (test/helpers/fake-clock.ts) instead of sleeping.
 */
export interface Timer {
  /** Lets the process exit while the timer is pending (no-op on a fake clock). */
  unref(): void;
}

export interface Clock {
  /** Wall-clock time in ms since the epoch, as `Date.now()`. */
  now(): number;
  /** Monotonic time in ms, as `performance.now()`: for durations, never for timestamps. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  setInterval(fn: () => void, ms: number): Timer;
  clearInterval(timer: Timer): void;
  /** Resolves after `ms` (an unref'd timer: it never holds the process open). */
  sleep(ms: number): Promise<void>;
}

/** The real clock. Timers are unref'd by their owners where the process must not wait for them. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
};
