import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBusMessages } from '../../src/server/cluster/bus.js';
import { createLogger } from '../../src/server/logger.js';
import { RedisBus } from '../../src/server/state/redis/redis-bus.js';
import { RedisState } from '../../src/server/state/redis/redis-state.js';
import { frame } from '../../src/server/wire/frame.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The bus publishes through its reply-less connection, through the state client (ioredis) while
 * that connection is down, and back. Two connections have no order between them: the switch back
 * must wait until Redis has answered every publish sent through ioredis, or a newer message could
 * overtake an older one still in flight. Against a real redis-server, the reply-less connection is
 * cut in the middle of a stream of publishes, several times: the receiver must see what it
 * receives in the order sent, and everything sent once the bus is back on its connection.
 *
 * On loopback a publish arrives at once, so to give the race a chance the state client's
 * connection goes through a TCP proxy that forwards what it writes after a delay (a busier
 * network path): without the wait, the first publishes back on the reply-less connection would
 * reach Redis before the ioredis ones still on their way, and arrive out of order.
 */

const DELAY_MS = 30;

/**
 * A TCP proxy to Redis: the first connection (the state client's) has what it writes forwarded
 * after DELAY_MS, in order; the others pass straight. `cut(port)` drops the connection whose
 * client end is on `port`, as a network failure would.
 */
async function startProxy(redisPort: number) {
  const pairs: { client: Socket; upstream: Socket }[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    const delayed = pairs.length === 0;
    pairs.push({ client, upstream });
    client.on('data', (d: Buffer) => {
      if (delayed) setTimeout(() => upstream.write(d), DELAY_MS);
      else upstream.write(d);
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cut(clientPort: number) {
      for (const p of pairs) if (p.client.remotePort === clientPort) p.client.destroy();
    },
    async close() {
      for (const p of pairs) p.client.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const quiet = createLogger('silent');

/** A relayed-frame-sized payload, a few KB so that Redis answers ioredis over several reads. */
const payload = (n: number) =>
  frame('call:ice-candidate', {
    callId: 'c',
    senderId: 'a',
    senderName: 'a',
    candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 9 typ host ${'x'.repeat(4_000)}`, sdpMid: '0' },
  });

describe('bus order across the switch between the reply-less connection and ioredis', () => {
  let redis: TestRedis;
  let state: RedisState;
  let bus: RedisBus;
  let sub: Redis;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  const got: number[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startProxy(redis.port);
    state = await RedisState.connect(`redis://127.0.0.1:${proxy.port}`, { log: quiet });
    // Node fo-b reads batches (a node of this release), so relayed frames go out batched too.
    bus = await RedisBus.create(state, 'fo-a', quiet, { readsBatches: () => true });
    sub = new Redis({ path: redis.path });
    sub.on('messageBuffer', (_channel: Buffer, data: Buffer) => {
      for (const m of decodeBusMessages(data) ?? [])
        got.push(Number((m.header as { userId: string }).userId));
    });
    await sub.subscribe('parley:node:fo-b');
  });
  afterAll(async () => {
    sub?.disconnect();
    await bus?.close();
    await state?.close();
    await proxy?.close();
    await redis?.stop();
  });

  it('keeps the order of every message received, and delivers all once back on the reply-less connection', async () => {
    const publisher = bus.publisherForTesting;
    if (!publisher) throw new Error('a plain TCP Redis has a reply-less publisher');
    await waitUntil(() => publisher.ready, 'publisher ready');
    let seq = 0;
    /** One event-loop turn of traffic: relayed frames (batched) and publishes of their own (counted). */
    const turn = () => {
      for (let i = 0; i < 4; i++) bus.sendToNode('fo-b', { t: 'user', userId: String(seq++) }, payload(seq));
      for (let i = 0; i < 8; i++) {
        const n = seq++;
        bus.publishToNode('fo-b', { t: 'user', userId: String(n) }, payload(n)).catch(() => undefined);
      }
    };
    /** Traffic every turn until `until` holds. */
    const stream = (until: () => boolean) =>
      new Promise<void>((resolve) => {
        const step = () => {
          turn();
          if (until()) resolve();
          else setImmediate(step);
        };
        step();
      });

    for (let kill = 0; kill < 8; kill++) {
      const before = bus.routesForTesting;
      // Running on the reply-less connection.
      await stream(() => bus.routesForTesting.replyLess > before.replyLess + 50);
      const addr = publisher.localAddressForTesting;
      if (!addr) throw new Error('publisher connected');
      proxy.cut(Number(addr.slice(addr.lastIndexOf(':') + 1)));
      // Through ioredis while it is down, then back on it: a stream across both switches.
      await stream(() => bus.routesForTesting.fallback > before.fallback && publisher.ready);
      const back = bus.routesForTesting.replyLess;
      await stream(() => bus.routesForTesting.replyLess > back + 50);
      if (bus.routesForTesting.held > 0 && kill >= 2) break;
    }
    const last = seq - 1;
    await waitUntil(() => got.includes(last), 'the last message', 10_000);

    const routes = bus.routesForTesting;
    expect(routes.fallback).toBeGreaterThan(0);
    // The switch back found ioredis publishes unanswered at least once and held newer ones for them.
    expect(routes.held).toBeGreaterThan(0);
    // Each message received came after every one received before it.
    const outOfOrder = got.filter((n, i) => i > 0 && n <= got[i - 1]);
    expect(outOfOrder).toEqual([]);
    // What was lost went down with a killed connection; once back, nothing is lost.
    const tail = Array.from({ length: 50 }, (_, i) => last - 49 + i);
    expect(got.slice(-50)).toEqual(tail);
  }, 60_000);
});
