import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { expectReply, FAKE_DTLS, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * The ADR-003 flow from auth to consume, on real mediasoup: in-band auth, join, capabilities,
 * transports, produce, the other member's producer:new, consume, resume. It also pins the three
 * field names ADR-003 clients read under other names (docs/migration.md: roomConfig → config,
 * peerId → userId, success → the reply's type), so that a change to them is a decision.
 */
describe('compat: the ADR-003 flow from auth to consume', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '1' },
      {
        channels: [{ id: 'room-1', name: 'Room 1', mode: 'conference', maxParticipants: 10 }],
      },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  /** ADR-003 clients connect without a token and authenticate in-band. */
  const authenticate = async (sub: string) => {
    const c = new TestClient(srv.wsUrl);
    clients.push(c);
    await c.opened;
    const auth = await c.request('auth:request', { token: await srv.token({ sub, name: sub }) });
    expect(auth).toMatchObject({ type: 'auth:response', payload: { userId: sub, name: sub } });
    expect(auth.payload).not.toHaveProperty('success');
    await c.next('welcome');
    return c;
  };
  const setUp = async (c: TestClient) => {
    const state = expectReply(await c.request('room:join', { roomId: 'room-1' }), 'room:state').payload;
    expect(state.config).toEqual({ id: 'room-1', name: 'Room 1', mode: 'conference', maxParticipants: 10 });
    expect(state).not.toHaveProperty('roomConfig');
    const caps = expectReply(
      await c.request('media:capabilities', { roomId: 'room-1' }),
      'media:capabilities',
    );
    const transport = async (direction: 'send' | 'recv') => {
      const t = expectReply(
        await c.request('transport:create', { roomId: 'room-1', direction }),
        'transport:created',
      );
      expect(t.payload).toMatchObject({
        id: expect.any(String) as string,
        iceParameters: expect.any(Object) as object,
        iceCandidates: expect.any(Array) as unknown[],
        dtlsParameters: expect.any(Object) as object,
      });
      expectReply(
        await c.request('transport:connect', { transportId: t.payload.id, dtlsParameters: FAKE_DTLS }),
        'transport:connected',
      );
      return t.payload.id;
    };
    return { caps: caps.payload, send: await transport('send'), recv: await transport('recv') };
  };

  it('auth → join → capabilities → transports → produce → producer:new → consume → resume', async () => {
    const alice = await authenticate('adr-alice');
    const bob = await authenticate('adr-bob');
    const a = await setUp(alice);
    const b = await setUp(bob);

    const produced = expectReply(
      await alice.request('produce', {
        transportId: a.send,
        kind: 'audio',
        rtpParameters: opusRtpParameters(),
      }),
      'produced',
    ).payload;
    const announced = await bob.next('producer:new');
    expect(announced.payload).toEqual({
      roomId: 'room-1',
      producerId: produced.producerId,
      userId: 'adr-alice',
      sessionId: expect.any(String) as string,
      kind: 'audio',
    });
    expect(announced.payload).not.toHaveProperty('peerId');

    const consumed = expectReply(
      await bob.request('consume', {
        producerId: announced.payload.producerId,
        transportId: b.recv,
        rtpCapabilities: b.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload;
    expect(consumed).toMatchObject({ producerId: produced.producerId, kind: 'audio', producerPaused: false });
    expectReply(
      await bob.request('consumer:resume', { consumerId: consumed.consumerId }),
      'consumer:resumed',
    );
  });

  it('a failed in-band auth: error UNAUTHORIZED and close 4401 (there is no auth:response {success:false})', async () => {
    const c = new TestClient(srv.wsUrl);
    clients.push(c);
    await c.opened;
    const reply = await c.request('auth:request', { token: 'not.a.jwt' });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'UNAUTHORIZED' } });
    expect((await c.closed).code).toBe(4401);
  });
});
