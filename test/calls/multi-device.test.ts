import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import type { TestClient } from '../helpers/client.js';
import { serverForSuite } from '../helpers/suite-server.js';
import { waitUntil } from '../helpers/wait.js';

const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=offer\r\n';
const ANSWER = 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=answer\r\n';
const CANDIDATE = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host', sdpMid: '0' };

const isCall = (m: ServerMessage) => m.type.startsWith('call:');
const refused = { type: 'error', payload: { code: 'CALL_ANSWERED_ELSEWHERE' } };

describe('1:1 calls on several devices of one user', () => {
  // Devices of users who share no room: CALL_POLICY=any (test/calls/relay-abuse.test.ts has the rule).
  const suite = serverForSuite({ CALL_POLICY: 'any' });
  let seq = 0;
  const connect = (sub: string) => suite.connect({ sub, name: sub.toUpperCase() });
  /** alice calls bob, whose two devices ring. */
  const ringing = async () => {
    const [alice, bob1, bob2] = [await connect('alice'), await connect('bob'), await connect('bob')];
    const callId = `md${++seq}`;
    alice.send('call:offer', { recipientId: 'bob', callId, sdp: OFFER });
    await Promise.all([bob1.next('call:offer'), bob2.next('call:offer')]);
    return { alice, bob1, bob2, callId, to: (recipientId: string) => ({ recipientId, callId }) };
  };

  it('the first device to accept wins: the other stops ringing, then hears nothing more of the call and may not act on it', async () => {
    const { alice, bob1, bob2, callId, to } = await ringing();
    bob1.send('call:accept', to('alice'));
    expect((await alice.next('call:accept')).payload).toEqual({ callId, senderId: 'bob', senderName: 'BOB' });
    expect((await bob2.next('call:answered-elsewhere')).payload).toEqual({
      callId,
      callerId: 'alice',
      outcome: 'accepted',
    });
    bob1.send('call:answer', { ...to('alice'), sdp: ANSWER });
    expect((await alice.next('call:answer')).payload.sdp).toBe(ANSWER);

    // The caller's renegotiation, candidates and hang-up reach the answering device only.
    alice.send('call:offer', { ...to('bob'), sdp: OFFER });
    alice.send('call:ice-candidate', { ...to('bob'), candidate: CANDIDATE });
    await bob1.next('call:offer');
    await bob1.next('call:ice-candidate');

    // The other device is refused, clearly, with the request's correlationId; its candidates are dropped.
    for (const [type, extra] of [
      ['call:accept', {}],
      ['call:answer', { sdp: ANSWER }],
      ['call:reject', { reason: 'no' }],
      ['call:hangup', {}],
      ['call:offer', { sdp: OFFER }],
    ] as const) {
      expect(await bob2.request(type, { ...to('alice'), ...extra })).toMatchObject(refused);
    }
    bob2.send('call:ice-candidate', { ...to('alice'), candidate: CANDIDATE }, 'ice-from-bob2');
    alice.send('call:hangup', to('bob'));
    await bob1.next('call:hangup');
    await alice.expectNothing((m) => isCall(m) || m.correlationId === 'ice-from-bob2', 150);
    await bob2.expectNothing(isCall, 0);
    await bob1.expectNothing(isCall, 0);
  });

  it('two devices accepting at the same instant: exactly one accept reaches the caller, the other is refused', async () => {
    for (let round = 0; round < 10; round++) {
      const { alice, bob1, bob2, to } = await ringing();
      bob1.send('call:accept', to('alice'), 'accept-1');
      bob2.send('call:accept', to('alice'), 'accept-2');
      await alice.next('call:accept');
      const replyOf = (c: TestClient, id: string) => c.received.find((m) => m.correlationId === id);
      // Success has no reply: only the loser hears back, and it is the refusal.
      await waitUntil(() => !!(replyOf(bob1, 'accept-1') ?? replyOf(bob2, 'accept-2')), 'a refusal');
      const [loser, winner] = replyOf(bob1, 'accept-1') ? [bob1, bob2] : [bob2, bob1];
      expect(replyOf(loser, loser === bob1 ? 'accept-1' : 'accept-2')).toMatchObject(refused);
      expect((await loser.next('call:answered-elsewhere')).payload.outcome).toBe('accepted');
      await winner.expectNothing((m) => m.type === 'error' || m.type === 'call:answered-elsewhere', 50);
      await alice.expectNothing((m) => m.type === 'call:accept', 50);
      await suite.closeClients();
    }
  });

  it('a device that declines ends the call for every device; a later accept elsewhere is refused', async () => {
    const { alice, bob1, bob2, callId, to } = await ringing();
    bob1.send('call:reject', { ...to('alice'), reason: 'declined' });
    expect((await alice.next('call:reject')).payload).toMatchObject({ callId, reason: 'declined' });
    expect((await bob2.next('call:answered-elsewhere')).payload).toEqual({
      callId,
      callerId: 'alice',
      outcome: 'rejected',
    });
    expect(await bob2.request('call:accept', to('alice'))).toMatchObject(refused);
    await alice.expectNothing((m) => m.type === 'call:accept', 100);
  });

  it('after the call ended, a device it rang is still refused as answered elsewhere; a device it never reached is told it ended', async () => {
    const { alice, bob1, bob2, callId, to } = await ringing();
    const alice2 = await connect('alice');
    bob1.send('call:accept', to('alice'));
    await alice.next('call:accept');
    await bob2.next('call:answered-elsewhere');
    alice.send('call:hangup', to('bob'));
    await bob1.next('call:hangup');
    const ended = { type: 'error', payload: { code: 'CALL_NOT_FOUND', details: { callId, ended: true } } };
    // bob2 rang and heard call:answered-elsewhere: the same answer as while the call lasted.
    expect(await bob2.request('call:accept', to('alice'))).toMatchObject(refused);
    // alice's other device and bob's new one never took part: the call id names a call that ended.
    expect(await alice2.request('call:offer', { ...to('bob'), sdp: OFFER })).toMatchObject(ended);
    const bob3 = await connect('bob');
    expect(await bob3.request('call:accept', to('alice'))).toMatchObject(ended);
    // And the call's own two sessions, as before (test/calls/ended-calls.test.ts).
    expect(await alice.request('call:offer', { ...to('bob'), sdp: OFFER })).toMatchObject(ended);
    await Promise.all([alice, bob1, bob2].map((c) => c.expectNothing(isCall, 100)));
  });

  it('busy: a device in another call declines for itself; the caller hears busy only when every ringing device is busy', async () => {
    const { alice, bob1, bob2, to } = await ringing();
    bob1.send('call:reject', { ...to('alice'), reason: 'busy' });
    await alice.expectNothing(isCall, 150);
    await bob2.expectNothing((m) => m.type === 'call:answered-elsewhere', 0);
    // The device that is free still answers.
    bob2.send('call:accept', to('alice'));
    expect((await alice.next('call:accept')).payload.senderId).toBe('bob');
    expect((await bob1.next('call:answered-elsewhere')).payload.outcome).toBe('accepted');

    await suite.closeClients();
    const second = await ringing();
    second.bob1.send('call:reject', { ...second.to('alice'), reason: 'busy' });
    second.bob2.send('call:reject', { ...second.to('alice'), reason: 'busy' });
    expect((await second.alice.next('call:reject')).payload.reason).toBe('busy');
    await second.alice.expectNothing((m) => m.type === 'call:reject', 100);
  });

  it('busy: a ringing device that went away does not keep the caller waiting', async () => {
    const { alice, bob1, bob2, to } = await ringing();
    await bob2.close(1000);
    bob1.send('call:reject', { ...to('alice'), reason: 'busy' });
    expect((await alice.next('call:reject')).payload.reason).toBe('busy');
  });

  it('the caller cancelling while it rings stops every device', async () => {
    const { alice, bob1, bob2, to } = await ringing();
    alice.send('call:hangup', to('bob'));
    await Promise.all([bob1.next('call:hangup'), bob2.next('call:hangup')]);
  });

  it('on the caller’s side, only the device that called hears the callee, and no other device may act on the call', async () => {
    const alice1 = await connect('alice');
    const alice2 = await connect('alice');
    const bob = await connect('bob');
    alice1.send('call:offer', { recipientId: 'bob', callId: 'mdc', sdp: OFFER });
    await bob.next('call:offer');
    bob.send('call:accept', { recipientId: 'alice', callId: 'mdc' });
    bob.send('call:offer', { recipientId: 'alice', callId: 'mdc', sdp: OFFER }); // e.g. adds a camera
    await alice1.next('call:accept');
    await alice1.next('call:offer');
    await alice2.expectNothing(isCall, 150);
    expect(await alice2.request('call:hangup', { recipientId: 'bob', callId: 'mdc' })).toMatchObject(refused);
    await bob.expectNothing((m) => m.type === 'call:hangup', 100);
  });

  it('a user calling themselves: the other device answers, the calling one is the caller', async () => {
    const me1 = await connect('carol');
    const me2 = await connect('carol');
    const me3 = await connect('carol');
    me1.send('call:offer', { recipientId: 'carol', callId: 'self', sdp: OFFER });
    await Promise.all([me2.next('call:offer'), me3.next('call:offer')]);
    me2.send('call:accept', { recipientId: 'carol', callId: 'self' });
    await me1.next('call:accept');
    expect((await me3.next('call:answered-elsewhere')).payload).toMatchObject({ callerId: 'carol' });
    await me2.expectNothing(isCall, 100);
  });

  it('bad input: call:answered-elsewhere is the server’s to send; a call message without a callId is invalid', async () => {
    const alice = await connect('alice');
    await connect('bob');
    expect(
      await alice.request('call:answered-elsewhere', { callId: 'x', callerId: 'bob', outcome: 'accepted' }),
    ).toMatchObject({ type: 'error', payload: { code: 'UNKNOWN_TYPE' } });
    expect(await alice.request('call:accept', { recipientId: 'bob' })).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.callId' } },
    });
    expect(await alice.request('call:reject', { recipientId: 'bob', callId: 'x', reason: 7 })).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.reason' } },
    });
  });
});
