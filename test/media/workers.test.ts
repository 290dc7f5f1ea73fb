import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { expectReply, joinWithMedia } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

const manifest = {
  channels: [
    { id: 'big', name: 'Big', mode: 'ptt', maxParticipants: 100 },
    { id: 'fragile', name: 'Fragile', mode: 'ptt', maxParticipants: 100 },
  ],
};

describe('worker pool: consumer budget and worker death', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub }));
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '2', MAX_CONSUMERS_PER_WORKER: '3' }, manifest);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('spreads listeners over workers with pipeToRouter, then refuses new ones with CAPACITY_EXCEEDED', async () => {
    const { pool } = srv.server.internalsForTesting;
    for (let i = 0; i < 6; i++) {
      const c = await connect(`listener${i}`);
      const m = await joinWithMedia(c, 'big', { consumeFloor: true });
      expect(m.consumerId).toEqual(expect.any(String));
    }
    // Both workers are now exactly at budget, each carrying half of the channel.
    expect(pool.workers().map((w) => w.consumers)).toEqual([3, 3]);
    const extra = await connect('one-too-many');
    expectReply(await extra.request('room:join', { roomId: 'big' }), 'room:state');
    expect(await extra.request('transport:create', { roomId: 'big', direction: 'recv' })).toMatchObject({
      type: 'error',
      payload: { code: 'CAPACITY_EXCEEDED' },
    });
    // Existing listeners are untouched; when one leaves, there is room again.
    await clients[0].close(1000);
    await waitUntil(() => pool.workers().some((w) => w.consumers < 3), 'a worker has consumer budget again');
    const m = await joinWithMedia(extra, 'big', { consumeFloor: true });
    expect(m.consumerId).toEqual(expect.any(String));
  });
});

describe('worker death', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '2' }, manifest);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('a killed worker: its rooms are closed, members told, the speaker revoked, and a new worker replaces it', async () => {
    const { pool } = srv.server.internalsForTesting;
    const [a, b] = await Promise.all(
      ['fragile-a', 'fragile-b'].map(async (sub) => TestClient.connect(srv.wsUrl, await srv.token({ sub }))),
    );
    clients.push(a, b);
    await joinWithMedia(a, 'fragile', { produce: true });
    await joinWithMedia(b, 'fragile', { consumeFloor: true });
    expect((await a.request('ptt:start', { roomId: 'fragile' })).type).toBe('ptt:granted');

    // The only room on this server lives on exactly one worker: kill that one.
    const hosting = [];
    for (const w of pool.workers()) if ((await w.worker.dump()).routerIds.length > 0) hosting.push(w);
    expect(hosting).toHaveLength(1);
    const victim = hosting[0];
    const t0 = Date.now();
    process.kill(victim.pid, 'SIGKILL');

    expect(await a.next('media:closed', 3_000)).toMatchObject({
      payload: { roomId: 'fragile', reason: 'worker-died' },
    });
    expect(await b.next('media:closed', 3_000)).toMatchObject({ payload: { roomId: 'fragile' } });
    expect(await a.next('ptt:revoked', 3_000)).toMatchObject({ payload: { reason: 'media-closed' } });
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
    await waitUntil(
      () => pool.size === 2 && !pool.workers().some((w) => w.pid === victim.pid),
      'a replacement worker',
      5_000,
    );
    console.log(`worker death → replacement worker up in ${Date.now() - t0} ms`);

    // Members stay in the room and set media up again on the surviving/new workers.
    const again = await joinWithMedia(b, 'fragile', { consumeFloor: true });
    expect(again.consumerId).toEqual(expect.any(String));
    const health = (await (await fetch(`${srv.httpUrl}/health`)).json()) as { workers: number };
    expect(health.workers).toBe(2);
  });
});
