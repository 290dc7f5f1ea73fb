import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { ParleyAdmin, type ParleyAdminError } from '../../src/server-sdk/index.js';
import { TestClient } from '../helpers/client.js';
import { expectReply, FAKE_DTLS, joinWithMedia, vp8SimulcastRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';

const issuer = new TokenIssuer({ secret: TEST_SECRET });
const API_KEY = 'admin-api-key-0123456789';

/*
 * A room's media lives on one node. A member connected to another node gets its transports on the
 * owner node (signaling relayed over Redis), and real audio flows through the owner's SFU.
 */
describe('media across nodes', () => {
  let redis: TestRedis;
  let n1: NodeProcess;
  let n2: NodeProcess;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];
  const on = async (node: NodeProcess, sub: string, claims: Record<string, unknown> = {}) => {
    const c = await TestClient.connect(node.wsUrl, await issuer.issue({ sub, name: sub, ...claims }));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    redis = await startRedis();
    const common = {
      REDIS_URL: redis.url,
      MEDIASOUP_WORKERS: '1',
      NODE_TTL_MS: '1000',
      RATE_LIMIT_BURST: '1000',
      ADMIN_API_KEY: API_KEY,
    };
    [n1, n2] = await Promise.all([
      startNodeProcess({ ...common, NODE_ID: 'm1', RTC_MIN_PORT: '42000', RTC_MAX_PORT: '42999' }),
      startNodeProcess({ ...common, NODE_ID: 'm2', RTC_MIN_PORT: '43000', RTC_MAX_PORT: '43999' }),
    ]);
  }, 30_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.ws.terminate();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await redis?.stop();
  });

  it('a listener on node 2 gets transports on node 1 (the owner) and hears node 1’s speaker only with the floor', async () => {
    const a = await on(n1, 'speaker-a');
    const b = await on(n2, 'listener-b');
    expectReply(await a.request('room:join', { roomId: 'dispatch' }), 'room:state');
    expectReply(await b.request('room:join', { roomId: 'dispatch' }), 'room:state');

    const pa = await WebRtcPeer.open(a, 'dispatch');
    peers.push(pa);
    const pb = await WebRtcPeer.open(b, 'dispatch');
    peers.push(pb);
    // Same floor producer for both: one room, one media owner.
    expect(pb.caps.floorProducerId).toBe(pa.caps.floorProducerId);
    await pa.produceTone();
    await pb.consumeFloor();
    // B's transport is node 1's: its ports come from node 1's RTC range.
    const ports = ((pb.recvTransport?.iceCandidates ?? []) as { port: number }[]).map((c) => c.port);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(port >= 42000 && port <= 42999, `port ${port}`).toBe(true);
    const before = await pb.packetsReceived();
    await sleep(800); // a window in which no audio may reach B: nobody holds the floor
    expect((await pb.packetsReceived()) - before).toBeLessThanOrEqual(5);

    expect((await a.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'speaker-a');
    const t0 = await pb.packetsReceived();
    await waitUntil(async () => (await pb.packetsReceived()) - t0 >= 30, 'B hears A across nodes', 4_000, 50);
    console.log(`across nodes: B received ${(await pb.packetsReceived()) - t0} packets from A`);
    expect((await a.request('ptt:stop', { roomId: 'dispatch' })).type).toBe('ptt:stopped');
  });

  it('a speaker on node 2 takes the floor: node 1’s SFU resumes its producer and node 1’s member hears it', async () => {
    const a = await on(n1, 'listener-c');
    const b = await on(n2, 'speaker-d');
    expectReply(await a.request('room:join', { roomId: 'field-ops' }), 'room:state');
    expectReply(await b.request('room:join', { roomId: 'field-ops' }), 'room:state');
    const pa = await WebRtcPeer.open(a, 'field-ops');
    peers.push(pa);
    const pb = await WebRtcPeer.open(b, 'field-ops');
    peers.push(pb);
    await pa.consumeFloor();
    const produced = await pb.produceTone();
    expect(produced.paused).toBe(true);
    await sleep(300); // a paused producer: let anything already in flight land before the baseline
    const base = await pa.packetsReceived();
    expect((await b.request('ptt:start', { roomId: 'field-ops' })).type).toBe('ptt:granted');
    await waitUntil(
      async () => (await pa.packetsReceived()) - base >= 30,
      'A hears the remote speaker',
      4_000,
      50,
    );
    expect((await b.request('ptt:stop', { roomId: 'field-ops' })).type).toBe('ptt:stopped');
    await sleep(300); // packets already in flight when the floor was released
    const after = await pa.packetsReceived();
    await sleep(800); // a window in which no audio may reach A
    expect((await pa.packetsReceived()) - after).toBeLessThanOrEqual(5);
    // Ownership checks still hold across nodes: A cannot touch B's remote producer.
    expect(await a.request('producer:close', { producerId: produced.producerId })).toMatchObject({
      type: 'error',
    });
  });

  it('mute across nodes: a member on node 2 pauses its producer hosted on node 1, and node 1’s member hears of it', async () => {
    const a = await on(n1, 'mute-host');
    const b = await on(n2, 'mute-remote');
    await joinWithMedia(a, 'lobby'); // node 1 claims the room's media
    const mb = await joinWithMedia(b, 'lobby', { produce: true });
    const producerId = mb.producerId ?? '';
    await a.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === producerId);
    const paused = expectReply(await b.request('producer:pause', { producerId }), 'producer:paused');
    expect(paused.payload).toMatchObject({ roomId: 'lobby', producerId, userId: 'mute-remote' });
    expect(await a.next('producer:paused')).toMatchObject({ payload: { producerId, userId: 'mute-remote' } });
    expectReply(await b.request('producer:resume', { producerId }), 'producer:resumed');
    expect(await a.next('producer:resumed')).toMatchObject({ payload: { producerId } });
    // Ownership holds across nodes too.
    expect(expectReply(await a.request('producer:pause', { producerId }), 'error').payload.code).toBe(
      'FORBIDDEN',
    );
  });

  it('video across nodes: layers and pause of a consumer hosted on node 1, canPublishSources, and the active speaker reach node 2', async () => {
    const a = await on(n1, 'video-host');
    const b = await on(n2, 'video-remote', { canPublishSources: ['microphone'] });
    const ma = await joinWithMedia(a, 'lobby'); // node 1 claims the room's media
    expectReply(
      await a.request('transport:connect', { transportId: ma.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const cam = expectReply(
      await a.request('produce', {
        transportId: ma.send.id,
        kind: 'video',
        rtpParameters: vp8SimulcastRtpParameters('9'),
        appData: { source: 'camera' },
      }),
      'produced',
    ).payload.producerId;
    const mb = await joinWithMedia(b, 'lobby');
    const consumerId = expectReply(
      await b.request('consume', {
        producerId: cam,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload.consumerId;
    const set = expectReply(
      await b.request('consumer:set-preferred-layers', { consumerId, spatialLayer: 0 }),
      'consumer:preferred-layers-set',
    );
    expect(set.payload).toMatchObject({ consumerId, spatialLayer: 0 });
    expectReply(await b.request('consumer:pause', { consumerId }), 'consumer:paused');
    expectReply(await b.request('consumer:resume', { consumerId }), 'consumer:resumed');
    // The grant travels with the forwarded request: node 1 refuses node 2's member a camera.
    expectReply(
      await b.request('transport:connect', { transportId: mb.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const refused = expectReply(
      await b.request('produce', {
        transportId: mb.send.id,
        kind: 'video',
        rtpParameters: vp8SimulcastRtpParameters('8'),
        appData: { source: 'camera' },
      }),
      'error',
    );
    expect(refused.payload.code).toBe('FORBIDDEN');

    // A talks on node 1 (the only voice of a fresh room, so at once the dominant one); node 2's
    // member, with no media of its own there, is told through the room broadcast.
    expectReply(await a.request('room:join', { roomId: 'cross-talk' }), 'room:state');
    expectReply(await b.request('room:join', { roomId: 'cross-talk' }), 'room:state');
    const pa = await WebRtcPeer.open(a, 'cross-talk');
    peers.push(pa);
    const { producerId } = await pa.produceTone({ audioLevel: true, appData: { source: 'microphone' } });
    const speaker = await b.waitFor(
      (m) => m.type === 'room:active-speaker' && m.payload.roomId === 'cross-talk',
      15_000,
      'active speaker',
    );
    expect(speaker.payload).toMatchObject({ userId: 'video-host', producerId });
  }, 30_000);

  it('the server API mutes across nodes: asked on node 2, the producer hosted on node 1 pauses and resumes, and every member is told', async () => {
    const a = await on(n1, 'adm-host');
    const b = await on(n2, 'adm-remote');
    await joinWithMedia(a, 'adm-room'); // node 1 claims the room's media
    const mb = await joinWithMedia(b, 'adm-room', { produce: true });
    const producerId = mb.producerId ?? '';
    await a.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === producerId);
    const admin1 = new ParleyAdmin({ baseUrl: n1.httpUrl, credential: API_KEY });
    const admin2 = new ParleyAdmin({ baseUrl: n2.httpUrl, credential: API_KEY });

    expect(
      await admin2.muteParticipant({ roomId: 'adm-room', userId: 'adm-remote', body: { muted: true } }),
    ).toEqual({ roomId: 'adm-room', userId: 'adm-remote', muted: true, producers: [producerId] });
    for (const c of [a, b]) {
      expect(await c.next('producer:paused')).toMatchObject({
        payload: { roomId: 'adm-room', producerId, userId: 'adm-remote' },
      });
    }
    const { participants } = await admin1.getRoom({ roomId: 'adm-room' });
    expect(participants.find((p) => p.userId === 'adm-remote')).toMatchObject({
      node: 'm2',
      muted: true,
      producers: [{ producerId, kind: 'audio', paused: true }],
    });

    await admin1.muteParticipant({ roomId: 'adm-room', userId: 'adm-remote', body: { muted: false } });
    for (const c of [a, b])
      expect(await c.next('producer:resumed')).toMatchObject({ payload: { producerId } });
    await expect(
      admin2.muteParticipant({
        roomId: 'adm-room',
        userId: 'adm-remote',
        body: { muted: true, producerId: 'no-such-producer' },
      }),
    ).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' } satisfies Partial<ParleyAdminError>);
    await expect(
      admin2.muteParticipant({ roomId: 'adm-room', userId: 'nobody', body: { muted: true } }),
    ).rejects.toMatchObject({ status: 404, code: 'NOT_IN_ROOM' } satisfies Partial<ParleyAdminError>);
  });
});
