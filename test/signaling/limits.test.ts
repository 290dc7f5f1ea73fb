import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CLOSE_CODES } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/** Sends an upgrade request ws must reject itself (no Sec-WebSocket-Key) and returns the status line. */
function malformedUpgrade(port: number, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Authorization: Bearer ${token}\r\n\r\n`,
      );
    });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    s.on('error', reject);
  });
}

describe('per-address connection slots', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ MAX_CONNECTIONS_PER_IP: '2' });
  });
  afterAll(() => srv.close());

  it('are given back when ws itself rejects a malformed handshake', async () => {
    const token = await srv.token({ sub: 'slots' });
    for (let i = 0; i < 4; i++) expect(await malformedUpgrade(srv.port, token)).toMatch(/^HTTP\/1\.1 400/);
    // Had the slots leaked, the cap of 2 would refuse these with 429.
    const a = await TestClient.connect(srv.wsUrl, token);
    const b = await TestClient.connect(srv.wsUrl, token);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('a client that stops reading', () => {
  let srv: TestServer;
  const MAX_BUFFERED = 64 * 1024;
  beforeAll(async () => {
    srv = await startServer({
      MAX_BUFFERED_BYTES: String(MAX_BUFFERED),
      RATE_LIMIT_PER_SEC: '0',
      RESUME_GRACE_MS: '0',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(() => srv.close());

  it('is closed with 4008 BACKPRESSURE, which it sees when it reads again', async () => {
    // A real client socket: reading stops at the TCP level, so the kernel buffers fill and the
    // server's writes queue in user space until they pass MAX_BUFFERED_BYTES.
    const slow = new WebSocket(srv.wsUrl, {
      headers: { authorization: `Bearer ${await srv.token({ sub: 'reader' })}` },
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      slow.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await new Promise<void>((resolve, reject) => {
      slow.once('message', () => resolve()); // welcome: the session exists
      slow.once('error', reject);
    });
    const received: string[] = [];
    slow.on('message', (d: Buffer) => received.push((JSON.parse(d.toString()) as { type: string }).type));
    slow.pause();

    const fast = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'writer' }));
    const sdp = `v=0\r\n${'a=x'.repeat(16_000)}`; // ~48 KB per relayed frame
    const passedLimit = () => srv.logs.some((l) => l.msg === 'dropping slow consumer');
    for (let batch = 0; batch < 60 && !passedLimit(); batch++) {
      for (let i = 0; i < 10; i++)
        fast.send('call:offer', { recipientId: 'reader', callId: `c${batch}`, sdp });
      expect((await fast.request('ping', undefined, 5_000)).type).toBe('pong');
    }
    expect(passedLimit()).toBe(true);

    slow.resume();
    const { code } = await closed;
    expect(code).toBe(CLOSE_CODES.BACKPRESSURE.code);
    expect(code).toBe(4008);
    // What was queued before the limit arrived, in order, before the close frame.
    expect(received.length).toBeGreaterThan(0);
    expect(new Set(received)).toEqual(new Set(['call:offer']));

    // The server let go of it: the session is gone (grace 0) and offers to it are refused.
    await waitUntil(
      () => srv.server.internalsForTesting.sessions.sessionsOf('reader') === undefined,
      'the slow reader is gone',
    );
    const reply = await fast.request('call:offer', { recipientId: 'reader', callId: 'after', sdp: 'v=0' });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'RECIPIENT_OFFLINE' } });
    await fast.close();
  });
});
