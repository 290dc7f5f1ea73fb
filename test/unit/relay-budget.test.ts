import { describe, expect, it } from 'vitest';
import { RelayBudget } from '../../src/server/calls/relay-budget.js';
import { defaults } from '../../src/server/config/defaults.js';
import { ParleyError } from '../../src/server/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

const LIMITS = { bytesPerSec: 1_000, burstBytes: 2_000, messagesPerSec: 10, burstMessages: 20 };

/** Takes `n` messages of `bytes` from the pair; how many were let through (the rest: RELAY_BUDGET_EXCEEDED). */
function takeN(
  budget: RelayBudget,
  n: number,
  from: string,
  to: string,
  bytes: number,
  now?: number,
): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      budget.take(from, to, bytes, now);
      ok++;
    } catch (err) {
      expect(err).toBeInstanceOf(ParleyError);
      expect((err as ParleyError).code).toBe('RELAY_BUDGET_EXCEEDED');
      expect((err as ParleyError).details).toEqual({ recipientId: to });
    }
  }
  return ok;
}

describe('RelayBudget: per (sender, recipient) pair, in messages and in bytes', () => {
  it('refuses past the burst and refills at the configured rates', async () => {
    const clock = new FakeClock();
    const budget = new RelayBudget(LIMITS, clock);
    expect(takeN(budget, 25, 'alice', 'bob', 10)).toBe(20); // messages run out first
    await clock.advance(500);
    expect(takeN(budget, 10, 'alice', 'bob', 10)).toBe(5);
    // Bytes run out first: 2,000 bytes of burst is two 900-byte messages.
    expect(takeN(budget, 5, 'carol', 'bob', 900)).toBe(2);
    await clock.advance(900); // +900 bytes
    expect(takeN(budget, 5, 'carol', 'bob', 900)).toBe(1);
  });

  it('keeps each pair apart: other recipients of the sender, other senders to the recipient', () => {
    const budget = new RelayBudget(LIMITS, new FakeClock());
    expect(takeN(budget, 25, 'alice', 'bob', 1)).toBe(20);
    expect(takeN(budget, 25, 'alice', 'dave', 1)).toBe(20);
    expect(takeN(budget, 25, 'carol', 'bob', 1)).toBe(20);
    expect(takeN(budget, 25, 'bob', 'alice', 1)).toBe(20);
    expect(budget.sizeForTesting).toBe(4);
  });

  it("an arrival time older than the pair's last refill gives nothing back and takes nothing extra", () => {
    const clock = new FakeClock();
    const budget = new RelayBudget(LIMITS, clock);
    expect(takeN(budget, 10, 'alice', 'bob', 1, 1_000)).toBe(10);
    // A message that waited behind earlier ones on another connection of alice's: arrived at 400.
    expect(takeN(budget, 10, 'alice', 'bob', 1, 400)).toBe(10);
    expect(takeN(budget, 1, 'alice', 'bob', 1, 1_000)).toBe(0);
    // Refill counts from the latest time seen (1,000 ms), not from 400.
    expect(takeN(budget, 10, 'alice', 'bob', 1, 1_500)).toBe(5);
  });

  it('past the prune threshold, forgets pairs whose budget is full again and keeps the others', async () => {
    const clock = new FakeClock();
    const budget = new RelayBudget(LIMITS, clock);
    const n = defaults.relayBudgetPruneAtPairs;
    // Half the pairs by one sender, half by many: both levels of the map.
    for (let i = 0; i < n; i++) budget.take(i % 2 === 0 ? 'alice' : `s${i}`, `r${i}`, 1);
    expect(budget.sizeForTesting).toBe(n);
    await clock.advance(10_000); // every pair is full again
    expect(takeN(budget, 25, 'eve', 'bob', 1)).toBe(20); // drained, and the prune ran first
    expect(budget.sizeForTesting).toBe(1);
    // The drained pair is not forgotten by the next prune: it is still short.
    for (let i = 0; i < n; i++) budget.take('mallory', `x${i}`, 1);
    expect(budget.sizeForTesting).toBe(n + 1);
    budget.take('trent', 'bob', 1); // triggers a prune: the 10,000 mallory pairs are not full (1 taken, no time passed)
    expect(budget.sizeForTesting).toBe(n + 2);
    expect(takeN(budget, 1, 'eve', 'bob', 1)).toBe(0);
  });
});
