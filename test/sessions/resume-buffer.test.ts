import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAs, TestClient } from '../helpers/client.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';

/**
 * Issue 13, High 3, second half: frames kept for a suspended session were bounded only in count
 * (256, of up to 60 KB each) and replayed at once on resume, which dropped the receiver again for
 * unread output. Now the buffer is bounded in bytes too (half of MAX_BUFFERED_BYTES), the oldest
 * going first (missedFrames), and the replay is written with backpressure.
 */
describe('the resume buffer is bounded in bytes and replayed with backpressure', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    srv = await startServer({ RESUME_GRACE_MS: '20000', LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  it('20 senders aim 4.8 MB at a suspended user: at most half of MAX_BUFFERED_BYTES is kept, and the resume is not dropped', async () => {
    const bobToken = await srv.token({ sub: 'bob', name: 'Bob' });
    const bob = new TestClient(srv.wsUrl, [], { headers: { authorization: `Bearer ${bobToken}` } });
    clients.push(bob);
    const { resumeToken, sessionId } = (await bob.next('welcome')).payload;
    expect((await bob.request('room:join', { roomId: 'lobby' })).type).toBe('room:state');
    const senders = await Promise.all(Array.from({ length: 20 }, (_, i) => connectAs(srv, clients, `s${i}`)));
    for (const s of senders)
      expect((await s.request('room:join', { roomId: 'lobby' })).type).toBe('room:state');

    bob.ws.terminate(); // a network drop: the session is suspended and buffers
    const sessions = srv.server.internalsForTesting.sessions;
    await waitUntil(() => sessions.get(sessionId)?.suspended === true, 'bob is suspended');

    // Each sender stays within its own per-recipient budget (4 offers of 60 KB < 256 KiB).
    const sdp = `v=0\r\na=${'x'.repeat(59_900)}`;
    for (const [i, s] of senders.entries())
      for (let k = 0; k < 4; k++) s.send('call:offer', { recipientId: 'bob', callId: `c${i}-${k}`, sdp });
    for (const s of senders) expect((await s.request('ping')).type).toBe('pong');
    for (const s of senders) expect(s.received.filter((m) => m.type === 'error')).toEqual([]);

    const held = sessions.get(sessionId)!;
    const bound = srv.config.limits.maxBufferedBytes / 2;
    expect(held.bufferedBytes).toBeGreaterThan(0);
    expect(held.bufferedBytes).toBeLessThanOrEqual(bound);
    expect(held.missedFrames).toBe(true);
    const kept = held.buffered.length;

    // Bob comes back, reads nothing for a while, then reads everything.
    const raw = await rawUpgrade(srv.port, { Authorization: `Bearer ${bobToken}` });
    expect(raw.status).toBe(101);
    raw.stopReading();
    raw.sendText(
      JSON.stringify({
        type: 'session:resume',
        payload: { resumeToken },
        correlationId: 'r1',
        timestamp: Date.now(),
      }),
    );
    await sleep(300); // the server writes while Bob does not read (no timing is asserted)
    let seen = '';
    raw.socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
    });
    raw.socket.resume();
    raw.sendText(JSON.stringify({ type: 'ping', correlationId: 'alive', timestamp: Date.now() }));
    await waitUntil(() => seen.includes('"correlationId":"alive"'), 'Bob answers after the replay', 10_000);

    expect(seen).toContain('"type":"session:resumed"');
    expect(seen).toContain('"missedFrames":true');
    // In order: the reply, the replayed offers (the newest ones kept), then the room snapshot.
    const offers = seen.split('"type":"call:offer"').length - 1;
    expect(offers).toBe(kept);
    expect(seen.indexOf('"type":"session:resumed"')).toBeLessThan(seen.indexOf('"type":"call:offer"'));
    expect(seen.lastIndexOf('"type":"call:offer"')).toBeLessThan(seen.indexOf('"type":"room:state"'));
    expect(seen).toContain('"callId":"c19-3"'); // the last one sent is among those kept
    expect(srv.logs.filter((l) => l.msg === 'dropping slow consumer')).toEqual([]);
    expect(sessions.get(sessionId)?.suspended).toBe(false);
    raw.destroy();
  });
});
