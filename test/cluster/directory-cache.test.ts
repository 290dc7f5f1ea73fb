import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient } from '../helpers/client.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import type { TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { clusterForSuite } from '../helpers/suite-cluster.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Each node caches where users' sessions live (src/server/cluster/directory-cache.ts). A relay to
 * a user already looked up asks Redis nothing; and the cache never sends a frame to where the user
 * was: a user who moves (reconnects elsewhere, adds a device, resumes on another node) or whose
 * node dies is reached where they are now, with real nodes and a real redis-server.
 */

const issuer = new TokenIssuer({ secret: TEST_SECRET });
const token = (sub: string) => issuer.issue({ sub, name: `N-${sub}` });
const ice = (recipientId: string, callId: string, n: number) => ({
  recipientId,
  callId,
  candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 9 typ host`, sdpMid: '0' },
});

describe('the node-local directory cache, two nodes, one Redis', () => {
  const env = (nodeId: string, redis: TestRedis) => ({
    REDIS_URL: redis.url,
    NODE_ID: nodeId,
    NODE_TTL_MS: '1000',
    RESUME_GRACE_MS: '1000',
    RATE_LIMIT_BURST: '1000',
    // Routing, not the call policy, is under test: these users share no room.
    CALL_POLICY: 'any',
  });
  const cluster = clusterForSuite(['c-1', 'c-2'], env, { startTimeoutMs: 40_000 });
  const nodes = cluster.nodes;
  const on = async (node: NodeProcess, sub: string) =>
    cluster.adopt(await TestClient.connect(node.wsUrl, await token(sub)));
  let admin: Redis;
  /** How many times Redis ran `cmd` so far (INFO commandstats). */
  const calls = async (cmd: string): Promise<number> => {
    const info = await admin.info('commandstats');
    const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info);
    return m ? Number(m[1]) : 0;
  };

  beforeAll(async () => {
    admin = new Redis({ path: cluster.redis().path, lazyConnect: true });
    await admin.connect();
  });
  afterAll(() => admin?.disconnect());

  it('relays to a user it has looked up without asking Redis where they are', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const a = await on(n1, 'cache-a');
    const local = await on(n1, 'cache-local');
    const remote = await on(n2, 'cache-remote');
    // Answered calls (their records then live in each node's memory, call-answering.ts), so that
    // what remains per relay is the recipient's whereabouts. The first relays fill the cache.
    for (const [callee, callId] of [
      [local, 'k-local'],
      [remote, 'k-remote'],
    ] as const) {
      const to = callee === local ? 'cache-local' : 'cache-remote';
      a.send('call:offer', { recipientId: to, callId, sdp: 'v=0' });
      await callee.next('call:offer');
      callee.send('call:accept', { recipientId: 'cache-a', callId });
      await a.next('call:accept');
      a.send('call:ice-candidate', ice(to, callId, 0));
      await callee.next('call:ice-candidate');
    }
    const before = await calls('hgetall');
    for (let i = 1; i <= 50; i++) {
      a.send('call:ice-candidate', ice('cache-local', 'k-local', i));
      a.send('call:ice-candidate', ice('cache-remote', 'k-remote', i));
    }
    for (let i = 1; i <= 50; i++) {
      expect((await local.next('call:ice-candidate')).payload).toMatchObject({
        senderId: 'cache-a',
        candidate: { candidate: `candidate:${i} 1 udp 1 127.0.0.1 9 typ host` },
      });
      expect((await remote.next('call:ice-candidate')).payload).toMatchObject({ senderId: 'cache-a' });
    }
    // 100 relays, no directory lookup (HGETALL also serves the nodes' heartbeat checks, one per node
    // every ~330 ms: allow those, far fewer than one per relay).
    expect((await calls('hgetall')) - before).toBeLessThan(10);
  });

  it('follows a user who reconnects on the other node, adds a device, and leaves', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const a = await on(n1, 'move-a');
    let b = await on(n2, 'move-b');
    a.send('call:offer', { recipientId: 'move-b', callId: 'm1', sdp: 'v=0 first' });
    expect((await b.next('call:offer')).payload).toMatchObject({ sdp: 'v=0 first' });

    // move-b leaves node 2 and comes back on node 1 (the caller's node: now a local user).
    await b.close(1000);
    b = await on(n1, 'move-b');
    a.send('call:offer', { recipientId: 'move-b', callId: 'm2', sdp: 'v=0 second' });
    expect((await b.next('call:offer')).payload).toMatchObject({ callId: 'm2', sdp: 'v=0 second' });

    // A second device on node 2: the next offer rings both.
    const laptop = await on(n2, 'move-b');
    // Its registration reaches Redis in the background: probe until node 1 sees it.
    await waitUntil(
      async () => {
        // An offer (a candidate for no call is dropped): it rings every device the node knows.
        a.send('call:offer', { recipientId: 'move-b', callId: 'probe', sdp: 'v=0' });
        return laptop.next('call:offer', 200).then(
          () => true,
          () => false,
        );
      },
      'the new device to be reachable from node 1',
      5_000,
    );
    a.send('call:offer', { recipientId: 'move-b', callId: 'm3', sdp: 'v=0 third' });
    expect((await laptop.next('call:offer')).payload).toMatchObject({ callId: 'm3' });
    expect((await b.waitFor((m) => m.type === 'call:offer' && m.payload.callId === 'm3')).type).toBe(
      'call:offer',
    );

    // Both devices gone: RECIPIENT_OFFLINE, as without a cache. The client sees its close before
    // the node has unregistered the session, so an early probe may still ring a leaving device: it
    // then starts a call that ends when that device leaves. Each probe is a new call, as a client's
    // retry would be (an offer on the ended call is CALL_NOT_FOUND, test/calls/ended-calls.test.ts).
    await b.close(1000);
    await laptop.close(1000);
    let attempt = 0;
    await waitUntil(
      () =>
        a.request('call:offer', { recipientId: 'move-b', callId: `m4-${++attempt}`, sdp: 'v=0' }, 300).then(
          (r) => r.type === 'error' && r.payload.code === 'RECIPIENT_OFFLINE',
          () => false,
        ),
      'RECIPIENT_OFFLINE once both devices left',
      5_000,
    );
  });

  it('resumes on the other node: relays follow the session there', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const a = await on(n1, 'res-a');
    const b = new TestClient(n2.wsUrl, [], { headers: { authorization: `Bearer ${await token('res-b')}` } });
    cluster.adopt(b);
    await b.opened;
    const welcome = await b.next('welcome');
    a.send('call:offer', { recipientId: 'res-b', callId: 'r1', sdp: 'v=0 before' });
    await b.next('call:offer');
    b.ws.terminate(); // a network drop on node 2
    // Node 2 sees the drop first (the race is test/hardening/regressions.test.ts): its log says when.
    await waitUntil(
      () => n2.logs().some((l) => l.msg === 'connection closed' && l.session === welcome.payload.sessionId),
      'node 2 to see the drop',
    );
    const b2 = await on(n1, 'res-b');
    expect((await b2.request('session:resume', { resumeToken: welcome.payload.resumeToken })).type).toBe(
      'session:resumed',
    );
    a.send('call:offer', { recipientId: 'res-b', callId: 'r2', sdp: 'v=0 after' });
    expect(
      (await b2.waitFor((m) => m.type === 'call:offer' && m.payload.callId === 'r2')).payload,
    ).toMatchObject({
      senderId: 'res-a',
      sdp: 'v=0 after',
    });
  });

  it('call records: answered on the other node, the caller’s node routes by the new record at once', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const caller = await on(n1, 'rec-a');
    const phone = await on(n1, 'rec-b');
    const laptop = await on(n2, 'rec-b');
    caller.send('call:offer', { recipientId: 'rec-b', callId: 'q1', sdp: 'v=0' });
    await phone.next('call:offer');
    await laptop.next('call:offer');
    // While it rings, the caller's candidates reach both devices (node 1 caches the ringing record).
    caller.send('call:ice-candidate', ice('rec-b', 'q1', 1));
    await phone.next('call:ice-candidate');
    await laptop.next('call:ice-candidate');
    // The laptop (node 2) answers: from the caller's very next message, only the laptop hears it.
    laptop.send('call:accept', { recipientId: 'rec-a', callId: 'q1' });
    await caller.next('call:accept');
    expect((await phone.next('call:answered-elsewhere')).payload).toMatchObject({ callId: 'q1' });
    caller.send('call:ice-candidate', ice('rec-b', 'q1', 2));
    expect((await laptop.next('call:ice-candidate')).payload).toMatchObject({ senderId: 'rec-a' });
    await phone.expectNothing((m) => m.type === 'call:ice-candidate');
    // And the phone (node 1) may no longer act on the call.
    expect(await phone.request('call:accept', { recipientId: 'rec-a', callId: 'q1' })).toMatchObject({
      type: 'error',
      payload: { code: 'CALL_ANSWERED_ELSEWHERE' },
    });
  });

  it('a node dies: its user, back on the survivor, is reached there; once reaped, nobody is', async () => {
    const [doomed, survivor] = await Promise.all([
      startNodeProcess(env('c-doomed', cluster.redis()), 40_000),
      startNodeProcess(env('c-surv', cluster.redis()), 40_000),
    ]);
    nodes.push(doomed, survivor);
    const a = await on(survivor, 'dead-a');
    const b = await on(doomed, 'dead-b');
    a.send('call:offer', { recipientId: 'dead-b', callId: 'd1', sdp: 'v=0' });
    await b.next('call:offer'); // the survivor has cached dead-b on the doomed node
    await doomed.kill9();
    // The user comes back on the survivor with a new session: reached at once.
    const b2 = await on(survivor, 'dead-b');
    a.send('call:offer', { recipientId: 'dead-b', callId: 'd2', sdp: 'v=0' });
    expect((await b2.next('call:offer')).payload).toMatchObject({ callId: 'd2', senderId: 'dead-a' });
    await b2.close(1000);
    // Once the dead node's session is reaped too, the user is on no node.
    let attempt = 0;
    await waitUntil(
      // A delivered offer has no reply: the short request times out while dead-b is still listed.
      // Each probe is a new call (one that rang a leaving session ends with it, as above).
      () =>
        a.request('call:offer', { recipientId: 'dead-b', callId: `d3-${++attempt}`, sdp: 'v=0' }, 300).then(
          (r) => r.type === 'error' && r.payload.code === 'RECIPIENT_OFFLINE',
          () => false,
        ),
      'RECIPIENT_OFFLINE once the dead node is reaped',
      8_000,
      200,
    );
  }, 90_000);
});
