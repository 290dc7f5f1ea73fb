import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestClient } from '../helpers/client.js';
import { connectAs } from '../helpers/client.js';
import { expectReply, FAKE_DTLS, joinWithMedia, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 100 },
    { id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 },
    { id: 'other', name: 'Other', mode: 'conference', maxParticipants: 10 },
  ],
};

describe('SFU signaling on real mediasoup workers', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string, claims: Record<string, unknown> = {}) => connectAs(srv, clients, sub, claims);
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '2' }, manifest);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('reports its workers in /health', async () => {
    const health = (await (await fetch(`${srv.httpUrl}/health`)).json()) as { workers: number };
    expect(health.workers).toBe(2);
  });

  it('gives router capabilities and transports on 127.0.0.1 to members only', async () => {
    const a = await connect('cap-a');
    expect(expectReply(await a.request('media:capabilities', { roomId: 'conf' }), 'error').payload.code).toBe(
      'NOT_IN_ROOM',
    );
    const { caps, send } = await joinWithMedia(a, 'conf');
    const codecs = (caps.rtpCapabilities.codecs ?? []).map((c) => c.mimeType);
    expect(codecs).toEqual(expect.arrayContaining(['audio/opus', 'video/VP8', 'video/H264']));
    expect(caps.floorProducerId).toBeNull();
    const candidates = send.iceCandidates as { address?: string; ip?: string }[];
    expect(candidates.length).toBeGreaterThan(0);
    for (const c of candidates) expect(c.address ?? c.ip).toBe('127.0.0.1');
    expect(send.dtlsParameters.fingerprints.length).toBeGreaterThan(0);
  });

  it('conference: a producer is announced live to members and to late joiners', async () => {
    const a = await connect('live-a');
    const b = await connect('live-b');
    await joinWithMedia(b, 'conf');
    const ma = await joinWithMedia(a, 'conf', { produce: true });
    const seen = await b.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === ma.producerId);
    expect(seen).toMatchObject({ payload: { userId: 'live-a', sessionId: expect.any(String) as string } });
    expectReply(await a.request('producer:close', { producerId: ma.producerId }), 'producer:closed');
    expect(await b.next('producer:closed')).toMatchObject({ payload: { producerId: ma.producerId } });
  });

  it('conference: produce announces producer:new; consume starts paused and resumes', async () => {
    const a = await connect('conf-a');
    const b = await connect('conf-b');
    const ma = await joinWithMedia(a, 'conf', { produce: true });
    // b arrives after a produced: creating its recv transport announces the existing producer.
    const mb = await joinWithMedia(b, 'conf');
    const seen = await b.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === ma.producerId);
    expect(seen).toMatchObject({ payload: { userId: 'conf-a', kind: 'audio', roomId: 'conf' } });
    const consumed = expectReply(
      await b.request('consume', {
        producerId: ma.producerId,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload;
    expect(consumed).toMatchObject({ producerId: ma.producerId, kind: 'audio', producerPaused: false });
    expect(
      expectReply(
        await b.request('consumer:resume', { consumerId: consumed.consumerId }),
        'consumer:resumed',
      ),
    ).toBeTruthy();

    // a closes its producer: b's consumer is closed and b is told.
    expectReply(await a.request('producer:close', { producerId: ma.producerId }), 'producer:closed');
    const closed = await b.next('consumer:closed');
    expect(closed.payload).toMatchObject({ consumerId: consumed.consumerId, producerId: ma.producerId });
  });

  it('refuses to touch another user’s transport, producer or consumer (FORBIDDEN)', async () => {
    const a = await connect('own-a');
    const m = await connect('own-mallory');
    const ma = await joinWithMedia(a, 'conf', { produce: true });
    const mm = await joinWithMedia(m, 'conf');
    const code = async (type: string, payload: unknown) => {
      const r = await m.request(type, payload);
      return r.type === 'error' ? r.payload.code : r.type;
    };
    expect(await code('transport:connect', { transportId: ma.send.id, dtlsParameters: FAKE_DTLS })).toBe(
      'FORBIDDEN',
    );
    expect(await code('transport:restart-ice', { transportId: ma.send.id })).toBe('FORBIDDEN');
    expect(
      await code('produce', { transportId: ma.send.id, kind: 'audio', rtpParameters: opusRtpParameters() }),
    ).toBe('FORBIDDEN');
    expect(await code('producer:close', { producerId: ma.producerId })).toBe('FORBIDDEN');
    expect(
      await code('consume', {
        producerId: ma.producerId,
        transportId: ma.recv.id,
        rtpCapabilities: mm.caps.rtpCapabilities,
      }),
    ).toBe('FORBIDDEN');
    const own = expectReply(
      await m.request('consume', {
        producerId: ma.producerId,
        transportId: mm.recv.id,
        rtpCapabilities: mm.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload;
    expect(await a.request('consumer:resume', { consumerId: own.consumerId })).toMatchObject({
      type: 'error',
      payload: { code: 'FORBIDDEN' },
    });
    // Unknown ids are errors of their own kind, not crashes.
    expect(await code('transport:connect', { transportId: 'nope', dtlsParameters: FAKE_DTLS })).toBe(
      'TRANSPORT_ERROR',
    );
    expect(await code('consumer:resume', { consumerId: 'nope' })).toBe('CONSUME_ERROR');
    // Producing on a recv transport, consuming on a send transport: refused.
    expect(
      await code('produce', { transportId: mm.recv.id, kind: 'audio', rtpParameters: opusRtpParameters() }),
    ).toBe('PRODUCE_ERROR');
    // After leaving, your own objects are gone with you.
    expectReply(await a.request('room:leave', { roomId: 'conf' }), 'room:left');
    expect(await a.request('transport:restart-ice', { transportId: ma.send.id })).toMatchObject({
      payload: { code: 'TRANSPORT_ERROR' },
    });
  });

  it('grants: canPublish=false cannot create a send transport, canSubscribe=false cannot consume', async () => {
    const listener = await connect('listen-only', { canPublish: false });
    expectReply(await listener.request('room:join', { roomId: 'conf' }), 'room:state');
    expect(await listener.request('transport:create', { roomId: 'conf', direction: 'send' })).toMatchObject({
      payload: { code: 'FORBIDDEN' },
    });
    const mute = await connect('no-sub', { canSubscribe: false });
    expectReply(await mute.request('room:join', { roomId: 'conf' }), 'room:state');
    expect(await mute.request('transport:create', { roomId: 'conf', direction: 'recv' })).toMatchObject({
      payload: { code: 'FORBIDDEN' },
    });
  });

  it('ptt room: audio only, one producer per member, starts paused; listeners consume the floor producer', async () => {
    const a = await connect('ptt-a');
    const ma = await joinWithMedia(a, 'dispatch', { consumeFloor: true });
    expect(ma.caps.floorProducerId).toEqual(expect.any(String));
    const produced = expectReply(
      await a.request('produce', {
        transportId: ma.send.id,
        kind: 'audio',
        rtpParameters: opusRtpParameters(),
      }),
      'produced',
    ).payload;
    expect(produced.paused).toBe(true);
    expect(
      await a.request('produce', {
        transportId: ma.send.id,
        kind: 'audio',
        rtpParameters: opusRtpParameters(),
      }),
    ).toMatchObject({ payload: { code: 'PRODUCE_ERROR' } });
    expect(
      await a.request('produce', {
        transportId: ma.send.id,
        kind: 'video',
        rtpParameters: opusRtpParameters(),
      }),
    ).toMatchObject({ payload: { code: 'PRODUCE_ERROR' } });
    // Members' own producers are not consumable directly in a ptt room.
    const b = await connect('ptt-b');
    const mb = await joinWithMedia(b, 'dispatch');
    expect(
      await b.request('consume', {
        producerId: produced.producerId,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
    ).toMatchObject({ payload: { code: 'FORBIDDEN' } });
  });

  it("answers mediasoup's refusals with Parley's own message, and logs mediasoup's text", async () => {
    const a = await connect('refused-a');
    const { send } = await joinWithMedia(a, 'conf');
    /** mediasoup's text for `msg`, from the server log (there, and only there). */
    const logged = (msg: string) => {
      const line = srv.logs.findLast((l) => l.msg === msg) as { err?: { message?: string } } | undefined;
      expect(line?.err?.message, `log line "${msg}" with the error`).toBeTruthy();
      return line!.err!.message!;
    };

    // Valid-shaped DTLS parameters whose fingerprint algorithm mediasoup does not know.
    const badDtls = { role: 'client', fingerprints: [{ algorithm: 'sha-999', value: 'AB:CD' }] };
    const connectErr = expectReply(
      await a.request('transport:connect', { transportId: send.id, dtlsParameters: badDtls }),
      'error',
    ).payload;
    expect(connectErr.code).toBe('TRANSPORT_ERROR');
    const connectText = logged('transport:connect failed');
    expect(connectErr.message).not.toContain(connectText);
    expect(connectErr.message).not.toMatch(/sha-999|fingerprint\.|\[method:|Error/);

    // Valid-shaped RTP parameters with a codec the router does not have.
    expectReply(
      await a.request('transport:connect', { transportId: send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const rtp = opusRtpParameters();
    rtp.codecs[0] = { ...rtp.codecs[0], mimeType: 'audio/ISAC', clockRate: 16_000, channels: 1 };
    const produceErr = expectReply(
      await a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: rtp }),
      'error',
    ).payload;
    expect(produceErr.code).toBe('PRODUCE_ERROR');
    const produceText = logged('produce failed');
    expect(produceErr.message).not.toContain(produceText);
    expect(produceErr.message).not.toMatch(/ISAC|\[method:|Error/);

    // Connecting twice is refused by mediasoup too; same rule.
    const againErr = expectReply(
      await a.request('transport:connect', { transportId: send.id, dtlsParameters: FAKE_DTLS }),
      'error',
    ).payload;
    expect(againErr.code).toBe('TRANSPORT_ERROR');
    expect(againErr.message).not.toContain(logged('transport:connect failed'));
  });

  it('empty rooms release their routers; leave and disconnect close everything of the user', async () => {
    const { media } = srv.server.internalsForTesting;
    const a = await connect('leak-a');
    const before = media.stats();
    await joinWithMedia(a, 'other', { produce: true });
    expect(media.stats().rooms).toBe(before.rooms + 1);
    await a.close(1000);
    await waitUntil(() => media.stats().rooms === before.rooms, 'the empty room releases its router');
    const after = media.stats();
    expect(after.rooms).toBe(before.rooms);
    expect(after.transports).toBe(before.transports);
    expect(after.producers).toBe(before.producers);
  });
});
