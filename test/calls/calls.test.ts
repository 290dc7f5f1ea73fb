import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { serverForSuite } from '../helpers/suite-server.js';

const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=offer\r\n';
const ANSWER = 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=answer\r\n';
const CANDIDATE = {
  candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host',
  sdpMid: '0',
  sdpMLineIndex: 0,
};

const isCall = (m: ServerMessage) =>
  m.type.startsWith('call:') || m.type.startsWith('sdp:') || m.type === 'ice:candidate';

describe('1:1 calls and in-room relay', () => {
  // Call mechanics, between users who share no room: CALL_POLICY=any (the relationship rule
  // has its own file, test/calls/relay-abuse.test.ts).
  const suite = serverForSuite({ CALL_POLICY: 'any' });
  const connect = (sub: string, name?: string) => suite.connect(name ? { sub, name } : { sub });

  it('relays offer, answer, ICE candidates, accept, reject and hangup both ways with the server-set sender', async () => {
    const alice = await connect('alice', 'Alice');
    const bob = await connect('bob', 'Bob');
    const from = (c: 'alice' | 'bob') => ({ senderId: c, senderName: c === 'alice' ? 'Alice' : 'Bob' });

    alice.send('call:offer', { recipientId: 'bob', callId: 'k1', sdp: OFFER }, 'o1');
    expect((await bob.next('call:offer')).payload).toEqual({ callId: 'k1', sdp: OFFER, ...from('alice') });

    bob.send('call:accept', { recipientId: 'alice', callId: 'k1' });
    expect((await alice.next('call:accept')).payload).toEqual({ callId: 'k1', ...from('bob') });

    bob.send('call:answer', { recipientId: 'alice', callId: 'k1', sdp: ANSWER });
    expect((await alice.next('call:answer')).payload).toEqual({ callId: 'k1', sdp: ANSWER, ...from('bob') });

    alice.send('call:ice-candidate', { recipientId: 'bob', callId: 'k1', candidate: CANDIDATE });
    expect((await bob.next('call:ice-candidate')).payload).toEqual({
      callId: 'k1',
      candidate: CANDIDATE,
      ...from('alice'),
    });
    bob.send('call:ice-candidate', { recipientId: 'alice', callId: 'k1', candidate: null });
    expect((await alice.next('call:ice-candidate')).payload).toEqual({
      callId: 'k1',
      candidate: null,
      ...from('bob'),
    });

    // A renegotiation offer from the callee flows the other way.
    bob.send('call:offer', { recipientId: 'alice', callId: 'k1', sdp: OFFER });
    expect((await alice.next('call:offer')).payload).toMatchObject({ callId: 'k1', ...from('bob') });

    alice.send('call:hangup', { recipientId: 'bob', callId: 'k1', reason: 'done' });
    expect((await bob.next('call:hangup')).payload).toEqual({
      callId: 'k1',
      reason: 'done',
      ...from('alice'),
    });

    alice.send('call:offer', { recipientId: 'bob', callId: 'k2', sdp: OFFER });
    await bob.next('call:offer');
    bob.send('call:reject', { recipientId: 'alice', callId: 'k2', reason: 'busy' });
    expect((await alice.next('call:reject')).payload).toEqual({
      callId: 'k2',
      reason: 'busy',
      ...from('bob'),
    });

    // Success has no reply, and nobody hears their own messages echoed.
    await alice.expectNothing((m) => m.correlationId === 'o1' || isCall(m), 150);
    await bob.expectNothing(isCall, 0);
  });

  it('ignores identity fields in the payload: the recipient sees the real sender', async () => {
    const alice = await connect('alice', 'Alice');
    const bob = await connect('bob', 'Bob');
    alice.send('call:offer', {
      recipientId: 'bob',
      callId: 'k3',
      sdp: OFFER,
      senderId: 'mallory',
      senderName: 'The Boss',
    });
    const got = await bob.next('call:offer');
    expect(got.payload.senderId).toBe('alice');
    expect(got.payload.senderName).toBe('Alice');
    expect(got.payload).not.toHaveProperty('recipientId');

    await alice.request('room:join', { roomId: 'spoof' });
    await bob.request('room:join', { roomId: 'spoof' });
    alice.send('sdp:offer', {
      roomId: 'spoof',
      to: 'bob',
      sdp: OFFER,
      senderId: 'mallory',
      senderName: 'The Boss',
    });
    const inRoom = await bob.next('sdp:offer');
    expect(inRoom.payload).toMatchObject({ senderId: 'alice', senderName: 'Alice', roomId: 'spoof' });
  });

  it("call:offer to an offline user → RECIPIENT_OFFLINE with the request's correlationId", async () => {
    const alice = await connect('alice');
    const reply = await alice.request('call:offer', { recipientId: 'nobody', callId: 'k4', sdp: OFFER });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'RECIPIENT_OFFLINE' } });
    expect(reply.correlationId).toMatch(/^c\d+$/);
  });

  // Only an offer starts a call; the other messages need one between the two users, online or not.
  for (const [type, payload] of [
    ['call:answer', { sdp: ANSWER }],
    ['call:accept', {}],
    ['call:reject', { reason: 'no' }],
    ['call:hangup', {}],
  ] as const) {
    it(`${type} without a call → CALL_NOT_FOUND with the request's correlationId, to an offline or an online user`, async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      for (const recipientId of ['nobody', 'bob']) {
        const reply = await alice.request(type, { recipientId, callId: 'k4', ...payload });
        expect(reply).toMatchObject({ type: 'error', payload: { code: 'CALL_NOT_FOUND' } });
        expect(reply.correlationId).toMatch(/^c\d+$/);
      }
      await bob.expectNothing(isCall, 100);
    });
  }

  it('calling yourself with no other connection is RECIPIENT_OFFLINE', async () => {
    const alice = await connect('alice');
    const reply = await alice.request('call:offer', { recipientId: 'alice', callId: 'self', sdp: OFFER });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'RECIPIENT_OFFLINE' } });
  });

  it('drops ICE candidates for an offline user silently', async () => {
    const alice = await connect('alice');
    alice.send('call:ice-candidate', { recipientId: 'nobody', callId: 'k5', candidate: CANDIDATE }, 'ice1');
    await alice.expectNothing((m) => m.type === 'error' || m.correlationId === 'ice1', 300);
    expect((await alice.request('ping')).type).toBe('pong');
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['missing recipientId', { callId: 'k', sdp: OFFER }, 'payload.recipientId'],
    ['numeric recipientId', { recipientId: 7, callId: 'k', sdp: OFFER }, 'payload.recipientId'],
    ['empty recipientId', { recipientId: '', callId: 'k', sdp: OFFER }, 'payload.recipientId'],
    ['missing callId', { recipientId: 'bob', sdp: OFFER }, 'payload.callId'],
    ['object callId', { recipientId: 'bob', callId: { id: 1 }, sdp: OFFER }, 'payload.callId'],
    ['missing sdp', { recipientId: 'bob', callId: 'k' }, 'payload.sdp'],
  ];
  for (const [what, payload, path] of invalid) {
    it(`call:offer with ${what} → INVALID_MESSAGE naming ${path}`, async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const reply = await alice.request('call:offer', payload);
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'INVALID_MESSAGE', details: { path } } });
      await bob.expectNothing(isCall, 100);
    });
  }

  it('validates recipientId/callId on every call message, including ICE candidates', async () => {
    const alice = await connect('alice');
    for (const type of ['call:answer', 'call:ice-candidate', 'call:accept', 'call:reject', 'call:hangup']) {
      const reply = await alice.request(type, { recipientId: 'bob', candidate: null, sdp: ANSWER });
      expect(reply).toMatchObject({
        type: 'error',
        payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.callId' } },
      });
    }
  });

  it('delivers to every connection of the recipient; a user\u2019s own other connection receives, the sender does not', async () => {
    const alice = await connect('alice', 'Alice');
    const bob1 = await connect('bob');
    const bob2 = await connect('bob');
    alice.send('call:offer', { recipientId: 'bob', callId: 'k6', sdp: OFFER });
    const [a, b] = await Promise.all([bob1.next('call:offer'), bob2.next('call:offer')]);
    expect(a.payload).toEqual(b.payload);
    expect(a.payload.senderId).toBe('alice');

    // bob1 calls bob: bob2 rings, bob1 gets no echo.
    bob1.send('call:offer', { recipientId: 'bob', callId: 'k7', sdp: OFFER });
    expect((await bob2.next('call:offer')).payload).toMatchObject({ callId: 'k7', senderId: 'bob' });
    await bob1.expectNothing(isCall, 150);
  });

  it('relays sdp:offer, sdp:answer and ice:candidate between members of the same room', async () => {
    const alice = await connect('alice', 'Alice');
    const bob = await connect('bob', 'Bob');
    await alice.request('room:join', { roomId: 'p2p' });
    await bob.request('room:join', { roomId: 'p2p' });

    alice.send('sdp:offer', { roomId: 'p2p', to: 'bob', sdp: OFFER });
    expect((await bob.next('sdp:offer')).payload).toEqual({
      roomId: 'p2p',
      sdp: OFFER,
      senderId: 'alice',
      senderName: 'Alice',
    });
    bob.send('sdp:answer', { roomId: 'p2p', to: 'alice', sdp: ANSWER });
    expect((await alice.next('sdp:answer')).payload).toEqual({
      roomId: 'p2p',
      sdp: ANSWER,
      senderId: 'bob',
      senderName: 'Bob',
    });
    bob.send('ice:candidate', { roomId: 'p2p', to: 'alice', candidate: CANDIDATE });
    expect((await alice.next('ice:candidate')).payload).toEqual({
      roomId: 'p2p',
      candidate: CANDIDATE,
      senderId: 'bob',
      senderName: 'Bob',
    });
  });

  it('refuses in-room relay with NOT_IN_ROOM when the sender or the recipient is not in the room', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const carol = await connect('carol');
    const outsider = await connect('dave');
    await alice.request('room:join', { roomId: 'r1' });
    await bob.request('room:join', { roomId: 'r1' });
    await carol.request('room:join', { roomId: 'r2' });

    // Recipient is in another room.
    for (const type of ['sdp:offer', 'sdp:answer', 'ice:candidate']) {
      const reply = await alice.request(type, {
        roomId: 'r1',
        to: 'carol',
        sdp: OFFER,
        candidate: CANDIDATE,
      });
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'NOT_IN_ROOM' } });
    }
    // Sender is not a member of the room named (the recipient is).
    expect(await alice.request('sdp:offer', { roomId: 'r2', to: 'carol', sdp: OFFER })).toMatchObject({
      type: 'error',
      payload: { code: 'NOT_IN_ROOM' },
    });
    expect(await outsider.request('sdp:offer', { roomId: 'r1', to: 'bob', sdp: OFFER })).toMatchObject({
      type: 'error',
      payload: { code: 'NOT_IN_ROOM' },
    });
    // A member that left can no longer be reached.
    await bob.request('room:leave', { roomId: 'r1' });
    expect(await alice.request('sdp:offer', { roomId: 'r1', to: 'bob', sdp: OFFER })).toMatchObject({
      type: 'error',
      payload: { code: 'NOT_IN_ROOM' },
    });
    await carol.expectNothing(isCall, 100);
    await bob.expectNothing(isCall, 0);
  });

  it('hangs up for a caller who disconnects for good mid-call', async () => {
    const alice = await connect('alice', 'Alice');
    const bob = await connect('bob', 'Bob');
    alice.send('call:offer', { recipientId: 'bob', callId: 'k8', sdp: OFFER });
    await bob.next('call:offer');
    bob.send('call:accept', { recipientId: 'alice', callId: 'k8' });
    await alice.next('call:accept');
    await alice.close(1000);
    const hangup = await bob.next('call:hangup', 1_000);
    expect(hangup.payload).toEqual({
      callId: 'k8',
      senderId: 'alice',
      senderName: 'Alice',
      reason: 'disconnected',
    });
  });

  it('sends no hang-up while the user is online elsewhere, nor for a call that already ended', async () => {
    const alice1 = await connect('alice');
    const alice2 = await connect('alice');
    const bob = await connect('bob');
    alice1.send('call:offer', { recipientId: 'bob', callId: 'k9', sdp: OFFER });
    await bob.next('call:offer');
    await alice1.close(1000); // alice is still online on alice2
    await bob.expectNothing((m) => m.type === 'call:hangup', 200);

    bob.send('call:offer', { recipientId: 'alice', callId: 'k10', sdp: OFFER });
    await alice2.next('call:offer');
    bob.send('call:hangup', { recipientId: 'alice', callId: 'k10' });
    await alice2.next('call:hangup');
    await bob.close(1000);
    // Calls are tracked per user: k9 is still up as far as alice is concerned, so she hears it end;
    // k10 was hung up already and produces nothing more.
    const hangup = await alice2.next('call:hangup', 1_000);
    expect(hangup.payload).toMatchObject({ callId: 'k9', senderId: 'bob', reason: 'disconnected' });
    await alice2.expectNothing((m) => m.type === 'call:hangup', 200);
  });

  it('never writes an SDP body or ICE candidate to the logs, even at debug level', async () => {
    const marker = 'a=fingerprint:sha-256 MARKER-9F:3C:77:DE:AD:BE:EF';
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.request('room:join', { roomId: 'logs' });
    await bob.request('room:join', { roomId: 'logs' });
    alice.send('call:offer', { recipientId: 'bob', callId: 'k11', sdp: `${OFFER}${marker}\r\n` }, 'log1');
    expect((await bob.next('call:offer')).payload.sdp).toContain(marker);
    alice.send('sdp:offer', { roomId: 'logs', to: 'bob', sdp: `${OFFER}${marker}\r\n` });
    await bob.next('sdp:offer');
    alice.send('call:ice-candidate', { recipientId: 'bob', callId: 'k11', candidate: { candidate: marker } });
    await bob.next('call:ice-candidate');
    // Refused and invalid messages carrying SDP are not logged either.
    await alice.request('call:offer', { recipientId: 'nobody', callId: 'k12', sdp: marker });
    await alice.request('call:offer', { recipientId: 'bob', callId: 5, sdp: marker });

    const text = suite.server().logText();
    expect(text).not.toContain('MARKER-9F');
    // Logging was on: the relayed messages were logged by type and correlationId.
    expect(
      suite
        .server()
        .logs.some((l) => l.level === 20 && l.type === 'call:offer' && l.correlationId === 'log1'),
    ).toBe(true);
  });
});
