import { describe, expect, it } from 'vitest';
import { HeartbeatSweep } from '../../src/server/signaling/heartbeat-sweep.js';

/** Runs `ticks` ticks and returns, per tick, the items visited. */
function run(sweep: HeartbeatSweep<number>, seen: number[], ticks: number, between?: (t: number) => void) {
  const perTick: number[][] = [];
  for (let t = 0; t < ticks; t++) {
    const before = seen.length;
    sweep.tick();
    perTick.push(seen.slice(before));
    between?.(t);
  }
  return perTick;
}

describe('heartbeat sweep', () => {
  it('cuts a 30 s interval into 30 ticks of a second, and keeps one sweep below 1.5 s', () => {
    const items = new Set<number>();
    expect(new HeartbeatSweep(items, 30_000, () => undefined)).toMatchObject({ slices: 30, tickMs: 1_000 });
    expect(new HeartbeatSweep(items, 10_000, () => undefined)).toMatchObject({ slices: 10, tickMs: 1_000 });
    expect(new HeartbeatSweep(items, 2_500, () => undefined)).toMatchObject({ slices: 3 });
    expect(new HeartbeatSweep(items, 1_000, () => undefined)).toMatchObject({ slices: 1, tickMs: 1_000 });
    expect(new HeartbeatSweep(items, 200, () => undefined)).toMatchObject({ slices: 1, tickMs: 200 });
    expect(new HeartbeatSweep(items, 3_600_000, () => undefined)).toMatchObject({
      slices: 60,
      tickMs: 60_000,
    });
  });

  it('visits every item exactly once per interval, a share per tick, never all in one tick', () => {
    const items = new Set(Array.from({ length: 1_000 }, (_, i) => i));
    const seen: number[] = [];
    const sweep = new HeartbeatSweep(items, 30_000, (i) => seen.push(i));
    const perTick = run(sweep, seen, 90);
    for (let pass = 0; pass < 3; pass++) {
      const visited = perTick.slice(pass * 30, pass * 30 + 30).flat();
      expect(visited).toHaveLength(1_000);
      expect(new Set(visited).size).toBe(1_000);
    }
    expect(Math.max(...perTick.map((t) => t.length))).toBe(34); // ceil(1000 / 30)
    expect(Math.min(...perTick.map((t) => t.length))).toBe(33);
    // The same point of the interval each time.
    expect(perTick[5]).toEqual(perTick[35]);
  });

  it('visits a lone item once per interval, not once per tick', () => {
    const items = new Set([7]);
    const seen: number[] = [];
    const perTick = run(new HeartbeatSweep(items, 30_000, (i) => seen.push(i)), seen, 60);
    expect(seen).toEqual([7, 7]);
    expect(perTick[0]).toEqual([7]);
    expect(perTick[30]).toEqual([7]);
  });

  it('skips items removed before their turn and picks up items added during a pass by the next pass at the latest', () => {
    const items = new Set(Array.from({ length: 300 }, (_, i) => i));
    const seen: number[] = [];
    const sweep = new HeartbeatSweep(items, 30_000, (i) => seen.push(i));
    const perTick = run(sweep, seen, 60, (t) => {
      if (t === 0) {
        items.delete(299); // not visited yet: never visited
        items.delete(0); // visited already in tick 0
        for (let i = 1_000; i < 1_200; i++) items.add(i); // a ramp during the pass
      }
    });
    const first = perTick.slice(0, 30).flat();
    const second = perTick.slice(30, 60).flat();
    expect(first).not.toContain(299);
    expect(first).toHaveLength(300); // its share: the 300 there were when it began
    expect(first.filter((i) => i >= 1_000)).toHaveLength(1); // one took 299's place at the end
    // No tick of the first pass visited more than its share despite the ramp.
    expect(Math.max(...perTick.slice(0, 30).map((t) => t.length))).toBe(10);
    // The second pass visits everything there is, once.
    expect(second).toHaveLength(items.size);
    expect(new Set(second)).toEqual(items);
  });

  it('does nothing on an empty set and starts visiting items added later', () => {
    const items = new Set<number>();
    const seen: number[] = [];
    const sweep = new HeartbeatSweep(items, 3_000, (i) => seen.push(i));
    run(sweep, seen, 3);
    expect(seen).toEqual([]);
    items.add(1);
    items.add(2);
    run(sweep, seen, 3);
    expect(seen.sort()).toEqual([1, 2]);
  });

  it('lets a visit remove the item it is visiting (a terminated connection) without losing the next one', () => {
    const items = new Set([1, 2, 3, 4]);
    const seen: number[] = [];
    const sweep = new HeartbeatSweep(items, 1_000, (i) => {
      seen.push(i);
      if (i % 2 === 0) items.delete(i);
    });
    sweep.tick();
    expect(seen).toEqual([1, 2, 3, 4]);
    expect([...items]).toEqual([1, 3]);
    sweep.tick();
    expect(seen).toEqual([1, 2, 3, 4, 1, 3]);
  });
});
