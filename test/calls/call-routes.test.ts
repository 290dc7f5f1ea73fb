import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage, ServerMessageOf } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient } from '../helpers/client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { defaults } from '../../src/server/config/defaults.js';
import { clusterForSuite } from '../helpers/suite-cluster.js';
import { serverForSuite } from '../helpers/suite-server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { icePayload as cand, TEST_SDP as OFFER } from '../helpers/call-steps.js';

/**
 * The call relay keeps, per sender session, the route of its last call's trickled ICE candidates,
 * and of its last offer or answer in a known call (src/server/calls/call-routes.ts), so such a
 * message needs no record or session lookups. These tests hold the routes to the multi-device
 * rules at every edge where a route must change: a second device rings, the call is answered or
 * rejected on one device, a device leaves, the peer's connection drops and resumes, the peer moves
 * to another node, the call ends. Each candidate and each SDP carries a sequence number, so every
 * check names exactly which messages each device got.
 */

const isIce = (m: ServerMessage): m is ServerMessageOf<'call:ice-candidate'> =>
  m.type === 'call:ice-candidate';

/** What `pick` makes of each message a client gets, in arrival order (undefined: not kept). */
function recorder<T>(pick: (m: ServerMessage) => T | undefined) {
  const seen = new WeakMap<TestClient, T[]>();
  return {
    track: (c: TestClient): TestClient => {
      const list: T[] = [];
      seen.set(c, list);
      c.ws.on('message', (d: Buffer) => {
        const v = pick(JSON.parse(d.toString()) as ServerMessage);
        if (v !== undefined) list.push(v);
      });
      return c;
    },
    of: (c: TestClient): T[] => seen.get(c) ?? [],
  };
}
/** Every candidate each client got, by sequence number. */
const candidates = recorder((m) =>
  isIce(m) ? Number(/^candidate:(\d+)/.exec(m.payload.candidate?.candidate ?? '')?.[1]) : undefined,
);
const track = candidates.track;
const seqs = candidates.of;
/** Every offer and answer each client got, as `offer:N` / `answer:N` (N: the SDP's `a=x-seq`). */
const offersAnswers = recorder((m) =>
  m.type === 'call:offer' || m.type === 'call:answer'
    ? `${m.type.slice(5)}:${/a=x-seq:(\d+)/.exec(m.payload.sdp)?.[1] ?? '-'}`
    : undefined,
);
const trackSdp = offersAnswers.track;
const sdps = offersAnswers.of;
const sdpUntil = (c: TestClient, what: string) => waitUntil(() => sdps(c).includes(what), what);
/** An SDP numbered `n` (a line the relay passes through untouched). */
const sdp = (n: number) => `${OFFER}a=x-seq:${n}\r\n`;
const iceUntil = (c: TestClient, n: number) => waitUntil(() => seqs(c).includes(n), `candidate ${n}`);
const iceUntilWithin = (c: TestClient, n: number, ms: number) =>
  waitUntil(() => seqs(c).includes(n), `candidate ${n}`, ms).then(
    () => true,
    () => false,
  );
/** A window in which nothing more may arrive (what did is then compared exactly). */
const quiet = () => sleep(150);

describe('ICE routes, one node', () => {
  const suite = serverForSuite({ CALL_POLICY: 'any', RESUME_GRACE_MS: '10000' });
  let seq = 0;
  const connect = async (sub: string) => track(await suite.connect({ sub, name: sub.toUpperCase() }));
  const hits = () => suite.server().server.internalsForTesting.relay.iceRouteHitsForTesting;
  const sessions = () => suite.server().server.internalsForTesting.sessions;

  /** alice calls bob (every device of bob that is connected rings), and the call id. */
  const call = async (alice: TestClient, bobs: TestClient[]) => {
    const callId = `ir${++seq}`;
    alice.send('call:offer', { recipientId: 'bob', callId, sdp: OFFER });
    await Promise.all(bobs.map((b) => b.next('call:offer')));
    return callId;
  };

  it('a known call’s candidates take the kept route, and reach exactly the devices they did before', async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await call(alice, [bob1, bob2]);
    const before = hits();
    for (let n = 1; n <= 20; n++) alice.send('call:ice-candidate', cand('bob', callId, n));
    await Promise.all([iceUntil(bob1, 20), iceUntil(bob2, 20)]);
    const all = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(seqs(bob1)).toEqual(all);
    expect(seqs(bob2)).toEqual(all);
    // The first one planned the route; (nearly) all the others used it.
    expect(hits() - before).toBeGreaterThanOrEqual(18);
    // The sender set by the server, as on every relay; no addressing field left.
    for (const m of bob1.received.filter(isIce)) {
      expect(m.payload).toMatchObject({ callId, senderId: 'alice', senderName: 'ALICE' });
      expect(m.payload).not.toHaveProperty('recipientId');
    }
  });

  it('a second device of the callee connects while it rings: the next candidate reaches it too', async () => {
    const alice = await connect('alice');
    const bob1 = await connect('bob');
    const callId = await call(alice, [bob1]);
    alice.send('call:ice-candidate', cand('bob', callId, 1));
    alice.send('call:ice-candidate', cand('bob', callId, 2));
    await iceUntil(bob1, 2);
    const bob2 = await connect('bob');
    const at = hits();
    alice.send('call:ice-candidate', cand('bob', callId, 3));
    alice.send('call:ice-candidate', cand('bob', callId, 4));
    await Promise.all([iceUntil(bob1, 4), iceUntil(bob2, 4)]);
    expect(seqs(bob1)).toEqual([1, 2, 3, 4]);
    expect(seqs(bob2)).toEqual([3, 4]);
    // 3 was planned again (a session was added), 4 took the new route.
    expect(hits() - at).toBe(1);
  });

  it('answered on one device: from the caller’s next candidate only that device hears it', async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await call(alice, [bob1, bob2]);
    for (let n = 1; n <= 3; n++) alice.send('call:ice-candidate', cand('bob', callId, n));
    await Promise.all([iceUntil(bob1, 3), iceUntil(bob2, 3)]);
    bob2.send('call:accept', { recipientId: 'alice', callId });
    await alice.next('call:accept');
    await bob1.next('call:answered-elsewhere');
    for (let n = 4; n <= 6; n++) alice.send('call:ice-candidate', cand('bob', callId, n));
    await iceUntil(bob2, 6);
    await quiet();
    expect(seqs(bob2)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seqs(bob1)).toEqual([1, 2, 3]);
    // The device that did not answer: its own candidates go nowhere (dropped, not refused), and
    // the answering device's reach the caller.
    bob1.send('call:ice-candidate', cand('alice', callId, 7));
    bob2.send('call:ice-candidate', cand('alice', callId, 8));
    await iceUntil(alice, 8);
    await quiet();
    expect(seqs(alice)).toEqual([8]);
    expect(bob1.received.filter((m) => m.type === 'error')).toEqual([]);
  });

  it('rejected on one device while it rings: the call has ended, and the caller’s next candidates reach no device', async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await call(alice, [bob1, bob2]);
    alice.send('call:ice-candidate', cand('bob', callId, 1));
    alice.send('call:ice-candidate', cand('bob', callId, 2));
    await Promise.all([iceUntil(bob1, 2), iceUntil(bob2, 2)]);
    bob1.send('call:reject', { recipientId: 'alice', callId, reason: 'declined' });
    await alice.next('call:reject');
    expect((await bob2.next('call:answered-elsewhere')).payload).toMatchObject({ outcome: 'rejected' });
    // Late candidates of an ended call are dropped, not refused (test/calls/ended-calls.test.ts).
    alice.send('call:ice-candidate', cand('bob', callId, 3));
    await quiet();
    expect(seqs(bob1)).toEqual([1, 2]);
    expect(seqs(bob2)).toEqual([1, 2]);
    expect(alice.received.filter((m) => m.type === 'error')).toEqual([]);
  });

  it('a device leaves: its session gone, candidates reach the one left; the last one gone, they are dropped silently', async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await call(alice, [bob1, bob2]);
    alice.send('call:ice-candidate', cand('bob', callId, 1));
    await Promise.all([iceUntil(bob1, 1), iceUntil(bob2, 1)]);
    await bob1.close(1000); // "I am leaving": the session ends at once
    await waitUntil(() => (sessions().sessionsOf('bob')?.size ?? 0) === 1, 'one session of bob left');
    alice.send('call:ice-candidate', cand('bob', callId, 2));
    await iceUntil(bob2, 2);
    expect(seqs(bob2)).toEqual([1, 2]);
    expect(seqs(bob1)).toEqual([1]);
    await bob2.close(1000);
    await waitUntil(() => sessions().sessionsOf('bob') === undefined, 'no session of bob left');
    // No RECIPIENT_OFFLINE for trickled candidates: they are dropped without a word.
    alice.send('call:ice-candidate', cand('bob', callId, 3), 'late-candidate');
    await alice.expectNothing((m) => m.type === 'error', 150);
    expect(seqs(bob2)).toEqual([1, 2]);
    // The caller's connection is unharmed: a request still gets its reply.
    expect((await alice.request('ping', {})).type).toBe('pong');
  });

  it('the peer’s connection drops and resumes: candidates meanwhile are buffered, then replayed, then live again', async () => {
    const alice = await connect('alice');
    const bob = track(
      new TestClient(suite.server().wsUrl, [], {
        headers: { authorization: `Bearer ${await suite.server().token({ sub: 'bob', name: 'BOB' })}` },
      }),
    );
    suite.adopt(bob);
    await bob.opened;
    const welcome = (await bob.next('welcome')).payload;
    const callId = await call(alice, [bob]);
    bob.send('call:accept', { recipientId: 'alice', callId });
    await alice.next('call:accept');
    alice.send('call:ice-candidate', cand('bob', callId, 1));
    await iceUntil(bob, 1);
    bob.ws.terminate(); // a network drop: the session is suspended, not ended
    await waitUntil(() => sessions().get(welcome.sessionId)?.suspended === true, 'bob suspended');
    alice.send('call:ice-candidate', cand('bob', callId, 2));
    alice.send('call:ice-candidate', cand('bob', callId, 3));
    const bob2 = await connect('bob');
    const resumed = await bob2.request('session:resume', { resumeToken: welcome.resumeToken });
    expect(resumed.type).toBe('session:resumed');
    await iceUntil(bob2, 3);
    alice.send('call:ice-candidate', cand('bob', callId, 4));
    await iceUntil(bob2, 4);
    await quiet();
    // Each exactly once: the buffered ones replayed, the later one live; the dropped socket got 1.
    expect(seqs(bob2)).toEqual([2, 3, 4]);
    expect(seqs(bob)).toEqual([1]);
  });

  it('bad input on the route’s path still gets its clear error, and the route goes on working', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const callId = await call(alice, [bob]);
    alice.send('call:ice-candidate', cand('bob', callId, 1));
    await iceUntil(bob, 1);
    // A candidate without a callId, one with a forged sender, and one for a call alice is not in.
    const bad = await alice.request('call:ice-candidate', {
      recipientId: 'bob',
      candidate: cand('bob', callId, 0).candidate,
    });
    expect(bad).toMatchObject({ type: 'error', payload: { code: 'INVALID_MESSAGE' } });
    expect((bad as ServerMessageOf<'error'>).payload.message).toMatch(/callId/);
    alice.send('call:ice-candidate', { ...cand('bob', callId, 2), senderId: 'mallory', senderName: 'M' });
    alice.send('call:ice-candidate', cand('bob', 'no-such-call', 99));
    alice.send('call:ice-candidate', cand('bob', callId, 3));
    await iceUntil(bob, 3);
    await quiet();
    const got = bob.received.filter(isIce);
    expect(got.map((m) => m.payload.senderId)).toEqual(['alice', 'alice', 'alice']);
    expect(seqs(bob)).toEqual([1, 2, 3]);
  });
});

describe('offer and answer routes, one node (renegotiation in a known call)', () => {
  const suite = serverForSuite({ CALL_POLICY: 'any' });
  let seq = 0;
  const connect = async (sub: string) => trackSdp(await suite.connect({ sub, name: sub.toUpperCase() }));
  const hits = () => suite.server().server.internalsForTesting.relay.sdpRouteHitsForTesting;
  const sessions = () => suite.server().server.internalsForTesting.sessions;

  /** alice calls bob's devices, `answering` accepts, and the others stop ringing: the call id. */
  const answered = async (alice: TestClient, bobs: TestClient[], answering: TestClient) => {
    const callId = `sr${++seq}`;
    alice.send('call:offer', { recipientId: 'bob', callId, sdp: sdp(0) });
    await Promise.all(bobs.map((b) => sdpUntil(b, 'offer:0')));
    answering.send('call:accept', { recipientId: 'alice', callId });
    await alice.next('call:accept');
    await Promise.all(bobs.filter((b) => b !== answering).map((b) => b.next('call:answered-elsewhere')));
    return callId;
  };

  /** alice calls bob's two devices, bob2 answers, and alice re-offers twice (the second through a route). */
  const renegotiating = async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await answered(alice, [bob1, bob2], bob2);
    for (let n = 1; n <= 2; n++) {
      alice.send('call:offer', { recipientId: 'bob', callId, sdp: sdp(n) });
      await sdpUntil(bob2, `offer:${n}`);
    }
    return { alice, bob1, bob2, callId };
  };

  it('re-offers reach only the device that answered, its answers only the caller, through kept routes', async () => {
    const alice = await connect('alice');
    const [bob1, bob2] = [await connect('bob'), await connect('bob')];
    const callId = await answered(alice, [bob1, bob2], bob2);
    const before = hits();
    for (let n = 1; n <= 6; n++) {
      alice.send('call:offer', { recipientId: 'bob', callId, sdp: sdp(n) });
      await sdpUntil(bob2, `offer:${n}`);
      bob2.send('call:answer', { recipientId: 'alice', callId, sdp: sdp(n) });
      await sdpUntil(alice, `answer:${n}`);
    }
    await quiet();
    expect(sdps(bob2)).toEqual(['offer:0', 'offer:1', 'offer:2', 'offer:3', 'offer:4', 'offer:5', 'offer:6']);
    expect(sdps(bob1)).toEqual(['offer:0']);
    expect(sdps(alice)).toEqual(['answer:1', 'answer:2', 'answer:3', 'answer:4', 'answer:5', 'answer:6']);
    // Each side's first one planned its route; the other five of each took it.
    expect(hits() - before).toBe(10);
    // The sender set by the server, as on every relay; no addressing field left.
    const offers = bob2.received.filter((m): m is ServerMessageOf<'call:offer'> => m.type === 'call:offer');
    for (const m of offers) {
      expect(m.payload).toMatchObject({ callId, senderId: 'alice', senderName: 'ALICE' });
      expect(m.payload).not.toHaveProperty('recipientId');
    }
    // The call is still the one the registry tracks, answered, with nothing else added.
    const calls = suite
      .server()
      .server.internalsForTesting.relay.calls.list()
      .filter((c) => c.callId === callId);
    expect(calls.map(({ callerId, calleeId }) => ({ callerId, calleeId }))).toEqual([
      { callerId: 'alice', calleeId: 'bob' },
    ]);
    expect(calls[0]?.answeredAt).toEqual(expect.any(Number) as unknown);
  });

  it('the device that answered leaves: the next re-offer is refused (RECIPIENT_OFFLINE), not sent on the old route', async () => {
    const { alice, bob1, bob2, callId } = await renegotiating();
    await bob2.close(1000);
    await waitUntil(() => (sessions().sessionsOf('bob')?.size ?? 0) === 1, 'one session of bob left');
    const at = hits();
    const reply = await alice.request('call:offer', { recipientId: 'bob', callId, sdp: sdp(3) });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'RECIPIENT_OFFLINE' } });
    expect(hits()).toBe(at);
    await quiet();
    expect(sdps(bob1)).toEqual(['offer:0']);
  });

  it('after a hang-up, the next offer with the same call id is refused as ended, not sent on the old route', async () => {
    const { alice, bob1, bob2, callId } = await renegotiating();
    alice.send('call:hangup', { recipientId: 'bob', callId });
    await bob2.next('call:hangup');
    const at = hits();
    // The ended record lives on for a while (endedCallTtlMs), marked ended: the route was dropped
    // with the record's change, and the late offer is refused (test/calls/ended-calls.test.ts).
    const reply = await alice.request('call:offer', { recipientId: 'bob', callId, sdp: sdp(3) });
    expect(reply).toMatchObject({
      type: 'error',
      payload: { code: 'CALL_NOT_FOUND', details: { ended: true } },
    });
    expect(hits()).toBe(at);
    await quiet();
    expect(sdps(bob1)).toEqual(['offer:0']);
    expect(sdps(bob2)).toEqual(['offer:0', 'offer:1', 'offer:2']);
  });

  it('bad input on the route’s path still gets its clear error, and the route goes on working', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const callId = await answered(alice, [bob], bob);
    alice.send('call:offer', { recipientId: 'bob', callId, sdp: sdp(1) });
    await sdpUntil(bob, 'offer:1');
    // An offer without its SDP, one with a forged sender, an answer for a call there is not.
    const bad = await alice.request('call:offer', { recipientId: 'bob', callId });
    expect(bad).toMatchObject({ type: 'error', payload: { code: 'INVALID_MESSAGE' } });
    expect((bad as ServerMessageOf<'error'>).payload.message).toMatch(/sdp/);
    alice.send('call:offer', {
      recipientId: 'bob',
      callId,
      sdp: sdp(2),
      senderId: 'mallory',
      senderName: 'M',
    });
    const none = await alice.request('call:answer', {
      recipientId: 'bob',
      callId: 'no-such-call',
      sdp: sdp(9),
    });
    expect(none).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_FOUND' } });
    alice.send('call:offer', { recipientId: 'bob', callId, sdp: sdp(3) });
    await sdpUntil(bob, 'offer:3');
    await quiet();
    expect(sdps(bob)).toEqual(['offer:0', 'offer:1', 'offer:2', 'offer:3']);
    const got = bob.received.filter((m): m is ServerMessageOf<'call:offer'> => m.type === 'call:offer');
    expect(got.map((m) => m.payload.senderId)).toEqual(['alice', 'alice', 'alice', 'alice']);
  });
});

describe('routes in a call that lasts, one node (time past the record cache’s lifetime)', () => {
  // The server's time is a FakeClock: a call "lasts" by advancing it, without waiting.
  let clock: FakeClock;
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    clock = new FakeClock(Date.now());
    srv = await startServer({ CALL_POLICY: 'any' }, {}, { clock });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await srv?.close();
  });
  const connect = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub.toUpperCase() }));
    clients.push(c);
    return trackSdp(track(c));
  };
  const relay = () => srv.server.internalsForTesting.relay;

  it('an answered call keeps its candidates’ and re-offers’ routes after the record cache’s entry expired', async () => {
    const alice = await connect('long-a');
    const bob = await connect('long-b');
    const callId = 'long-1';
    alice.send('call:offer', { recipientId: 'long-b', callId, sdp: sdp(0) });
    await sdpUntil(bob, 'offer:0');
    bob.send('call:accept', { recipientId: 'long-a', callId });
    await alice.next('call:accept');
    alice.send('call:ice-candidate', cand('long-b', callId, 1));
    await iceUntil(bob, 1);
    alice.send('call:offer', { recipientId: 'long-b', callId, sdp: sdp(1) });
    await sdpUntil(bob, 'offer:1');
    // The call goes on past the lifetime of the cached record the first route was planned from.
    await clock.advance(defaults.callRecordCacheTtlMs + 1_000);
    const ice = relay().iceRouteHitsForTesting;
    for (let n = 2; n <= 21; n++) alice.send('call:ice-candidate', cand('long-b', callId, n));
    await iceUntil(bob, 21);
    expect(seqs(bob)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    // The first one after the pause planned the route again; every other one took it.
    expect(relay().iceRouteHitsForTesting - ice).toBe(19);
    const offers = relay().sdpRouteHitsForTesting;
    for (let n = 2; n <= 4; n++) {
      alice.send('call:offer', { recipientId: 'long-b', callId, sdp: sdp(n) });
      await sdpUntil(bob, `offer:${n}`);
    }
    expect(relay().sdpRouteHitsForTesting - offers).toBe(2);
    // Still the same call, still the rules of one: the callee hangs up, and the route is gone.
    bob.send('call:hangup', { recipientId: 'long-a', callId });
    await alice.next('call:hangup');
    expect(await alice.request('call:offer', { recipientId: 'long-b', callId, sdp: sdp(5) })).toMatchObject({
      type: 'error',
      payload: { code: 'CALL_NOT_FOUND', details: { ended: true } },
    });
    alice.send('call:ice-candidate', cand('long-b', callId, 22));
    await quiet();
    expect(seqs(bob).at(-1)).toBe(21);
  });
});

describe('ICE routes, two nodes and Redis: the peer moves', () => {
  const cluster = clusterForSuite(
    ['ir-1', 'ir-2'],
    (nodeId, redis) => ({
      REDIS_URL: redis.url,
      NODE_ID: nodeId,
      CALL_POLICY: 'any',
      RATE_LIMIT_BURST: '1000',
    }),
    { startTimeoutMs: 40_000 },
  );
  const nodes = cluster.nodes;
  const issuer = new TokenIssuer({ secret: TEST_SECRET });
  /**
   * Well under the directory cache's 5 s TTL (defaults.directoryCacheTtlMs), and the call record
   * cache's: only the invalidation that a move sends through the bus can re-route within it.
   */
  const PROBE_MS = 2_000;
  const on = async (node: NodeProcess, sub: string) =>
    cluster.adopt(track(await TestClient.connect(node.wsUrl, await issuer.issue({ sub, name: sub }))));

  it('candidates follow the callee from the other node to the caller’s node and back', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const a = await on(n1, 'mv-a');
    let b = await on(n2, 'mv-b');
    a.send('call:offer', { recipientId: 'mv-b', callId: 'mv', sdp: OFFER });
    await b.next('call:offer');
    for (let n = 1; n <= 3; n++) a.send('call:ice-candidate', cand('mv-b', 'mv', n));
    await iceUntil(b, 3);
    expect(seqs(b)).toEqual([1, 2, 3]);

    // The callee moves to `node`: a new session there comes up, then the old one leaves (a
    // handover: the user is never offline, so the call still rings; a callee who left for good
    // would have ended it, test/calls/ended-calls.test.ts). The caller's candidates follow it
    // there, then one marked `mark` arrives last.
    let n = 3;
    const moveCallee = async (node: NodeProcess, where: string, mark: number) => {
      const old = b;
      b = await on(node, 'mv-b');
      await old.close(1000);
      await waitUntil(
        async () => {
          const probe = ++n;
          a.send('call:ice-candidate', cand('mv-b', 'mv', probe));
          return iceUntilWithin(b, probe, 200);
        },
        `candidates to reach the callee on ${where}`,
        PROBE_MS,
      );
      a.send('call:ice-candidate', cand('mv-b', 'mv', mark));
      await iceUntil(b, mark);
      expect(seqs(b).at(-1)).toBe(mark);
    };
    await moveCallee(n1, 'node 1', 100);
    await moveCallee(n2, 'node 2 again', 200); // and back
    expect(a.received.filter((m) => m.type === 'error')).toEqual([]);
  });
});
