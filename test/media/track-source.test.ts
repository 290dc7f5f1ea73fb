import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { expectReply, FAKE_DTLS, joinWithMedia, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** producer:new names the track's source (microphone, camera, screen) when the publisher does. */
describe('track source in producer:new', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub }));
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '1' },
      { channels: [{ id: 'conf', name: 'Conf', mode: 'conference', maxParticipants: 10 }] },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('passes a known source on, live and to late joiners, and leaves out anything else', async () => {
    const a = await connect('src-a');
    const b = await connect('src-b');
    const ma = await joinWithMedia(a, 'conf');
    await joinWithMedia(b, 'conf');
    expectReply(
      await a.request('transport:connect', { transportId: ma.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const produce = async (appData: Record<string, unknown>, mid: string) =>
      expectReply(
        await a.request('produce', {
          transportId: ma.send.id,
          kind: 'audio',
          rtpParameters: { ...opusRtpParameters(), mid },
          appData,
        }),
        'produced',
      ).payload.producerId;
    const mic = await produce({ source: 'microphone' }, '0');
    const odd = await produce({ source: 'hacker', sessionId: 'forged' }, '1');
    const live = expectReply(
      await b.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === mic),
      'producer:new',
    );
    expect(live.payload).toMatchObject({ source: 'microphone', userId: 'src-a' });
    const other = await b.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === odd);
    expect(other.payload).not.toHaveProperty('source');
    expect(other.payload).toMatchObject({ sessionId: live.payload.sessionId }); // never the forged one

    // A late joiner hears of both existing producers, the same way.
    const c = await connect('src-c');
    await joinWithMedia(c, 'conf');
    const late = await c.waitFor((m) => m.type === 'producer:new' && m.payload.producerId === mic);
    expect(late.payload).toMatchObject({ source: 'microphone' });
  });
});
