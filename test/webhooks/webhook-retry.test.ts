import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { WebhookQueue } from '../../src/server/webhooks/webhook-queue.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { waitUntil } from '../helpers/wait.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'webhook-secret-0123456789';
const TIMEOUT_MS = 5_000;
const BASE_MS = 1_000;

const body = (id: string) =>
  JSON.stringify({ id, event: 'node.up', createdAt: 1, node: 'n', address: 'a', startedAt: 1 });

/**
 * The queue's retry policy against a real HTTP receiver on 127.0.0.1, with time on a FakeClock:
 * timeouts and retry delays happen when the test moves the clock, so nothing here waits for them.
 */
describe('webhook retries', () => {
  let receiver: WebhookReceiver;
  let clock: FakeClock;
  let registry: Registry;
  let queue: WebhookQueue;
  const count = async (result: string) => {
    const text = await registry.getSingleMetricAsString('parley_webhook_deliveries_total');
    return Number(new RegExp(`result="${result}"} (\\d+)`).exec(text)?.[1] ?? 0);
  };

  beforeEach(async () => {
    receiver = await WebhookReceiver.start(SECRET);
    // Wall time now: the receiver checks the signature's timestamp against its own clock.
    clock = new FakeClock(Date.now());
    registry = new Registry();
    queue = new WebhookQueue({
      urls: [receiver.url],
      secret: SECRET,
      registry,
      log: createLogger('silent'),
      clock,
      maxAttempts: 3,
      retryBaseMs: BASE_MS,
      retryMaxMs: 30_000,
      timeoutMs: TIMEOUT_MS,
    });
  });
  afterEach(async () => {
    const closing = queue.close(0); // its flush deadline is on the fake clock
    await clock.advance(0);
    await closing;
    await receiver.close();
  });

  it('retries a receiver that times out, backing off (doubling), gives up after the attempt limit, then sends the next event', async () => {
    receiver.respond = (b) => (b.includes('"slow"') ? 'hang' : 200);
    queue.enqueue('slow', 'node.up', body('slow'), 'room-1');
    queue.enqueue('next', 'node.up', body('next'), 'room-1');
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await waitUntil(() => receiver.arrivals.length === attempt, `attempt ${attempt}`);
      expect(clock.nextDueIn()).toBeCloseTo(TIMEOUT_MS, 6); // the attempt's own deadline, nothing sooner
      await clock.advance(TIMEOUT_MS);
      if (attempt === 3) break;
      await waitUntil(async () => (await count('retried')) === attempt, `retry ${attempt} scheduled`);
      const delay = clock.nextDueIn() ?? -1;
      delays.push(delay);
      await clock.advance(delay);
    }
    // Full jitter on the upper half of a doubling cap: [0.5 s, 1 s], then [1 s, 2 s].
    expect(delays[0]).toBeGreaterThanOrEqual(BASE_MS / 2);
    expect(delays[0]).toBeLessThanOrEqual(BASE_MS);
    expect(delays[1]).toBeGreaterThanOrEqual(BASE_MS);
    expect(delays[1]).toBeLessThanOrEqual(2 * BASE_MS);

    // The third attempt was the last: given up, and only then the room's next event goes.
    await waitUntil(() => receiver.events.some((e) => e.id === 'next'), 'the next event of the room');
    expect(receiver.arrivals).toEqual(['slow', 'slow', 'slow', 'next']);
    await waitUntil(async () => (await count('delivered')) === 1, 'next counted delivered');
    expect(await count('failed')).toBe(1);
    expect(await count('retried')).toBe(2);
    expect(queue.size).toBe(0);
    expect(clock.pending).toBe(0); // no retry left scheduled
  });

  it('does not retry a 4xx other than 408 and 429 (final); retries a 429 and a refused connection', async () => {
    receiver.respond = (b, attempt) =>
      b.includes('"bad"') ? 400 : b.includes('"busy"') && attempt === 1 ? 429 : 200;
    queue.enqueue('bad', 'node.up', body('bad'), 'room-1');
    queue.enqueue('after-bad', 'node.up', body('after-bad'), 'room-1');
    await waitUntil(
      () => receiver.events.some((e) => e.id === 'after-bad'),
      'the event after the refused one',
    );
    expect(receiver.arrivals).toEqual(['bad', 'after-bad']);
    await waitUntil(async () => (await count('delivered')) === 1, 'after-bad counted delivered');
    expect(await count('failed')).toBe(1);
    expect(clock.pending).toBe(0);

    queue.enqueue('busy', 'node.up', body('busy'), 'room-2');
    await waitUntil(() => receiver.arrivals.length === 3, 'the 429');
    await waitUntil(async () => (await count('retried')) === 1, 'a retry scheduled');
    await clock.advance(BASE_MS);
    await waitUntil(() => receiver.events.some((e) => e.id === 'busy'), 'the retried 429');
    expect(receiver.arrivals.filter((id) => id === 'busy')).toHaveLength(2);

    // A URL where nothing listens: a network error is retried like a 5xx.
    const gone = await WebhookReceiver.start(SECRET);
    const url = gone.url;
    await gone.close();
    const own = new Registry();
    const unreachable = new WebhookQueue({
      urls: [url],
      secret: SECRET,
      registry: own,
      log: createLogger('silent'),
      clock,
      maxAttempts: 2,
      retryBaseMs: BASE_MS,
      timeoutMs: TIMEOUT_MS,
    });
    try {
      unreachable.enqueue('lost', 'node.up', body('lost'), 'room-3');
      const outcomes = () => own.getSingleMetricAsString('parley_webhook_deliveries_total');
      await waitUntil(
        async () => (await outcomes()).includes('result="retried"} 1'),
        'a retry scheduled after the refused connection',
      );
      await clock.advance(BASE_MS);
      await waitUntil(() => unreachable.size === 0, 'given up after the second attempt');
      expect(await outcomes()).toContain('result="failed"} 1');
      expect(clock.pending).toBe(0);
    } finally {
      const closing = unreachable.close(0);
      await clock.advance(0);
      await closing;
    }
  });
});
