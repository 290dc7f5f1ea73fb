import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import type { TestClient } from '../helpers/client.js';
import { connectAs } from '../helpers/client.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Issue 13, High 3 and the RECIPIENT_OFFLINE low finding: relays need a relationship. A call:offer
 * rings only users who share a room with the caller (CALL_POLICY=shared-room, the default), the
 * other call messages need a call between the two, each recipient takes a bounded budget from each
 * sender, and a refusal says nothing about whether the user is online. Each attack runs against a
 * real server beside a legitimate caller who must not notice it.
 */

const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=offer\r\n';
const ANSWER = 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=answer\r\n';
const isCall = (m: ServerMessage) => m.type.startsWith('call:');

async function join(c: TestClient, roomId: string): Promise<void> {
  expect((await c.request('room:join', { roomId })).type).toBe('room:state');
}

describe('relays need a relationship (CALL_POLICY=shared-room, the default)', () => {
  let srv: TestServer;
  let clients: TestClient[] = [];
  beforeAll(async () => {
    srv = await startServer();
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    clients = [];
  });
  afterAll(() => srv.close());

  it('a stranger gets CALL_NOT_ALLOWED for an online and an offline user alike; a roommate rings', async () => {
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    const mallory = await connectAs(srv, clients, 'mallory');
    await join(alice, 'lobby');
    await join(bob, 'lobby');
    await join(mallory, 'dispatch'); // a room, but not one of Bob's

    const toOnline = await mallory.request('call:offer', { recipientId: 'bob', callId: 'm1', sdp: OFFER });
    const toOffline = await mallory.request('call:offer', { recipientId: 'ghost', callId: 'm2', sdp: OFFER });
    expect(toOnline).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_ALLOWED' } });
    expect(toOffline).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_ALLOWED' } });
    // The same answer, but for the id it names: nothing tells the two apart.
    const shape = (m: ServerMessage) => JSON.stringify(m.payload).replace(/\b(bob|ghost)\b/g, 'X');
    expect(shape(toOnline)).toBe(shape(toOffline));
    await bob.expectNothing(isCall, 100);

    // Beside it, Alice shares the lobby with Bob: her call rings him, as always.
    alice.send('call:offer', { recipientId: 'bob', callId: 'a1', sdp: OFFER }, 'a1');
    expect((await bob.next('call:offer')).payload).toMatchObject({ callId: 'a1', senderId: 'alice' });
    bob.send('call:answer', { recipientId: 'alice', callId: 'a1', sdp: ANSWER });
    expect((await alice.next('call:answer')).payload).toMatchObject({ callId: 'a1', senderId: 'bob' });
    await alice.expectNothing((m) => m.type === 'error', 100);

    // A roommate who left for good is no longer in a shared room: the same refusal as anyone's.
    const carol = await connectAs(srv, clients, 'carol');
    await join(carol, 'lobby');
    await carol.close(1000);
    await alice.waitFor(
      (m) => m.type === 'room:participant-left' && m.payload.participant.userId === 'carol',
    );
    const reply = await alice.request('call:offer', { recipientId: 'carol', callId: 'a3', sdp: OFFER });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_ALLOWED' } });
  });

  it('a third party cannot answer, accept or hang up a call it is not in (CALL_NOT_FOUND); the call goes on', async () => {
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    const mallory = await connectAs(srv, clients, 'mallory');
    for (const c of [alice, bob, mallory]) await join(c, 'lobby'); // even a roommate
    alice.send('call:offer', { recipientId: 'bob', callId: 'k1', sdp: OFFER });
    await bob.next('call:offer');

    for (const [type, extra] of [
      ['call:accept', {}],
      ['call:answer', { sdp: ANSWER }],
      ['call:hangup', { reason: 'spoofed' }],
      ['call:reject', { reason: 'spoofed' }],
    ] as const) {
      for (const recipientId of ['alice', 'bob']) {
        const reply = await mallory.request(type, { recipientId, callId: 'k1', ...extra });
        expect(reply).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_FOUND' } });
      }
    }
    await alice.expectNothing(isCall, 100);
    await bob.expectNothing(isCall, 0);

    bob.send('call:accept', { recipientId: 'alice', callId: 'k1' });
    expect((await alice.next('call:accept')).payload).toMatchObject({ callId: 'k1', senderId: 'bob' });
    alice.send('call:hangup', { recipientId: 'bob', callId: 'k1' });
    expect((await bob.next('call:hangup')).payload).toMatchObject({ callId: 'k1', senderId: 'alice' });
  });

  it('a sender under its own rate limit cannot get a slow receiver dropped: past the budget it gets RELAY_BUDGET_EXCEEDED', async () => {
    const mallory = await connectAs(srv, clients, 'mallory');
    const alice = await connectAs(srv, clients, 'alice');
    await join(mallory, 'lobby');
    await join(alice, 'lobby');
    // Bob reads nothing from here on (the audit: a receiver slower than what is aimed at it).
    const bob = await rawUpgrade(srv.port, { Authorization: `Bearer ${await srv.token({ sub: 'bob' })}` });
    expect(bob.status).toBe(101);
    bob.stopReading();
    bob.sendText(JSON.stringify({ type: 'room:join', payload: { roomId: 'lobby' }, timestamp: Date.now() }));
    await mallory.waitFor(
      (m) => m.type === 'room:participant-joined' && m.payload.participant.userId === 'bob',
    );

    // 150 offers of 60 KB (within Mallory's burst of 200): 9 MB aimed at Bob, whose server-side
    // send buffer may hold MAX_BUFFERED_BYTES (1 MiB) before he would be dropped.
    const sdp = `v=0\r\na=${'x'.repeat(59_900)}`;
    const errors = new Map<string, string>();
    mallory.ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as {
        type: string;
        correlationId?: string;
        payload?: { code?: string };
      };
      if (m.type === 'error' && m.correlationId) errors.set(m.correlationId, String(m.payload?.code));
    });
    const N = 150;
    for (let i = 0; i < N; i++)
      mallory.send('call:offer', { recipientId: 'bob', callId: `x${i}`, sdp }, `x${i}`);
    expect((await mallory.request('ping', undefined, 10_000)).type).toBe('pong');

    const refused = [...errors.values()];
    expect(new Set(refused)).toEqual(new Set(['RELAY_BUDGET_EXCEEDED']));
    const delivered = N - refused.length;
    // What got through is the budget: at most its burst plus what refilled meanwhile, never 1 MiB.
    expect(delivered).toBeGreaterThan(0);
    expect(delivered * sdp.length).toBeLessThan(srv.config.limits.maxBufferedBytes);
    expect(srv.logs.filter((l) => l.msg === 'dropping slow consumer')).toEqual([]);

    // Alice, beside the attack, still reaches Bob: her budget towards him is her own.
    alice.send('call:offer', { recipientId: 'bob', callId: 'legit', sdp: OFFER }, 'legit');
    expect((await alice.request('ping')).type).toBe('pong');
    expect(alice.received.filter((m) => m.type === 'error')).toEqual([]);

    // Bob reads again: still connected, he gets what the budget let through and Alice's call, and
    // answers a ping.
    let seen = '';
    bob.socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
    });
    bob.socket.resume();
    bob.sendText(JSON.stringify({ type: 'ping', timestamp: Date.now(), correlationId: 'alive' }));
    await waitUntil(() => seen.includes('"correlationId":"alive"'), 'Bob gets his pong', 10_000);
    expect(seen).toContain('"callId":"legit"');
    expect(seen.split('"type":"call:offer"').length - 1).toBe(delivered + 1);
    expect(srv.logs.filter((l) => l.msg === 'dropping slow consumer')).toEqual([]);
    bob.destroy();
  });
  it('in-room relays take the same per-recipient budget; another member of the room is unaffected', async () => {
    const mallory = await connectAs(srv, clients, 'mallory');
    const bob = await connectAs(srv, clients, 'bob');
    const carol = await connectAs(srv, clients, 'carol');
    for (const c of [mallory, bob, carol]) await join(c, 'lobby');
    const sdp = `v=0\r\na=${'x'.repeat(59_900)}`;
    const N = 12; // 720 KB at Bob, well past the 256 KiB burst
    for (let i = 0; i < N; i++) mallory.send('sdp:offer', { roomId: 'lobby', to: 'bob', sdp }, `r${i}`);
    expect((await mallory.request('ping')).type).toBe('pong');
    const refused = mallory.received.filter((m) => m.type === 'error');
    expect(refused.length).toBeGreaterThan(0);
    for (const m of refused) expect(m).toMatchObject({ payload: { code: 'RELAY_BUDGET_EXCEEDED' } });
    await waitUntil(
      () => bob.received.filter((m) => m.type === 'sdp:offer').length === N - refused.length,
      'Bob gets what the budget let through',
    );
    // Carol's budget towards Bob is her own.
    carol.send('sdp:offer', { roomId: 'lobby', to: 'bob', sdp }, 'c1');
    await bob.waitFor((m) => m.type === 'sdp:offer' && m.payload.senderId === 'carol');
    expect(carol.received.filter((m) => m.type === 'error')).toEqual([]);
  });
});

describe('the relationship holds across nodes (Redis)', () => {
  let redis: TestRedis;
  let n1: TestServer;
  let n2: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    [n1, n2] = await Promise.all(
      ['n1', 'n2'].map((id) => startServer({ REDIS_URL: redis.url, NODE_ID: id, LOG_LEVEL: 'warn' })),
    );
  }, 30_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await Promise.all([n1?.close(), n2?.close()]);
    await redis?.stop();
  });

  it('a roommate on another node rings; a stranger on either node gets CALL_NOT_ALLOWED; only the two may act on their call', async () => {
    const alice = await connectAs(n1, clients, 'alice');
    const bob = await connectAs(n2, clients, 'bob');
    const mallory1 = await connectAs(n1, clients, 'mallory');
    const mallory2 = await connectAs(n2, clients, 'mallory');
    await join(alice, 'lobby');
    await join(bob, 'lobby');

    for (const m of [mallory1, mallory2]) {
      const reply = await m.request('call:offer', { recipientId: 'bob', callId: 'm', sdp: OFFER });
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_ALLOWED' } });
    }
    alice.send('call:offer', { recipientId: 'bob', callId: 'x1', sdp: OFFER });
    expect((await bob.next('call:offer')).payload).toMatchObject({ callId: 'x1', senderId: 'alice' });
    // The call's record is in Redis: Mallory on Bob's node cannot hang it up on Alice.
    const spoof = await mallory2.request('call:hangup', { recipientId: 'alice', callId: 'x1' });
    expect(spoof).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_FOUND' } });
    bob.send('call:answer', { recipientId: 'alice', callId: 'x1', sdp: ANSWER });
    expect((await alice.next('call:answer')).payload).toMatchObject({ callId: 'x1', senderId: 'bob' });
    await alice.expectNothing((m) => m.type === 'call:hangup', 100);
    await mallory1.expectNothing(isCall, 0);
  });
});
