import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAs, type TestClient } from '../helpers/client.js';
import { CONF_AND_RADIO, joinWithMedia, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 13, Medium 3, on real mediasoup: a token refresh that takes publishing away closes the
 * user's producers (the other members hear producer:closed) and, in a PTT room, releases the floor
 * and its audio; the user is told with auth:grants-reduced and may no longer produce.
 */
describe('narrower grants close what may no longer be published', () => {
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

  it('a refresh with canPublish: false closes the conference producer and the PTT one, and frees the floor', async () => {
    const speaker = await connect('pub');
    const other = await connect('listener');
    const conf = await joinWithMedia(speaker, 'conf', { produce: true });
    await joinWithMedia(other, 'conf');
    const radio = await joinWithMedia(speaker, 'radio', { produce: true });
    await joinWithMedia(other, 'radio');
    expect((await speaker.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
    await other.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'pub');

    const listenOnly = await srv.token({ sub: 'pub', name: 'PUB', canPublish: false });
    expect((await speaker.request('auth:request', { token: listenOnly })).type).toBe('auth:response');
    const reduced = await speaker.next('auth:grants-reduced');
    expect(reduced.payload.rooms).toEqual([]);
    expect(reduced.payload.publishing).toBe(true);
    expect(new Set(reduced.payload.closedProducers)).toEqual(new Set([conf.producerId, radio.producerId]));

    const closed = await other.waitFor((m) => m.type === 'producer:closed');
    expect(closed.payload).toMatchObject({ roomId: 'conf', producerId: conf.producerId });
    await other.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
    // No way back in with this token; the listener beside it is unaffected.
    const again = await speaker.request('produce', {
      transportId: conf.send.id,
      kind: 'audio',
      rtpParameters: opusRtpParameters(),
    });
    expect(again).toMatchObject({ type: 'error', payload: { code: 'FORBIDDEN' } });
    expect((await speaker.request('ptt:start', { roomId: 'radio' })).payload).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(other.received.filter((m) => m.type === 'error')).toEqual([]);
    expect((await other.request('ping')).type).toBe('pong');
  });
});
