import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAs, type TestClient } from '../helpers/client.js';
import { CONF_AND_RADIO, expectReply, joinWithMedia } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Mute and unmute in a conference room: producer:pause / producer:resume on real mediasoup. */
describe('producer:pause and producer:resume', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string) => connectAs(srv, clients, sub);
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1' }, CONF_AND_RADIO);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('pauses on the server, tells the other members once, and resumes', async () => {
    const a = await connect('mute-a');
    const b = await connect('mute-b');
    const c = await connect('mute-c');
    const ma = await joinWithMedia(a, 'conf', { produce: true });
    const mb = await joinWithMedia(b, 'conf');
    const producerId = ma.producerId ?? '';
    const consumed = expectReply(
      await b.request('consume', {
        producerId,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
      'consumed',
    );
    expect(consumed.payload.producerPaused).toBe(false);

    const paused = expectReply(await a.request('producer:pause', { producerId }), 'producer:paused');
    expect(paused.payload).toEqual({
      roomId: 'conf',
      producerId,
      userId: 'mute-a',
      sessionId: expect.any(String) as string,
    });
    expect(await b.next('producer:paused')).toMatchObject({ payload: paused.payload });
    // The SFU really paused it: a new subscriber is told its producer is paused.
    const mc = await joinWithMedia(c, 'conf');
    const late = expectReply(
      await c.request('consume', {
        producerId,
        transportId: mc.recv.id,
        rtpCapabilities: mc.caps.rtpCapabilities,
      }),
      'consumed',
    );
    expect(late.payload.producerPaused).toBe(true);

    // Pausing again answers the same, and tells nobody: B's next message is the resume.
    expectReply(await a.request('producer:pause', { producerId }), 'producer:paused');
    const resumed = expectReply(await a.request('producer:resume', { producerId }), 'producer:resumed');
    expect(resumed.payload).toEqual(paused.payload);
    const next = await b.waitFor((m) => m.type === 'producer:paused' || m.type === 'producer:resumed');
    expect(next.type).toBe('producer:resumed');
    // The muter hears nothing of its own mute but the replies.
    expect(a.received.filter((m) => m.type === 'producer:paused' || m.type === 'producer:resumed')).toEqual(
      [],
    );
  });

  it('refuses what is not yours to mute, unknown ids, bad payloads and ptt rooms, and nothing else breaks', async () => {
    const a = await connect('own-a');
    const b = await connect('own-b');
    const ma = await joinWithMedia(a, 'conf', { produce: true });
    await joinWithMedia(b, 'conf');
    const producerId = ma.producerId ?? '';

    const notYours = expectReply(await b.request('producer:pause', { producerId }), 'error');
    expect(notYours.payload.code).toBe('FORBIDDEN');
    const unknown = expectReply(
      await a.request('producer:pause', { producerId: 'no-such-producer' }),
      'error',
    );
    expect(unknown.payload.code).toBe('PRODUCE_ERROR');
    const bad = expectReply(await a.request('producer:resume', { producerId: '' }), 'error');
    expect(bad.payload).toMatchObject({ code: 'INVALID_MESSAGE', details: { path: 'payload.producerId' } });
    const missing = expectReply(await a.request('producer:pause', {}), 'error');
    expect(missing.payload.code).toBe('INVALID_MESSAGE');

    // In a ptt room the floor owns the producer's pause state.
    const r = await joinWithMedia(a, 'radio', { produce: true });
    const ptt = expectReply(await a.request('producer:resume', { producerId: r.producerId ?? '' }), 'error');
    expect(ptt.payload.code).toBe('FORBIDDEN');
    expect(ptt.payload.message).toMatch(/ptt:start/);

    // After all that, the owner can still mute and unmute, and the room still hears of it.
    expectReply(await a.request('producer:pause', { producerId }), 'producer:paused');
    expect(await b.next('producer:paused')).toMatchObject({ payload: { producerId } });
    expectReply(await a.request('producer:resume', { producerId }), 'producer:resumed');
    expect(await b.next('producer:resumed')).toMatchObject({ payload: { producerId } });
  });
});
