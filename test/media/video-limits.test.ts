import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, connectAs } from '../helpers/client.js';
import {
  expectReply,
  FAKE_DTLS,
  joinWithMedia,
  opusRtpParameters,
  vp8SimulcastRtpParameters,
} from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 },
    { id: 'capped', name: 'Capped', mode: 'conference', maxParticipants: 10 },
  ],
};

/** Video limits and simulcast controls (issue 12, server), on real mediasoup. */
describe('video: limits, simulcast layers and consumer pause', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string, claims: Record<string, unknown> = {}) => connectAs(srv, clients, sub, claims);
  /** A member with a connected send transport, ready to produce. */
  const publisher = async (sub: string, roomId = 'conf', claims: Record<string, unknown> = {}) => {
    const c = await connect(sub, claims);
    const m = await joinWithMedia(c, roomId);
    expectReply(
      await c.request('transport:connect', { transportId: m.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    let mid = 0;
    const produce = (kind: 'audio' | 'video', rtpParameters: unknown, appData?: Record<string, unknown>) =>
      c.request('produce', {
        transportId: m.send.id,
        kind,
        rtpParameters: { ...(rtpParameters as object), mid: String(mid++) } as never,
        ...(appData ? { appData } : {}),
      });
    return { c, m, produce };
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      {
        MEDIASOUP_WORKERS: '1',
        MAX_VIDEO_PRODUCERS_PER_ROOM: '2',
        TRANSPORT_MAX_INCOMING_BITRATE: '1234567',
      },
      manifest,
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('refuses a produce whose kind does not match its codec, or whose source does not match its kind', async () => {
    const { produce } = await publisher('kind-a');
    const vp8AsAudio = expectReply(await produce('audio', vp8SimulcastRtpParameters()), 'error');
    expect(vp8AsAudio.payload).toMatchObject({ code: 'PRODUCE_ERROR' });
    expect(vp8AsAudio.payload.message).toMatch(/video\/VP8.*audio/);
    const opusAsVideo = expectReply(await produce('video', opusRtpParameters()), 'error');
    expect(opusAsVideo.payload.code).toBe('PRODUCE_ERROR');
    const cameraAudio = expectReply(
      await produce('audio', opusRtpParameters(), { source: 'camera' }),
      'error',
    );
    expect(cameraAudio.payload.code).toBe('PRODUCE_ERROR');
    const micVideo = expectReply(
      await produce('video', vp8SimulcastRtpParameters(), { source: 'microphone' }),
      'error',
    );
    expect(micVideo.payload.code).toBe('PRODUCE_ERROR');
    // Nothing was created by the refusals; the right pairs still work, screen audio included.
    expectReply(await produce('audio', opusRtpParameters(), { source: 'microphone' }), 'produced');
    expectReply(await produce('audio', opusRtpParameters(), { source: 'screen' }), 'produced');
  });

  it('canPublishSources: only the granted sources, with a missing source counted by kind', async () => {
    const mic = await publisher('grant-mic', 'conf', { canPublishSources: ['microphone'] });
    const camera = expectReply(
      await mic.produce('video', vp8SimulcastRtpParameters(), { source: 'camera' }),
      'error',
    );
    expect(camera.payload).toMatchObject({ code: 'FORBIDDEN' });
    expect(camera.payload.message).toMatch(/camera/);
    expect(expectReply(await mic.produce('video', vp8SimulcastRtpParameters()), 'error').payload.code).toBe(
      'FORBIDDEN',
    );
    expect(
      expectReply(await mic.produce('video', vp8SimulcastRtpParameters(), { source: 'screen' }), 'error')
        .payload.code,
    ).toBe('FORBIDDEN');
    expectReply(await mic.produce('audio', opusRtpParameters(), { source: 'microphone' }), 'produced');
    expectReply(await mic.produce('audio', opusRtpParameters()), 'produced');

    const none = await publisher('grant-none', 'conf', { canPublishSources: [] });
    expect(expectReply(await none.produce('audio', opusRtpParameters()), 'error').payload.code).toBe(
      'FORBIDDEN',
    );

    // A grant that names something else is not a valid token: refused before the upgrade.
    await expect(
      TestClient.connect(
        srv.wsUrl,
        await srv.token({ sub: 'grant-bad', canPublishSources: ['radio'] } as never),
      ),
    ).rejects.toThrow();
  });

  it('caps video producers per room (MAX_VIDEO_PRODUCERS_PER_ROOM), and frees a place when one closes', async () => {
    const a = await publisher('cap-a', 'capped');
    const b = await publisher('cap-b', 'capped');
    const first = expectReply(
      await a.produce('video', vp8SimulcastRtpParameters(), { source: 'camera' }),
      'produced',
    );
    expectReply(await b.produce('video', vp8SimulcastRtpParameters(), { source: 'camera' }), 'produced');
    const third = expectReply(
      await b.produce('video', vp8SimulcastRtpParameters(), { source: 'screen' }),
      'error',
    );
    expect(third.payload).toMatchObject({ code: 'PRODUCE_ERROR' });
    expect(third.payload.message).toMatch(/2 video/);
    // Audio is not capped by it.
    expectReply(await b.produce('audio', opusRtpParameters()), 'produced');
    expectReply(
      await a.c.request('producer:close', { producerId: first.payload.producerId }),
      'producer:closed',
    );
    expectReply(await b.produce('video', vp8SimulcastRtpParameters(), { source: 'screen' }), 'produced');
  });

  it('sets maxIncomingBitrate on the transports it creates (TRANSPORT_MAX_INCOMING_BITRATE)', async () => {
    const c = await connect('bitrate-a');
    const m = await joinWithMedia(c, 'conf');
    const media = srv.server.internalsForTesting.media;
    for (const id of [m.send.id, m.recv.id]) {
      const [stats] = await media.transportForTesting(id)!.getStats();
      expect(stats.maxIncomingBitrate).toBe(1_234_567);
    }
  });

  it('consumer:set-preferred-layers chooses a simulcast layer, capped at the highest; every refusal and bad input', async () => {
    const a = await publisher('layers-a');
    const b = await connect('layers-b');
    const mb = await joinWithMedia(b, 'conf');
    const cam = expectReply(
      await a.produce('video', vp8SimulcastRtpParameters(), { source: 'camera' }),
      'produced',
    ).payload.producerId;
    const mic = expectReply(
      await a.produce('audio', opusRtpParameters(), { source: 'microphone' }),
      'produced',
    ).payload.producerId;
    const consume = async (producerId: string) =>
      expectReply(
        await b.request('consume', {
          producerId,
          transportId: mb.recv.id,
          rtpCapabilities: mb.caps.rtpCapabilities,
        }),
        'consumed',
      ).payload.consumerId;
    const video = await consume(cam);
    const audio = await consume(mic);
    const consumer = srv.server.internalsForTesting.media.consumerForTesting(video)!;
    expect(consumer.type).toBe('simulcast');

    const low = expectReply(
      await b.request('consumer:set-preferred-layers', { consumerId: video, spatialLayer: 0 }),
      'consumer:preferred-layers-set',
    );
    expect(low.payload).toMatchObject({ consumerId: video, spatialLayer: 0 });
    expect(consumer.preferredLayers?.spatialLayer).toBe(0);
    const withTemporal = expectReply(
      await b.request('consumer:set-preferred-layers', {
        consumerId: video,
        spatialLayer: 1,
        temporalLayer: 0,
      }),
      'consumer:preferred-layers-set',
    );
    expect(withTemporal.payload).toEqual({ consumerId: video, spatialLayer: 1, temporalLayer: 0 });
    const high = expectReply(
      await b.request('consumer:set-preferred-layers', { consumerId: video, spatialLayer: 9 }),
      'consumer:preferred-layers-set',
    );
    expect(high.payload.spatialLayer).toBe(2); // the producer has three
    expect(consumer.preferredLayers?.spatialLayer).toBe(2);

    const refused = async (from: TestClient, payload: unknown) =>
      expectReply(await from.request('consumer:set-preferred-layers', payload as never), 'error').payload;
    expect(await refused(b, { consumerId: audio, spatialLayer: 0 })).toMatchObject({ code: 'CONSUME_ERROR' });
    expect(await refused(a.c, { consumerId: video, spatialLayer: 0 })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await refused(b, { consumerId: 'no-such-consumer', spatialLayer: 0 })).toMatchObject({
      code: 'CONSUME_ERROR',
    });
    for (const bad of [
      { consumerId: video, spatialLayer: -1 },
      { consumerId: video, spatialLayer: 1.5 },
      { consumerId: video, spatialLayer: '1' },
      { consumerId: video },
      { consumerId: video, spatialLayer: 0, temporalLayer: -2 },
      { consumerId: '', spatialLayer: 0 },
    ]) {
      expect(await refused(b, bad), JSON.stringify(bad)).toMatchObject({ code: 'INVALID_MESSAGE' });
    }
    // None of that moved the layer.
    expect(consumer.preferredLayers?.spatialLayer).toBe(2);
  });

  it('consumer:pause pauses on the SFU (a hidden tile) and consumer:resume undoes it; refusals', async () => {
    const a = await publisher('cpause-a');
    const b = await connect('cpause-b');
    const mb = await joinWithMedia(b, 'conf');
    const cam = expectReply(
      await a.produce('video', vp8SimulcastRtpParameters(), { source: 'camera' }),
      'produced',
    ).payload.producerId;
    const consumerId = expectReply(
      await b.request('consume', {
        producerId: cam,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload.consumerId;
    expectReply(await b.request('consumer:resume', { consumerId }), 'consumer:resumed');
    const consumer = srv.server.internalsForTesting.media.consumerForTesting(consumerId)!;
    expect(consumer.paused).toBe(false);

    expect(expectReply(await b.request('consumer:pause', { consumerId }), 'consumer:paused').payload).toEqual(
      {
        consumerId,
      },
    );
    expect(consumer.paused).toBe(true);
    expectReply(await b.request('consumer:pause', { consumerId }), 'consumer:paused'); // idempotent
    // The publisher hears nothing of it: it is the viewer's business.
    expect(a.c.received.some((m) => m.type === 'consumer:paused')).toBe(false);

    expect(expectReply(await a.c.request('consumer:pause', { consumerId }), 'error').payload.code).toBe(
      'FORBIDDEN',
    );
    expect(expectReply(await a.c.request('consumer:resume', { consumerId }), 'error').payload.code).toBe(
      'FORBIDDEN',
    );
    expect(
      expectReply(await b.request('consumer:pause', { consumerId: 'no-such-consumer' }), 'error').payload
        .code,
    ).toBe('CONSUME_ERROR');
    expect(expectReply(await b.request('consumer:pause', {}), 'error').payload.code).toBe('INVALID_MESSAGE');
    expect(consumer.paused).toBe(true);

    expectReply(await b.request('consumer:resume', { consumerId }), 'consumer:resumed');
    expect(consumer.paused).toBe(false);
  });
});
