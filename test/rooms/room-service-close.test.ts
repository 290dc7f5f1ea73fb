/**
 * RoomService.close() on a real Redis and a fake clock: a leave the store did not take (Redis
 * down) is retried on the clock, and close() stops that retry, so nothing of the room service runs
 * after shutdown. Each attempt to write the leave is seen in the node's log.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../src/server/config/defaults.js';
import { TestClient } from '../helpers/client.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

describe('RoomService: unrecorded leaves are retried until close()', () => {
  let redis: TestRedis;
  const servers: { srv: TestServer; clock: FakeClock }[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await redis.restart(); // up and empty again, for the shutdown and the next test
    // Shutdown waits on the server's clock too (hand-off, webhook flush): drive it until done.
    for (const { srv, clock } of servers.splice(0)) {
      let done = false;
      const closing = srv.close().finally(() => (done = true));
      while (!done) await clock.advance(100);
      await closing;
    }
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A node whose time is `clock`; alice leaves `lobby` while Redis is down (it stays down). */
  async function leaveWhileRedisDown(nodeId: string) {
    const clock = new FakeClock(Date.now());
    const srv = await startServer({ REDIS_URL: redis.url, NODE_ID: nodeId }, {}, { clock });
    servers.push({ srv, clock });
    const alice = await TestClient.connect(srv.wsUrl, await srv.token({ sub: `${nodeId}-alice` }));
    const bob = await TestClient.connect(srv.wsUrl, await srv.token({ sub: `${nodeId}-bob` }));
    clients.push(alice, bob);
    await alice.request('room:join', { roomId: 'lobby' });
    await bob.request('room:join', { roomId: 'lobby' });

    await redis.stop();
    await alice.close(1000); // a deliberate leave, which the store cannot take
    await waitUntil(
      () => srv.logs.some((l) => l.msg === 'leave not recorded; will retry when state is back'),
      'the leave to fail',
      10_000,
    );
    // The room was told at once, whatever the store said.
    await bob.waitFor((m) => m.type === 'room:participant-left');
    /** Attempts to write a leave to the store (each fails while Redis is down, and is logged). */
    const attempts = () =>
      srv.logs.filter((l) => l.msg === 'redis operation failed' && l.op === 'leaveRoom').length;
    expect(attempts()).toBe(1);
    return { srv, clock, attempts };
  }

  it('the retry runs on the clock, once per interval, while the store refuses it', async () => {
    const { clock, attempts } = await leaveWhileRedisDown('retry-1');
    await clock.advance(defaults.leaveRetryIntervalMs - 1);
    expect(attempts()).toBe(1);
    await clock.advance(1);
    await waitUntil(() => attempts() === 2, 'the first retry');
    await clock.advance(defaults.leaveRetryIntervalMs);
    await waitUntil(() => attempts() === 3, 'the second retry');
  });

  it('close() cancels the retry: no timer is left and nothing is attempted after it', async () => {
    const { srv, clock, attempts } = await leaveWhileRedisDown('close-1');
    const { rooms } = srv.server.internalsForTesting;
    const before = clock.pending;
    rooms.close();
    rooms.close();
    rooms.close();
    expect(clock.pending).toBe(before - 1);
    await clock.advance(defaults.leaveRetryIntervalMs * 10);
    expect(attempts()).toBe(1);
  });
});
