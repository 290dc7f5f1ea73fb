import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyAdmin } from '../../src/server-sdk/index.js';
import { TestClient } from '../helpers/client.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';

const API_KEY = 'admin-api-key-0123456789';
const manifest = {
  allowAdHocRooms: false,
  channels: [{ id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 }],
};

/** The server API's mute on real mediasoup, heard (or not) by a real libwebrtc listener. */
describe('server API mute stops the audio at a real listener', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', ADMIN_API_KEY: API_KEY }, manifest);
  });
  afterAll(async () => {
    for (const p of peers) p.close();
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('packets stop while muted and flow again once unmuted; the room and the user hear of it', async () => {
    const join = async (sub: string) => {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub }));
      clients.push(c);
      await c.request('room:join', { roomId: 'conf' });
      const p = await WebRtcPeer.open(c, 'conf');
      peers.push(p);
      return p;
    };
    const speaker = await join('talker');
    const listener = await join('listener');
    const { producerId } = await speaker.produceTone();
    await listener.consumeFloor(producerId);
    const flowing = async () => {
      const start = await listener.packetsReceived();
      await waitUntil(
        async () => (await listener.packetsReceived()) > start + 10,
        'audio at the listener',
        10_000,
      );
    };
    await flowing();

    const admin = new ParleyAdmin({ baseUrl: srv.httpUrl, credential: API_KEY });
    expect(await admin.muteParticipant({ roomId: 'conf', userId: 'talker', body: { muted: true } })).toEqual({
      roomId: 'conf',
      userId: 'talker',
      muted: true,
      producers: [producerId],
    });
    expect(await listener.client.next('producer:paused')).toMatchObject({ payload: { producerId } });
    expect(await speaker.client.next('producer:paused')).toMatchObject({ payload: { producerId } });
    const room = await admin.getRoom({ roomId: 'conf' });
    expect(room.participants.find((p) => p.userId === 'talker')).toMatchObject({
      muted: true,
      producers: [{ producerId, kind: 'audio', paused: true }],
    });
    await sleep(300); // packets already on the wire drain
    const before = await listener.packetsReceived();
    await sleep(700);
    expect((await listener.packetsReceived()) - before).toBeLessThanOrEqual(2);

    await admin.muteParticipant({ roomId: 'conf', userId: 'talker', body: { muted: false } });
    expect(await listener.client.next('producer:resumed')).toMatchObject({ payload: { producerId } });
    await flowing();
  }, 60_000);
});
