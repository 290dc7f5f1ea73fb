import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplyLessPublisher } from '../../src/server/state/redis/reply-less-publisher.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The bus's reply-less publisher against a real redis-server: what it publishes arrives, in the
 * order written, whether the subscriber count was asked for or not; a count is the real one; it
 * follows Redis going away and coming back; a server that refuses its handshake leaves it unready
 * for good (the bus then publishes through ioredis), with one warning and nothing thrown.
 */

/** The state client's options are what the publisher copies: host, port, path, credentials. */
function publisherFor(url: string, extra: Record<string, unknown> = {}) {
  const client = new Redis(url, { lazyConnect: true, ...extra });
  const { log, lines } = captureLogs('debug');
  const p = ReplyLessPublisher.forClient(client, log);
  if (!p) throw new Error('no publisher for a plain TCP Redis');
  return { p, lines };
}

describe('reply-less publisher', () => {
  let redis: TestRedis;
  let sub: Redis;
  const got: string[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    sub = new Redis({ path: redis.path });
    sub.on('message', (channel: string, data: string) => got.push(`${channel}=${data}`));
    await sub.subscribe('pub:a', 'pub:b');
  });
  afterAll(async () => {
    sub.disconnect();
    await redis.stop();
  });

  it('publishes in the order written, counted or not, and a count is the subscribers’ number', async () => {
    const { p } = publisherFor(redis.url);
    await waitUntil(() => p.ready, 'publisher ready');
    got.length = 0;
    const counts: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) {
      if (i % 50 === 7) counts.push(p.publishCounted('pub:a', Buffer.from(`counted-${i}`)));
      else p.publish(i % 2 ? 'pub:a' : 'pub:b', Buffer.from(`frame-${i}\r\nwith CRLF ✓`));
    }
    counts.push(p.publishCounted('nobody-listens', Buffer.from('x')));
    expect(await Promise.all(counts)).toEqual([1, 1, 1, 1, 0]);
    await waitUntil(() => got.length >= 200, '200 messages');
    const want = Array.from({ length: 200 }, (_, i) =>
      i % 50 === 7 ? `pub:a=counted-${i}` : `${i % 2 ? 'pub:a' : 'pub:b'}=frame-${i}\r\nwith CRLF ✓`,
    );
    expect(got).toEqual(want);
    p.close();
    p.close(); // idempotent
    expect(p.ready).toBe(false);
  });

  it('follows Redis away and back: unready while it is gone, a pending count fails, ready again after', async () => {
    const { p } = publisherFor(redis.url);
    await waitUntil(() => p.ready, 'publisher ready');
    sub.disconnect(); // a new subscriber after the restart
    const stopped = redis.stop();
    const pending = p.publishCounted('pub:a', Buffer.from('during the stop'));
    await stopped;
    // Answered before Redis went, or failed with it: it settles either way, never hangs.
    const outcome = await pending.then(
      (n) => n,
      (err: unknown) => (err as { code?: string }).code,
    );
    expect([1, 'SERVICE_UNAVAILABLE']).toContain(outcome);
    await waitUntil(() => !p.ready, 'unready once Redis is gone');
    await expect(p.publishCounted('pub:a', Buffer.from('x'))).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
    await redis.restart();
    sub = new Redis({ path: redis.path });
    got.length = 0;
    sub.on('message', (channel: string, data: string) => got.push(`${channel}=${data}`));
    await sub.subscribe('pub:a', 'pub:b');
    await waitUntil(() => p.ready, 'ready again after the restart', 15_000);
    expect(await p.publishCounted('pub:a', Buffer.from('back'))).toBe(1);
    await waitUntil(() => got.includes('pub:a=back'), 'delivered after the restart');
    p.close();
  }, 30_000);

  it('authenticates with the client’s password; a refused handshake leaves it unready, with a warning', async () => {
    const admin = new Redis({ path: redis.path });
    await admin.config('SET', 'requirepass', 'sekrit-pass');
    try {
      const good = publisherFor(redis.url, { password: 'sekrit-pass' });
      await waitUntil(() => good.p.ready, 'ready with the password');
      const { p, lines } = publisherFor(redis.url, { password: 'wrong-pass-xyz' });
      await waitUntil(
        () =>
          lines.some(
            (l) => l.msg === 'redis refused the reply-less publisher; publishing through the state client',
          ),
        'the refusal logged',
      );
      expect(p.ready).toBe(false);
      await expect(p.publishCounted('pub:a', Buffer.from('x'))).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
      // The password never reaches the log.
      expect(JSON.stringify(lines)).not.toContain('wrong-pass-xyz');
      expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
      // The other one still publishes.
      expect(await good.p.publishCounted('pub:a', Buffer.from('authed'))).toBe(1);
      good.p.close();
      p.close();
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });

  it('drops a connection whose handshake is never answered (a silent partition) and tries again', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => {
      sockets.push(s); // accepts, reads, never answers
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    const { p } = publisherFor(`redis://127.0.0.1:${port}`);
    try {
      // Dropped after the state client's command timeout, then a new attempt after its backoff.
      await waitUntil(() => sockets.length >= 2, 'a second connection attempt', 10_000);
      expect(p.ready).toBe(false);
      expect(sockets[0].destroyed || sockets[0].readableEnded).toBe(true);
      await expect(p.publishCounted('pub:a', Buffer.from('x'))).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
    } finally {
      p.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 20_000);

  it('is not used for a connection it cannot open (TLS, Sentinel): the bus keeps ioredis', () => {
    const { log } = captureLogs('debug');
    const tls = new Redis('rediss://127.0.0.1:1', { lazyConnect: true });
    const sentinel = new Redis({ lazyConnect: true, sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm' });
    expect(ReplyLessPublisher.forClient(tls, log)).toBeNull();
    expect(ReplyLessPublisher.forClient(sentinel, log)).toBeNull();
    tls.disconnect();
    sentinel.disconnect();
  });
});
