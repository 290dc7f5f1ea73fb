import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { expectReply } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';

const manifest = {
  allowAdHocRooms: false,
  channels: [{ id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 }],
};

/*
 * room:active-speaker on real RTP: libwebrtc peers send a tone with the ssrc-audio-level header
 * extension, and mediasoup's ActiveSpeakerObserver picks the dominant one. Behaviour and order
 * only; how fast it follows is the observer's and the hold's business (unit test: active-speaker).
 */
describe('room:active-speaker follows who talks', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];
  const sessions = new Map<string, string>();
  const connect = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub.toUpperCase() }));
    clients.push(c);
    const state = expectReply(await c.request('room:join', { roomId: 'conf' }), 'room:state').payload;
    sessions.set(sub, state.participants.find((p) => p.userId === sub)?.sessionId ?? '');
    return c;
  };
  const speakerIs = async (c: TestClient, userId: string | null) =>
    expectReply(
      await c.waitFor(
        (m) => m.type === 'room:active-speaker' && m.payload.userId === userId,
        15_000,
        `speaker ${userId}`,
      ),
      'room:active-speaker',
    );

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', ACTIVE_SPEAKER_HOLD_MS: '200' }, manifest);
  });
  afterAll(async () => {
    for (const p of peers) p.close();
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('announces the talker to every member, nobody when they mute (after the reply), the next talker, and the current one to a late joiner', async () => {
    const a = await connect('talk-a');
    const b = await connect('talk-b');
    const pa = await WebRtcPeer.open(a, 'conf');
    peers.push(pa);
    const { producerId } = await pa.produceTone({ audioLevel: true, appData: { source: 'microphone' } });

    const heard = await speakerIs(b, 'talk-a');
    expect(heard.payload).toEqual({
      roomId: 'conf',
      userId: 'talk-a',
      sessionId: sessions.get('talk-a'),
      producerId,
    });
    await speakerIs(a, 'talk-a'); // the speaker is told too

    // Mute: the reply first, then the room hears there is no active speaker.
    const order: string[] = [];
    a.ws.on('message', (data: Buffer) => order.push((JSON.parse(data.toString()) as { type: string }).type));
    expectReply(await a.request('producer:pause', { producerId }), 'producer:paused');
    await speakerIs(a, null);
    await speakerIs(b, null);
    expect(order.filter((t) => t === 'producer:paused' || t === 'room:active-speaker')).toEqual([
      'producer:paused',
      'room:active-speaker',
    ]);

    // B talks: B is the active speaker.
    const pb = await WebRtcPeer.open(b, 'conf');
    peers.push(pb);
    const tb = await pb.produceTone({ audioLevel: true, appData: { source: 'microphone' } });
    expect((await speakerIs(a, 'talk-b')).payload.producerId).toBe(tb.producerId);

    // A late joiner learns the current speaker with its recv transport, after transport:created.
    const c = await connect('talk-c');
    const created = await c.request('transport:create', { roomId: 'conf', direction: 'recv' });
    expectReply(created, 'transport:created');
    expect((await speakerIs(c, 'talk-b')).payload.producerId).toBe(tb.producerId);

    // B leaves: its producer goes, and so does the active speaker.
    expectReply(await b.request('room:leave', { roomId: 'conf' }), 'room:left');
    await speakerIs(c, null);
  }, 60_000);
});
