import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/server/signaling/rate-limiter.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('TokenBucket on a fake clock', () => {
  it('admits a burst, refuses past it, and refills at the configured rate', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(10, 5, () => clock.monotonic());
    for (let i = 0; i < 5; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    await clock.advance(99);
    expect(bucket.take()).toBe(false);
    await clock.advance(1); // 100 ms at 10/s: one token
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    await clock.advance(60_000); // refills to the burst size, never beyond
    for (let i = 0; i < 5; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });

  it('rate 0 disables limiting', () => {
    const bucket = new TokenBucket(0, 1, () => 0);
    expect(bucket.disabled).toBe(true);
    for (let i = 0; i < 1_000; i++) expect(bucket.take()).toBe(true);
  });
});
