import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { LegacyClient, upgradeOutcome } from './legacy-client.js';

const SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
const CANDIDATE = {
  candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host',
  sdpMid: '0',
  sdpMLineIndex: 0,
};

/**
 * The calls service's flow through the `parley.v0-calls` adapter (subprotocol or `?compat=v0-calls`):
 * hyphenated names both ways, `call-error {recipient_offline}`, and a mixed call between an adapter
 * client and a Parley client.
 */
describe('compat: the calls service through the adapter', () => {
  let srv: TestServer;
  let open: { close: () => Promise<unknown> }[] = [];
  let strict: TestServer;
  const v0 = async (sub: string, via: 'subprotocol' | 'query' = 'subprotocol', server = srv) => {
    const token = await server.token({ sub, name: sub.toUpperCase() });
    const c =
      via === 'subprotocol'
        ? new LegacyClient(server.wsUrl, ['parley.v0-calls', token])
        : new LegacyClient(`${server.wsUrl}?compat=v0-calls`, [], {
            headers: { authorization: `Bearer ${token}` },
          });
    open.push(c);
    await c.opened;
    await c.next('welcome');
    return c;
  };
  const parley = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub.toUpperCase() }));
    open.push(c);
    return c;
  };
  beforeAll(async () => {
    // The calls service had no rooms: its deployments run with CALL_POLICY=any (docs/migration.md).
    srv = await startServer({ CALL_POLICY: 'any' });
    // Parley's default (CALL_POLICY=shared-room), which such clients meet unless it is changed.
    strict = await startServer({});
  });
  afterEach(async () => {
    await Promise.all(open.map((c) => c.close()));
    open = [];
  });
  afterAll(async () => {
    await srv.close();
    await strict.close();
  });

  it('selects the parley.v0-calls subprotocol (never the token beside it)', async () => {
    const c = await v0('caller');
    expect(c.ws.protocol).toBe('parley.v0-calls');
  });

  it.each(['subprotocol', 'query'] as const)(
    'offer, answer, ICE (both ways), accept and hangup in hyphenated names (adapter by %s)',
    async (via) => {
      const alice = await v0(`alice-${via}`, via);
      const bob = await v0(`bob-${via}`, via);
      const sender = (u: string) => ({ senderId: u, senderName: u.toUpperCase() });
      const a = `alice-${via}`;
      const b = `bob-${via}`;

      alice.send({ type: 'call-offer', payload: { recipientId: b, callId: 'k1', sdp: SDP } });
      expect(await bob.next('call-offer')).toMatchObject({
        payload: { callId: 'k1', sdp: SDP, ...sender(a) },
      });
      bob.send({ type: 'call-accept', payload: { recipientId: a, callId: 'k1' } });
      expect(await alice.next('call-accept')).toMatchObject({ payload: { callId: 'k1', ...sender(b) } });
      bob.send({ type: 'call-answer', payload: { recipientId: a, callId: 'k1', sdp: SDP } });
      expect(await alice.next('call-answer')).toMatchObject({ payload: { callId: 'k1', sdp: SDP } });
      alice.send({
        type: 'call-ice-candidate',
        payload: { recipientId: b, callId: 'k1', candidate: CANDIDATE },
      });
      expect(await bob.next('call-ice-candidate')).toMatchObject({ payload: { candidate: CANDIDATE } });
      bob.send({ type: 'call-ice-candidate', payload: { recipientId: a, callId: 'k1', candidate: null } });
      expect(await alice.next('call-ice-candidate')).toMatchObject({ payload: { candidate: null } });
      alice.send({ type: 'call-hangup', payload: { recipientId: b, callId: 'k1', reason: 'bye' } });
      expect(await bob.next('call-hangup')).toMatchObject({ payload: { callId: 'k1', reason: 'bye' } });
      // Nothing arrived in Parley's names, and no error.
      expect(
        [...alice.received, ...bob.received].filter((m) => m.type.includes(':') || m.type.includes('error')),
      ).toEqual([]);
    },
  );

  it('call-reject reaches the caller as call-reject', async () => {
    const alice = await v0('alice-r');
    const bob = await v0('bob-r');
    alice.send({ type: 'call-offer', payload: { recipientId: 'bob-r', callId: 'k2', sdp: SDP } });
    await bob.next('call-offer');
    bob.send({ type: 'call-reject', payload: { recipientId: 'alice-r', callId: 'k2', reason: 'busy' } });
    expect(await alice.next('call-reject')).toMatchObject({ payload: { callId: 'k2', reason: 'busy' } });
  });

  it('an offline recipient: call-error {error: "recipient_offline"} with the callId; ICE is dropped silently', async () => {
    const alice = await v0('alice-o');
    alice.send({ type: 'call-offer', payload: { recipientId: 'nobody', callId: 'k3', sdp: SDP } });
    expect(await alice.next('call-error')).toEqual({
      type: 'call-error',
      timestamp: expect.any(Number) as number,
      payload: {
        callId: 'k3',
        recipientId: 'nobody',
        error: 'recipient_offline',
        code: 'RECIPIENT_OFFLINE',
        message: 'user "nobody" is not connected',
      },
    });
    alice.send({
      type: 'call-ice-candidate',
      payload: { recipientId: 'nobody', callId: 'k3', candidate: CANDIDATE },
    });
    alice.send({ type: 'ping', id: 'after' });
    await alice.next('pong');
    expect(alice.received).toEqual([]);
  });

  it('a malformed call message gets call-error invalid_message naming the field; the connection carries on', async () => {
    const alice = await v0('alice-m');
    alice.send({ type: 'call-offer', id: 'm1', payload: { recipientId: 'bob', callId: 'k4' } });
    expect(await alice.next('call-error')).toMatchObject({
      id: 'm1',
      payload: {
        callId: 'k4',
        error: 'invalid_message',
        code: 'INVALID_MESSAGE',
        details: { path: 'payload.sdp' },
      },
    });
    alice.send({ type: 'call-transfer', payload: {} });
    expect(await alice.next('error')).toMatchObject({
      payload: { code: 'UNKNOWN_TYPE', details: { type: 'call-transfer' } },
    });
    alice.send({ type: 'ping', id: 'alive' });
    expect(await alice.next('pong')).toMatchObject({ id: 'alive' });
  });

  it('an adapter client and a Parley client call each other, each in its own names', async () => {
    const old = await v0('old-client');
    const modern = await parley('new-client');
    old.send({ type: 'call-offer', payload: { recipientId: 'new-client', callId: 'k5', sdp: SDP } });
    expect((await modern.next('call:offer')).payload).toMatchObject({ callId: 'k5', senderId: 'old-client' });
    modern.send('call:answer', { recipientId: 'old-client', callId: 'k5', sdp: SDP });
    expect(await old.next('call-answer')).toMatchObject({
      payload: { callId: 'k5', senderId: 'new-client' },
    });
    // A Parley client is not affected: it still gets `error`, and hyphenated names are unknown to it.
    modern.send('call-offer', { recipientId: 'old-client', callId: 'k6', sdp: SDP }, 'x1');
    expect((await modern.next('error')).payload).toMatchObject({ code: 'UNKNOWN_TYPE' });
    modern.send('call:offer', { recipientId: 'nobody', callId: 'k7', sdp: SDP }, 'x2');
    expect((await modern.next('error')).payload).toMatchObject({ code: 'RECIPIENT_OFFLINE' });
  });

  it('the rest of the protocol is Parley’s on an adapter connection (namespaced names still work too)', async () => {
    const alice = await v0('alice-p');
    const bob = await v0('bob-p');
    alice.send({ type: 'room:join', id: 'j', payload: { roomId: 'lobby' } });
    expect(await alice.next('room:state')).toMatchObject({ id: 'j' });
    alice.send({ type: 'call:offer', payload: { recipientId: 'bob-p', callId: 'k8', sdp: SDP } });
    expect(await bob.next('call-offer')).toMatchObject({ payload: { callId: 'k8' } });
  });

  it('an unknown compat value is refused at the upgrade with 400', async () => {
    const token = await srv.token({ sub: 'x' });
    const c = new LegacyClient(`${srv.wsUrl}?compat=v9-calls`, [], {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await upgradeOutcome(c)).toBe(400);
  });

  it('a call-* message for a call that does not exist: call-error call_not_found, and nothing is relayed', async () => {
    const alice = await v0('alice-nf');
    const bob = await v0('bob-nf');
    alice.send({
      type: 'call-answer',
      id: 'n1',
      payload: { recipientId: 'bob-nf', callId: 'never', sdp: SDP },
    });
    expect(await alice.next('call-error')).toMatchObject({
      id: 'n1',
      payload: { callId: 'never', recipientId: 'bob-nf', error: 'call_not_found', code: 'CALL_NOT_FOUND' },
    });
    bob.send({ type: 'ping', id: 'p' });
    await bob.next('pong');
    expect(bob.received).toEqual([]);
  });

  it('with Parley’s default CALL_POLICY=shared-room: call-error call_not_allowed until both share a room', async () => {
    const alice = await v0('alice-s', 'subprotocol', strict);
    const bob = await v0('bob-s', 'subprotocol', strict);
    alice.send({ type: 'call-offer', payload: { recipientId: 'bob-s', callId: 's1', sdp: SDP } });
    expect(await alice.next('call-error')).toMatchObject({
      payload: { callId: 's1', recipientId: 'bob-s', error: 'call_not_allowed', code: 'CALL_NOT_ALLOWED' },
    });
    // Online or not, the answer is the same (it does not tell a stranger who is online).
    alice.send({ type: 'call-offer', payload: { recipientId: 'nobody', callId: 's2', sdp: SDP } });
    expect(await alice.next('call-error')).toMatchObject({
      payload: { callId: 's2', error: 'call_not_allowed' },
    });
    expect(bob.received).toEqual([]);
    // The documented way out without the switch: both join a common room first.
    for (const [c, id] of [
      [alice, 'ja'],
      [bob, 'jb'],
    ] as const) {
      c.send({ type: 'room:join', id, payload: { roomId: 'common' } });
      expect(await c.next('room:state')).toMatchObject({ id });
    }
    alice.send({ type: 'call-offer', payload: { recipientId: 'bob-s', callId: 's3', sdp: SDP } });
    expect(await bob.next('call-offer')).toMatchObject({ payload: { callId: 's3', senderId: 'alice-s' } });
  });
});
