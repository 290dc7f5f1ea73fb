import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

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

  it('are given back by the connection, so an opened socket never holds a close listener for its slot', async () => {
    // Runs before the gateway's upgrade listener: records the 'close' listeners added with once().
    const onces: string[][] = [];
    const spy = (_req: unknown, socket: Socket) => {
      const mine: string[] = [];
      onces.push(mine);
      const once = socket.once.bind(socket) as (e: string, l: () => void) => unknown;
      socket.once = ((event: string, listener: () => void) => {
        if (event === 'close') mine.push(listener.name || '(anonymous)');
        return once(event, listener);
      }) as never;
    };
    srv.server.http.prependListener('upgrade', spy);
    try {
      const token = await srv.token({ sub: 'slots-listeners' });
      // A handshake ws refuses: its slot waits for the socket's close (the spy sees that listener).
      expect(await malformedUpgrade(srv.port, token)).toMatch(/^HTTP\/1\.1 400/);
      // An opened one: the connection gives the slot back, and its socket holds no listener for it
      // (a third 'close' listener grew the socket's listener array: heap per idle connection).
      const a = await TestClient.connect(srv.wsUrl, token);
      expect(onces).toEqual([['release'], []]);
      await a.close();
      // Both slots came back: two more fit under the cap of 2.
      const b = await TestClient.connect(srv.wsUrl, token);
      const c = await TestClient.connect(srv.wsUrl, token);
      await Promise.all([b.close(), c.close()]);
    } finally {
      srv.server.http.off('upgrade', spy);
    }
  });
});
