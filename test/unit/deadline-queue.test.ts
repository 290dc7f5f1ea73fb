import { describe, expect, it } from 'vitest';
import { DeadlineQueue, type Deadline } from '../../src/server/time/deadline-queue.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A deadline that records when (on the clock) it fell due, under its name. */
function deadline(name: string, clock: FakeClock, fired: string[], then?: () => void): Deadline {
  return {
    dueAt: 0,
    queueSlot: -1,
    queueSeq: 0,
    onDue() {
      fired.push(`${name}@${clock.now() - T0}`);
      then?.();
    },
  };
}

const T0 = Date.UTC(2026, 0, 1);

describe('DeadlineQueue on a fake clock', () => {
  it('runs deadlines at their own time, in due order, ties in scheduling order, on one timer', async () => {
    const clock = new FakeClock(T0);
    const q = new DeadlineQueue(clock, (err) => {
      throw err;
    });
    const fired: string[] = [];
    // Scheduled out of order, 200 of them at 20 distinct times.
    const all: Deadline[] = [];
    for (let i = 0; i < 200; i++) {
      const d = deadline(`d${i}`, clock, fired);
      all.push(d);
      q.schedule(d, T0 + 1_000 * (20 - (i % 20)));
    }
    expect(q.size).toBe(200);
    expect(clock.pending).toBe(1); // one timer for all of them
    await clock.advance(999);
    expect(fired).toEqual([]);
    await clock.advance(1);
    // Due at 1,000: i % 20 === 19, in the order scheduled.
    expect(fired).toEqual([19, 39, 59, 79, 99, 119, 139, 159, 179, 199].map((i) => `d${i}@1000`));
    await clock.advance(19_000);
    expect(fired).toHaveLength(200);
    const times = fired.map((f) => Number(f.split('@')[1]));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
    expect(all.every((d) => d.queueSlot === -1)).toBe(true);
  });

  it('cancel takes a deadline out wherever it is (idempotent), and the timer goes with the last', async () => {
    const clock = new FakeClock(T0);
    const q = new DeadlineQueue(clock, (err) => {
      throw err;
    });
    const fired: string[] = [];
    const ds = Array.from({ length: 50 }, (_, i) => deadline(`d${i}`, clock, fired));
    ds.forEach((d, i) => q.schedule(d, T0 + 100 + ((i * 37) % 50) * 10));
    // Every other one cancelled, three times each: first, middle and last of the heap alike.
    for (let i = 0; i < 50; i += 2) for (let k = 0; k < 3; k++) q.cancel(ds[i]);
    expect(q.size).toBe(25);
    await clock.advance(1_000);
    expect(fired.map((f) => f.split('@')[0]).sort()).toEqual(
      ds
        .filter((_, i) => i % 2 === 1)
        .map((_, j) => `d${2 * j + 1}`)
        .sort(),
    );
    const times = fired.map((f) => Number(f.split('@')[1]));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const one = deadline('one', clock, fired);
    q.schedule(one, T0 + 5_000);
    expect(clock.pending).toBe(1);
    q.cancel(one);
    q.cancel(one);
    expect(clock.pending).toBe(0);
    await clock.advance(10_000);
    expect(fired).toHaveLength(25);
  });

  it('scheduling again moves a deadline; an earlier one re-arms the timer sooner', async () => {
    const clock = new FakeClock(T0);
    const q = new DeadlineQueue(clock, (err) => {
      throw err;
    });
    const fired: string[] = [];
    const a = deadline('a', clock, fired);
    const b = deadline('b', clock, fired);
    q.schedule(a, T0 + 5_000);
    q.schedule(b, T0 + 3_000);
    q.schedule(a, T0 + 1_000); // moved earlier
    expect(q.size).toBe(2);
    await clock.advance(1_000);
    expect(fired).toEqual(['a@1000']);
    q.schedule(b, T0 + 8_000); // moved later
    await clock.advance(6_000);
    expect(fired).toEqual(['a@1000']);
    await clock.advance(1_000);
    expect(fired).toEqual(['a@1000', 'b@8000']);
  });

  it('a deadline its own handler schedules (already due) waits for the next turn of the timer', async () => {
    const clock = new FakeClock(T0);
    const q = new DeadlineQueue(clock, (err) => {
      throw err;
    });
    const fired: string[] = [];
    const follow = deadline('follow', clock, fired);
    const first = deadline('first', clock, fired, () => {
      q.schedule(follow, T0); // in the past: due at once, but not in this run
      expect(fired).toEqual(['first@100']);
    });
    q.schedule(first, T0 + 100);
    await clock.advance(100);
    expect(fired).toEqual(['first@100', 'follow@100']);
    expect(q.size).toBe(0);
  });

  it('a throwing handler is reported and the other due deadlines still run', async () => {
    const clock = new FakeClock(T0);
    const errors: unknown[] = [];
    const q = new DeadlineQueue(clock, (err) => errors.push(err));
    const fired: string[] = [];
    q.schedule(deadline('a', clock, fired), T0 + 10);
    q.schedule(
      deadline('bad', clock, fired, () => {
        throw new Error('handler broke');
      }),
      T0 + 10,
    );
    q.schedule(deadline('c', clock, fired), T0 + 10);
    q.schedule(deadline('d', clock, fired), T0 + 20);
    await clock.advance(20);
    expect(fired).toEqual(['a@10', 'bad@10', 'c@10', 'd@20']);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('handler broke');
  });

  it('a deadline beyond what a Node timer can hold (24.8 days) still falls due at its time', async () => {
    const clock = new FakeClock(T0);
    const q = new DeadlineQueue(clock, (err) => {
      throw err;
    });
    const fired: string[] = [];
    const days40 = 40 * 86_400_000;
    q.schedule(deadline('far', clock, fired), T0 + days40);
    await clock.advance(days40 - 1);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual([`far@${days40}`]);
  });
});
