import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { Lease } from '../../src/server/time/lease.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = createLogger('silent');

describe('Lease on a fake clock', () => {
  it('renews every interval until closed, and nothing runs after close()', async () => {
    const clock = new FakeClock();
    let renewals = 0;
    const lease = new Lease({
      clock,
      log,
      what: 'test',
      intervalMs: 1_000,
      renew: () => Promise.resolve(++renewals > 0),
      lostOnError: true,
    }).start();
    await clock.advance(999);
    expect(renewals).toBe(0);
    await clock.advance(1);
    expect(renewals).toBe(1);
    await clock.advance(4_000);
    expect(renewals).toBe(5);
    lease.close();
    lease.close();
    lease.close();
    expect(clock.pending).toBe(0);
    await clock.advance(10_000);
    expect(renewals).toBe(5);
  });

  it('renews at once with renewNow', async () => {
    const clock = new FakeClock();
    let renewals = 0;
    new Lease({
      clock,
      log,
      what: 't',
      intervalMs: 500,
      renew: () => Promise.resolve(++renewals > 0),
      lostOnError: true,
    }).start({
      renewNow: true,
    });
    await clock.advance(0);
    expect(renewals).toBe(1);
  });

  it('a renewal that says "lost" calls onLost once and stops renewing', async () => {
    const clock = new FakeClock();
    let renewals = 0;
    let lost = 0;
    const lease = new Lease({
      clock,
      log,
      what: 'test',
      intervalMs: 100,
      renew: () => Promise.resolve(++renewals < 3),
      lostOnError: true,
      onLost: () => lost++,
    }).start();
    await clock.advance(1_000);
    expect(renewals).toBe(3);
    expect(lost).toBe(1);
    expect(lease.closed).toBe(true);
  });

  it('a failed renewal loses the lease only when lostOnError', async () => {
    for (const lostOnError of [true, false]) {
      const clock = new FakeClock();
      let renewals = 0;
      let lost = 0;
      new Lease({
        clock,
        log,
        what: 'test',
        intervalMs: 100,
        renew: () => (++renewals === 1 ? Promise.reject(new Error('redis down')) : Promise.resolve(true)),
        lostOnError,
        onLost: () => lost++,
      }).start();
      await clock.advance(500);
      expect(lost).toBe(lostOnError ? 1 : 0);
      expect(renewals).toBe(lostOnError ? 1 : 5);
    }
  });

  it('never starts a renewal while the previous one is still in flight', async () => {
    const clock = new FakeClock();
    let started = 0;
    let finish: (held: boolean) => void = () => undefined;
    new Lease({
      clock,
      log,
      what: 'test',
      intervalMs: 100,
      renew: () => {
        started++;
        return new Promise<boolean>((resolve) => (finish = resolve));
      },
      lostOnError: true,
    }).start();
    await clock.advance(1_000);
    expect(started).toBe(1);
    finish(true);
    await clock.advance(100);
    expect(started).toBe(2);
  });
});
