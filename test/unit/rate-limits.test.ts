import { describe, expect, it } from 'vitest';
import { RateLimits } from '../../src/server/signaling/rate-limits.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** Takes `n` messages; how many were let through. */
function takeN(limits: RateLimits, n: number, userId: string | null, address: string): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (limits.take(userId, address)) ok++;
  return ok;
}

describe('RateLimits: per user and per address, across connections', () => {
  it('a user has one bucket whatever connection (or reconnect) the messages come on', async () => {
    const clock = new FakeClock();
    const limits = new RateLimits({ perSec: 10, burst: 20, clock });
    // The burst, then nothing: a "reconnect" is the same user id and gets no fresh burst.
    expect(takeN(limits, 25, 'mallory', '10.0.0.1')).toBe(20);
    expect(takeN(limits, 5, 'mallory', '10.0.0.2')).toBe(0);
    // Refill at the configured rate: 10 per second.
    await clock.advance(500);
    expect(takeN(limits, 10, 'mallory', '10.0.0.1')).toBe(5);
    // Another user, at the same address, is unaffected.
    expect(takeN(limits, 20, 'alice', '10.0.0.1')).toBe(20);
  });

  it('before authentication the address has the bucket; other addresses are unaffected', () => {
    const clock = new FakeClock();
    const limits = new RateLimits({ perSec: 10, burst: 20, clock });
    expect(takeN(limits, 25, null, '10.0.0.9')).toBe(20);
    expect(takeN(limits, 1, null, '10.0.0.9')).toBe(0);
    expect(takeN(limits, 20, null, '10.0.0.10')).toBe(20);
    // Once authenticated, a connection from that address draws on its user's bucket instead.
    expect(takeN(limits, 20, 'bob', '10.0.0.9')).toBe(20);
  });

  it('holds memory only for users and addresses active within one refill period', async () => {
    const clock = new FakeClock();
    // An empty bucket refills in burst / rate = 2 s.
    const limits = new RateLimits({ perSec: 100, burst: 200, clock });
    for (let i = 0; i < 1_000; i++) limits.take(`u${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(limits.sizeForTesting).toBe(1_000);
    await clock.advance(1_000);
    limits.take('recent', '10.1.0.1');
    expect(limits.sizeForTesting).toBe(1_001);
    // Past the refill period every idle entry is as good as new, so it goes; the recent one stays.
    await clock.advance(1_000);
    limits.take('another', '10.1.0.2');
    expect(limits.sizeForTesting).toBe(2);
    // A drained bucket is not forgotten early: it is still empty a moment later.
    expect(takeN(limits, 300, 'flooder', '10.1.0.3')).toBe(200);
    await clock.advance(1_500);
    expect(takeN(limits, 300, 'flooder', '10.1.0.3')).toBe(150);
  });

  it('a user named like an address and that address have buckets of their own', () => {
    const clock = new FakeClock();
    const limits = new RateLimits({ perSec: 10, burst: 20, clock });
    expect(takeN(limits, 25, '10.0.0.1', '10.0.0.7')).toBe(20);
    expect(takeN(limits, 25, null, '10.0.0.1')).toBe(20);
    expect(limits.sizeForTesting).toBe(2);
  });

  it('takes the arrival time when given one, and reads its clock when not', async () => {
    const clock = new FakeClock();
    const limits = new RateLimits({ perSec: 10, burst: 20, clock });
    expect(takeN(limits, 20, 'alice', 'a')).toBe(20);
    // Half a second later by the caller's reading: 5 tokens back, whatever the clock says.
    let ok = 0;
    for (let i = 0; i < 10; i++) if (limits.take('alice', 'a', 500)) ok++;
    expect(ok).toBe(5);
    // The clock itself has not moved: reading it gives nothing more.
    expect(takeN(limits, 5, 'alice', 'a')).toBe(0);
    await clock.advance(1_000);
    expect(takeN(limits, 20, 'alice', 'a')).toBe(5);
  });

  it('RATE_LIMIT_PER_SEC=0 disables it and keeps nothing', () => {
    const limits = new RateLimits({ perSec: 0, burst: 1, clock: new FakeClock() });
    expect(takeN(limits, 1_000, 'u', 'a')).toBe(1_000);
    expect(limits.sizeForTesting).toBe(0);
  });
});
