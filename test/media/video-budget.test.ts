import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import {
  expectReply,
  FAKE_DTLS,
  joinWithMedia,
  opusRtpParameters,
  vp8SimulcastRtpParameters,
} from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** The per-worker video consumer budget (MAX_VIDEO_CONSUMERS_PER_WORKER), inside the overall one. */
describe('video consumer budget per worker', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '1', MAX_VIDEO_CONSUMERS_PER_WORKER: '1' },
      { channels: [{ id: 'conf', name: 'Conf', mode: 'conference', maxParticipants: 10 }] },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('refuses a video consumer past the budget with CAPACITY_EXCEEDED, still serves audio, and frees the place', async () => {
    const connect = async (sub: string) => {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub }));
      clients.push(c);
      return c;
    };
    const pub = await connect('cam');
    const m = await joinWithMedia(pub, 'conf');
    expectReply(
      await pub.request('transport:connect', { transportId: m.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const produce = async (kind: 'audio' | 'video', rtpParameters: object, mid: string, source: string) =>
      expectReply(
        await pub.request('produce', {
          transportId: m.send.id,
          kind,
          rtpParameters: { ...rtpParameters, mid },
          appData: { source },
        }),
        'produced',
      ).payload.producerId;
    const cam = await produce('video', vp8SimulcastRtpParameters(), '0', 'camera');
    const mic = await produce('audio', opusRtpParameters(), '1', 'microphone');

    const consume = async (c: TestClient, producerId: string) => {
      const mm = await joinWithMedia(c, 'conf');
      return c.request('consume', {
        producerId,
        transportId: mm.recv.id,
        rtpCapabilities: mm.caps.rtpCapabilities,
      });
    };
    const a = await connect('viewer-a');
    expectReply(await consume(a, cam), 'consumed');
    const b = await connect('viewer-b');
    const refused = expectReply(await consume(b, cam), 'error');
    expect(refused.payload.code).toBe('CAPACITY_EXCEEDED');
    expect(refused.payload.message).toMatch(/video/);
    // Audio is not held back by the video budget.
    const caps = expectReply(await b.request('media:capabilities', { roomId: 'conf' }), 'media:capabilities');
    const bRecv = expectReply(
      await b.request('transport:create', { roomId: 'conf', direction: 'recv' }),
      'transport:created',
    );
    expectReply(
      await b.request('consume', {
        producerId: mic,
        transportId: bRecv.payload.id,
        rtpCapabilities: caps.payload.rtpCapabilities,
      }),
      'consumed',
    );
    // When A's video consumer goes (A leaves), B gets the place.
    expectReply(await a.request('room:leave', { roomId: 'conf' }), 'room:left');
    expectReply(
      await b.request('consume', {
        producerId: cam,
        transportId: bRecv.payload.id,
        rtpCapabilities: caps.payload.rtpCapabilities,
      }),
      'consumed',
    );
  });
});

/**
 * Placement follows the video budget: a conference viewer whose room's worker is full of video gets
 * its receive transport on another worker (the cameras piped there) instead of every camera refused.
 */
describe('video consumer budget: placement on two workers', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '2', MAX_VIDEO_CONSUMERS_PER_WORKER: '1' },
      { channels: [{ id: 'conf', name: 'Conf', mode: 'conference', maxParticipants: 10 }] },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('a viewer spills onto the worker with video budget left; with none left anywhere, video is refused and audio still served', async () => {
    const { pool } = srv.server.internalsForTesting;
    const videoPerWorker = () => pool.workers().map((w) => w.videoConsumers);
    const connect = async (sub: string) => {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub }));
      clients.push(c);
      return c;
    };
    const pub = await connect('p-cam');
    const m = await joinWithMedia(pub, 'conf');
    expectReply(
      await pub.request('transport:connect', { transportId: m.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const produce = async (kind: 'audio' | 'video', rtpParameters: object, mid: string, source: string) =>
      expectReply(
        await pub.request('produce', {
          transportId: m.send.id,
          kind,
          rtpParameters: { ...rtpParameters, mid },
          appData: { source },
        }),
        'produced',
      ).payload.producerId;
    const cam = await produce('video', vp8SimulcastRtpParameters(), '0', 'camera');
    const mic = await produce('audio', opusRtpParameters(), '1', 'microphone');
    /** A viewer joins (its receive transport placed by the server) and consumes `producerId`. */
    const viewer = async (sub: string) => {
      const c = await connect(sub);
      const mm = await joinWithMedia(c, 'conf');
      const consume = (producerId: string) =>
        c.request('consume', {
          producerId,
          transportId: mm.recv.id,
          rtpCapabilities: mm.caps.rtpCapabilities,
        });
      return { c, consume };
    };

    const a = await viewer('p-viewer-a');
    expectReply(await a.consume(cam), 'consumed');
    expect(videoPerWorker()).toEqual([1, 0]);

    // The room's worker is full of video: B's receiver goes to the other worker, and B sees the camera.
    const b = await viewer('p-viewer-b');
    expectReply(await b.consume(cam), 'consumed');
    expectReply(await b.consume(mic), 'consumed');
    expect(videoPerWorker()).toEqual([1, 1]);

    // Both workers full of video: C still gets a receiver (audio budget left), its camera is refused
    // clearly, its audio is served, and nobody else lost anything.
    const c = await viewer('p-viewer-c');
    const refused = expectReply(await c.consume(cam), 'error');
    expect(refused.payload.code).toBe('CAPACITY_EXCEEDED');
    expect(refused.payload.message).toMatch(/video/);
    expectReply(await c.consume(mic), 'consumed');
    expect(videoPerWorker()).toEqual([1, 1]);
    expect(pool.workers().map((w) => w.consumers)).toEqual([2, 2]);
  });
});
