import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { RedisState } from '../../src/server/state/redis/redis-state.js';
import { TestClient } from '../helpers/client.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clusterForSuite } from '../helpers/suite-cluster.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { clientFrame, parseServerFrames } from './lib/protocol-violations.js';
import { tokenFor } from './lib/proc.js';
import { TcpProxy } from './lib/tcp-proxy.js';

/*
 * Regression tests for the defects the hardening suite found (see docs/reliability.md):
 *  - a flooder closed with 1008 kept being read and parsed until its close handshake finished
 *    (src/server/signaling/connection.ts);
 *  - /health said "ok" through a silent network partition from Redis (src/server/state/redis/redis-state.ts);
 *  - a speaker whose node was killed and who resumed on another node at once stayed "speaking" for
 *    everyone (src/server/ptt/floor-control.ts onAdopted).
 * The slowloris sweep interval (src/server/index.ts) is pinned by test/hardening/abuse.test.ts, and
 * the undocumented close codes 1002/1007 (src/protocol/close-codes.ts) by test/hardening/fuzz.test.ts.
 */

describe('a flooder closed with 1008 is no longer read', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ RATE_LIMIT_PER_SEC: '5', RATE_LIMIT_BURST: '20', LOG_LEVEL: 'warn' });
  });
  afterAll(() => srv.close());

  it('the server stops reading at the close frame and cuts the peer off instead of waiting for a close reply', async () => {
    const raw = await rawUpgrade(srv.port, {
      Authorization: `Bearer ${await srv.token({ sub: 'flooder' })}`,
    });
    let close: number | null = null;
    let buf: Buffer = Buffer.alloc(0);
    raw.socket.on('data', (chunk: Buffer) => {
      const parsed = parseServerFrames(Buffer.concat([buf, chunk]));
      buf = parsed.rest;
      for (const f of parsed.frames) if (f.opcode === 0x8) close = f.payload.readUInt16BE(0);
    });
    let ended = false;
    raw.socket.once('close', () => (ended = true));
    raw.socket.resume();
    const ping = clientFrame(Buffer.from('{"type":"ping"}'));
    raw.socket.write(Buffer.concat(Array.from({ length: 100 }, () => ping)));
    await waitUntil(() => close !== null, 'the 1008 close frame');
    expect(close).toBe(1008);
    // The flooder does not answer the close frame and keeps sending: 16 MiB more.
    const chunk = Buffer.concat(Array.from({ length: 4_096 }, () => ping));
    for (let i = 0; i < Math.ceil((16 * 2 ** 20) / chunk.length); i++) raw.socket.write(chunk);
    await sleep(300); // time for the server to read what it must NOT read
    // Before the fix the server read (and parsed) all of it, so it drained; now it stays unread.
    expect(raw.socket.writableLength).toBeGreaterThan(2 ** 20);
    // The server cuts it (after 1 s; peers that are not flooding get 5 s to answer a close).
    // How soon is a timing question for a fake clock; here the deadline only bounds the wait.
    await waitUntil(() => ended, 'the server cuts the connection', 4_500);
    raw.destroy();
  });
});

describe('a silent partition from Redis shows in /health', () => {
  let redis: TestRedis;
  let proxy: TcpProxy;
  let state: RedisState;
  beforeAll(async () => {
    redis = await startRedis();
    proxy = await TcpProxy.start(redis.port);
    state = await RedisState.connect(`redis://127.0.0.1:${proxy.port}`, { prefix: 'regress:' });
  });
  afterAll(async () => {
    await state?.close();
    await proxy?.close();
    await redis?.stop();
  });

  it('ready() turns false while operations time out through the partition, and true again after it heals', async () => {
    await state.roomCount();
    expect(state.ready()).toBe(true);
    proxy.partition();
    // The socket is still "ready" to ioredis; only the operations tell.
    await expect(state.roomCount()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(state.ready()).toBe(false);
    proxy.heal();
    await waitUntil(
      async () =>
        state.roomCount().then(
          () => true,
          () => false,
        ),
      'redis answers again',
      5_000,
      100,
    );
    expect(state.ready()).toBe(true);
  });
});

describe('a speaker whose node dies and who resumes elsewhere at once', () => {
  const { nodes, adopt } = clusterForSuite(
    ['gone', 'stays'],
    (id, redis) => ({ REDIS_URL: redis.url, NODE_ID: id, NODE_TTL_MS: '1000', RESUME_GRACE_MS: '3000' }),
    { hookTimeoutMs: 30_000 },
  );

  it('is announced off the floor as soon as the session is adopted', async () => {
    const [gone, stays] = nodes;
    const speaker = new TestClient(gone.wsUrl, [], {
      headers: { authorization: `Bearer ${await tokenFor('spk')}` },
    });
    const watcher = await TestClient.connect(stays.wsUrl, await tokenFor('watcher'));
    adopt(speaker);
    adopt(watcher);
    await speaker.opened;
    const { resumeToken } = (await speaker.next('welcome')).payload;
    for (const c of [speaker, watcher])
      expect((await c.request('room:join', { roomId: 'dispatch' })).type).toBe('room:state');
    expect((await speaker.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    await watcher.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'spk');
    await gone.kill9();
    const again = await TestClient.connect(stays.wsUrl, await tokenFor('spk'));
    adopt(again);
    expect((await again.request('session:resume', { resumeToken })).type).toBe('session:resumed');
    // Before the fix nobody ever said so: the lock expired silently.
    const free = (m: ServerMessage) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null;
    expect(await watcher.waitFor(free, 2_000)).toBeTruthy();
  });
});
