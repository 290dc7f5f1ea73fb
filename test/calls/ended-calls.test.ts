import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient } from '../helpers/client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { TEST_SECRET } from '../helpers/server.js';
import { clusterForSuite } from '../helpers/suite-cluster.js';
import { serverForSuite } from '../helpers/suite-server.js';

/**
 * A call that has ended stays ended. Its record lives on for a minute (endedCallTtlMs) marked
 * `ended`, so that its late messages are told from a new call's: late candidates and hang-ups are
 * dropped silently, a late offer, answer or accept is refused (CALL_NOT_FOUND, `ended: true`), and
 * nothing brings the call back: it is not tracked again, so neither side later hears a second end
 * (`call:hangup` "disconnected") of a call it already ended, on one node or across two. A call
 * one side left for good (the other heard `call:hangup` "disconnected") has ended the same way.
 */

const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=offer\r\n';
const ANSWER = 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=answer\r\n';
const CANDIDATE = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host', sdpMid: '0' };

const isCall = (m: ServerMessage) => m.type.startsWith('call:');
const ended = (callId: string, recipientId: string) => ({
  type: 'error',
  payload: { code: 'CALL_NOT_FOUND', details: { callId, recipientId, ended: true } },
});

/** alice calls bob, bob accepts and answers, then `hanger` hangs up and the other side hears it. */
async function endedCall(alice: TestClient, bob: TestClient, callId: string, hanger: 'alice' | 'bob') {
  alice.send('call:offer', { recipientId: 'bob', callId, sdp: OFFER });
  await bob.next('call:offer');
  bob.send('call:accept', { recipientId: 'alice', callId });
  bob.send('call:answer', { recipientId: 'alice', callId, sdp: ANSWER });
  await alice.next('call:accept');
  await alice.next('call:answer');
  if (hanger === 'alice') {
    alice.send('call:hangup', { recipientId: 'bob', callId });
    await bob.next('call:hangup');
  } else {
    bob.send('call:hangup', { recipientId: 'alice', callId });
    await alice.next('call:hangup');
  }
}

describe('a call that ended, on one node', () => {
  const suite = serverForSuite({ CALL_POLICY: 'any' });
  const connect = (sub: string) => suite.connect({ sub, name: sub.toUpperCase() });
  const tracked = (callId: string) =>
    suite
      .server()
      .server.internalsForTesting.relay.calls.list()
      .filter((c) => c.callId === callId);

  it('a late offer, answer or accept is refused as ended, reaches nobody, and does not bring the call back', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await endedCall(alice, bob, 'e1', 'alice');
    expect(tracked('e1')).toEqual([]);

    const offer = await alice.request('call:offer', { recipientId: 'bob', callId: 'e1', sdp: OFFER });
    expect(offer).toMatchObject(ended('e1', 'bob'));
    expect((offer as { payload: { message: string } }).payload.message).toMatch(/has ended.*new callId/);
    expect(
      await bob.request('call:answer', { recipientId: 'alice', callId: 'e1', sdp: ANSWER }),
    ).toMatchObject(ended('e1', 'alice'));
    expect(await bob.request('call:accept', { recipientId: 'alice', callId: 'e1' })).toMatchObject(
      ended('e1', 'alice'),
    );
    await bob.expectNothing(isCall, 100);
    await alice.expectNothing(isCall, 0);
    expect(tracked('e1')).toEqual([]);

    // Nothing tracked, so alice leaving ends nothing more: bob hears no second end of the call.
    await alice.close(1000);
    await bob.expectNothing((m) => m.type === 'call:hangup', 300);
  });

  it('late candidates and hang-ups (both sides hanging up at once) are dropped silently, both ways', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await endedCall(alice, bob, 'e2', 'bob');
    alice.send(
      'call:ice-candidate',
      { recipientId: 'bob', callId: 'e2', candidate: CANDIDATE },
      'late-ice-a',
    );
    alice.send('call:hangup', { recipientId: 'bob', callId: 'e2' }, 'late-hangup-a');
    bob.send(
      'call:ice-candidate',
      { recipientId: 'alice', callId: 'e2', candidate: CANDIDATE },
      'late-ice-b',
    );
    bob.send('call:reject', { recipientId: 'alice', callId: 'e2', reason: 'late' }, 'late-reject-b');
    await alice.expectNothing((m) => isCall(m) || m.type === 'error', 200);
    await bob.expectNothing((m) => isCall(m) || m.type === 'error', 0);
    expect(tracked('e2')).toEqual([]);
    // The pair's next call, with a new id, rings as any call does.
    alice.send('call:offer', { recipientId: 'bob', callId: 'e2-next', sdp: OFFER });
    expect((await bob.next('call:offer')).payload).toMatchObject({ callId: 'e2-next', senderId: 'alice' });
    expect(tracked('e2-next')).toMatchObject([{ callerId: 'alice', calleeId: 'bob', answeredAt: null }]);
  });

  it('a call the caller cancelled while it rang cannot be accepted late on any device', async () => {
    const alice = await connect('alice');
    const bob1 = await connect('bob');
    const bob2 = await connect('bob');
    alice.send('call:offer', { recipientId: 'bob', callId: 'e3', sdp: OFFER });
    await Promise.all([bob1.next('call:offer'), bob2.next('call:offer')]);
    alice.send('call:hangup', { recipientId: 'bob', callId: 'e3' });
    await Promise.all([bob1.next('call:hangup'), bob2.next('call:hangup')]);

    expect(await bob1.request('call:accept', { recipientId: 'alice', callId: 'e3' })).toMatchObject(
      ended('e3', 'alice'),
    );
    expect(
      await bob2.request('call:answer', { recipientId: 'alice', callId: 'e3', sdp: ANSWER }),
    ).toMatchObject(ended('e3', 'alice'));
    // Neither device became the callee: the caller hears nothing, no device is told another answered.
    await alice.expectNothing(isCall, 150);
    await bob1.expectNothing((m) => m.type === 'call:answered-elsewhere', 0);
    await bob2.expectNothing((m) => m.type === 'call:answered-elsewhere', 0);
    expect(tracked('e3')).toEqual([]);
  });

  it('a call whose peer left for good is ended: a late offer on its callId is refused, even after they return', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    alice.send('call:offer', { recipientId: 'bob', callId: 'd1', sdp: OFFER });
    await bob.next('call:offer');
    bob.send('call:accept', { recipientId: 'alice', callId: 'd1' });
    bob.send('call:answer', { recipientId: 'alice', callId: 'd1', sdp: ANSWER });
    await alice.next('call:accept');
    await alice.next('call:answer');
    await alice.close(1000);
    expect((await bob.next('call:hangup', 1_000)).payload).toMatchObject({
      callId: 'd1',
      reason: 'disconnected',
    });
    expect(tracked('d1')).toEqual([]);

    const back = await connect('alice');
    expect(await bob.request('call:offer', { recipientId: 'alice', callId: 'd1', sdp: OFFER })).toMatchObject(
      ended('d1', 'alice'),
    );
    // alice's new session is told the call ended, as bob is (it did not ring: no other device had it).
    expect(await back.request('call:offer', { recipientId: 'bob', callId: 'd1', sdp: OFFER })).toMatchObject(
      ended('d1', 'bob'),
    );
    expect(await back.request('call:accept', { recipientId: 'bob', callId: 'd1' })).toMatchObject(
      ended('d1', 'bob'),
    );
    // Its late hang-up and candidates are noise, as the call's own sessions' are.
    back.send('call:hangup', { recipientId: 'bob', callId: 'd1' }, 'd1-late-hangup');
    back.send(
      'call:ice-candidate',
      { recipientId: 'bob', callId: 'd1', candidate: CANDIDATE },
      'd1-late-ice',
    );
    await back.expectNothing(
      (m) => m.correlationId === 'd1-late-hangup' || m.correlationId === 'd1-late-ice',
      150,
    );
    await bob.expectNothing(isCall, 0);
    await back.expectNothing(isCall, 100);
    expect(tracked('d1')).toEqual([]);
    // A new call between them works as any other.
    bob.send('call:offer', { recipientId: 'alice', callId: 'd2', sdp: OFFER });
    expect((await back.next('call:offer')).payload).toMatchObject({ callId: 'd2', senderId: 'bob' });
  });

  it('a call whose caller left while it rang cannot be accepted when they come back', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    alice.send('call:offer', { recipientId: 'bob', callId: 'd3', sdp: OFFER });
    await bob.next('call:offer');
    await alice.close(1000);
    expect((await bob.next('call:hangup', 1_000)).payload).toMatchObject({
      callId: 'd3',
      reason: 'disconnected',
    });
    const back = await connect('alice');
    expect(await bob.request('call:accept', { recipientId: 'alice', callId: 'd3' })).toMatchObject(
      ended('d3', 'alice'),
    );
    await back.expectNothing(isCall, 100);
  });

  it('bad input to an ended call still gets its own clear error first', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await endedCall(alice, bob, 'e4', 'alice');
    // Invalid before anything about the call: INVALID_MESSAGE, naming the field.
    const noSdp = await alice.request('call:offer', { recipientId: 'bob', callId: 'e4' });
    expect(noSdp).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.sdp' } },
    });
    // Another user naming the same call id has no call with bob: that is a new call between them.
    const carol = await connect('carol');
    carol.send('call:offer', { recipientId: 'bob', callId: 'e4', sdp: OFFER });
    expect((await bob.next('call:offer')).payload).toMatchObject({ callId: 'e4', senderId: 'carol' });
    await alice.expectNothing(isCall, 0);
  });
});

describe('a call that ended, across two nodes', () => {
  const cluster = clusterForSuite(
    ['end-1', 'end-2'],
    (nodeId, redis) => ({ REDIS_URL: redis.url, NODE_ID: nodeId, CALL_POLICY: 'any' }),
    { startTimeoutMs: 40_000 },
  );
  const issuer = new TokenIssuer({ secret: TEST_SECRET });
  const on = async (node: NodeProcess | undefined, sub: string) => {
    if (!node) throw new Error('the suite’s nodes are not started');
    return cluster.adopt(await TestClient.connect(node.wsUrl, await issuer.issue({ sub, name: sub })));
  };
  /**
   * `caller` on the first node calls `callee` on the second, which accepts, answers and then
   * offers once more: from there on the callee's node routes the answered call from memory.
   */
  const answeredAcross = async (caller: string, callee: string, callId: string) => {
    const a = await on(cluster.nodes[0], caller);
    const b = await on(cluster.nodes[1], callee);
    a.send('call:offer', { recipientId: callee, callId, sdp: OFFER });
    await b.next('call:offer');
    b.send('call:accept', { recipientId: caller, callId });
    b.send('call:answer', { recipientId: caller, callId, sdp: ANSWER });
    await a.next('call:accept');
    await a.next('call:answer');
    b.send('call:offer', { recipientId: caller, callId, sdp: OFFER });
    await a.next('call:offer');
    return { a, b };
  };

  it('the other node forgets the answered call: the callee’s late offer is refused, and its leaving ends nothing more', async () => {
    const { a: alice, b: bob } = await answeredAcross('x-alice', 'x-bob', 'x1');

    alice.send('call:hangup', { recipientId: 'x-bob', callId: 'x1' });
    await bob.next('call:hangup');
    expect(
      await bob.request('call:offer', { recipientId: 'x-alice', callId: 'x1', sdp: OFFER }),
    ).toMatchObject(ended('x1', 'x-alice'));
    bob.send(
      'call:ice-candidate',
      { recipientId: 'x-alice', callId: 'x1', candidate: CANDIDATE },
      'x-late-ice',
    );
    await bob.expectNothing((m) => m.correlationId === 'x-late-ice', 150);
    await alice.expectNothing(isCall, 0);

    // bob's node had tracked the call from bob's answer; it ended on alice's node, so bob leaving
    // does not end it a second time.
    await bob.close(1000);
    await alice.expectNothing((m) => m.type === 'call:hangup', 500);
  });

  it('a call whose peer left for good on one node is ended on the other: the late offer is refused', async () => {
    const { a: alice, b: bob } = await answeredAcross('z-alice', 'z-bob', 'z1');

    await alice.close(1000);
    expect((await bob.next('call:hangup', 3_000)).payload).toMatchObject({
      callId: 'z1',
      reason: 'disconnected',
    });
    const back = await on(cluster.nodes[0], 'z-alice');
    expect(
      await bob.request('call:offer', { recipientId: 'z-alice', callId: 'z1', sdp: OFFER }),
    ).toMatchObject(ended('z1', 'z-alice'));
    await back.expectNothing(isCall, 100);
  });

  it('a call still up across the nodes still ends for the peer when the other side leaves', async () => {
    const alice = await on(cluster.nodes[0], 'y-alice');
    const bob = await on(cluster.nodes[1], 'y-bob');
    alice.send('call:offer', { recipientId: 'y-bob', callId: 'y1', sdp: OFFER });
    await bob.next('call:offer');
    bob.send('call:accept', { recipientId: 'y-alice', callId: 'y1' });
    await alice.next('call:accept');
    await bob.close(1000);
    expect((await alice.next('call:hangup', 3_000)).payload).toMatchObject({
      callId: 'y1',
      senderId: 'y-bob',
      reason: 'disconnected',
    });
  });
});
