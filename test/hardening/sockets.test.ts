import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Issue 13, High 1: sockets that never complete a request. The attacker uses another loopback
 * address (127.0.0.2…) than the legitimate clients (127.0.0.1), as it would from its own host;
 * the server listens on 127.0.0.1 only.
 */

interface RawSocket {
  socket: Socket;
  /** performance.now() at connect. */
  t0: number;
  /** What the server wrote (latin1). */
  response: string;
  closedAt: number | null;
  closed: Promise<void>;
}

/** A TCP connection from `localAddress` that writes `send` (possibly nothing) and then waits. */
async function openRaw(port: number, localAddress: string, send = ''): Promise<RawSocket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const raw: RawSocket = { socket, t0: 0, response: '', closedAt: null, closed: Promise.resolve() };
  socket.on('data', (b: Buffer) => (raw.response += b.toString('latin1')));
  socket.on('error', () => undefined);
  raw.closed = new Promise((resolve) =>
    socket.once('close', () => {
      raw.closedAt = performance.now();
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  raw.t0 = performance.now();
  if (send) socket.write(send);
  return raw;
}

/** One request on its own socket; resolves with everything written back once the server closes it. */
async function request(port: number, localAddress: string, text: string): Promise<string> {
  const raw = await openRaw(port, localAddress, text);
  await raw.closed;
  return raw.response;
}

const upgrade = (token: string) =>
  'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  `Authorization: Bearer ${token}\r\n\r\n`;
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

async function ping(c: TestClient, id: string): Promise<void> {
  c.ws.send(JSON.stringify({ type: 'ping', correlationId: id }));
  await c.waitFor((m) => 'correlationId' in m && m.correlationId === id);
}

describe('silent and half-sent sockets from one address', () => {
  let srv: TestServer;
  // Long enough that the 429, the health checks and the calm client's ping below all happen while
  // the 20 attackers still hold their slots, even on a loaded machine (at 1 s a busy CI host could
  // reach the deadline first). The behaviour asserted is the order, not a speed.
  const TIMEOUT_MS = 4_000;
  beforeAll(async () => {
    srv = await startServer({
      UPGRADE_HEADERS_TIMEOUT_MS: String(TIMEOUT_MS),
      MAX_CONNECTIONS_PER_IP: '20',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(() => srv.close());

  it('are destroyed after UPGRADE_HEADERS_TIMEOUT_MS, capped per address from accept, while /health and a legitimate client are served', async () => {
    // 10 that send nothing and 10 that stop inside the request line: the address's whole cap.
    const attack = await Promise.all([
      ...Array.from({ length: 10 }, () => openRaw(srv.port, '127.0.0.2')),
      ...Array.from({ length: 10 }, () => openRaw(srv.port, '127.0.0.2', 'GET /ws HTT')),
    ]);
    await waitUntil(
      () => srv.server.internalsForTesting.sockets.openForTesting.admitted === 20,
      'the server accepted all 20',
    );
    // One more from that address: counted from accept, so refused even though none upgraded.
    const over = await request(srv.port, '127.0.0.2', upgrade(await srv.token({ sub: 'attacker' })));
    expect(over).toMatch(/^HTTP\/1\.1 429 /);
    expect(over).toContain('TOO_MANY_CONNECTIONS');
    // ... but a health check from it is still answered.
    expect(await request(srv.port, '127.0.0.2', get('/health'))).toMatch(/^HTTP\/1\.1 200 /);

    // Meanwhile, from another address: /health answers and a legitimate client connects and talks.
    expect(await request(srv.port, '127.0.0.1', get('/health'))).toMatch(/^HTTP\/1\.1 200 /);
    const calm = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'calm' }));
    await ping(calm, 'during');
    expect(attack.every((s) => s.closedAt === null)).toBe(true);

    await Promise.all(attack.map((s) => s.closed));
    for (const s of attack) {
      // Ordering, not speed: none is cut before its deadline, and each is told why.
      expect(s.closedAt! - s.t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      expect(s.response).toMatch(/^HTTP\/1\.1 408 /);
    }
    // The legitimate WebSocket, past the same deadline, is untouched: an upgrade completes it.
    await ping(calm, 'after');
    await waitUntil(
      () => srv.server.internalsForTesting.sockets.openForTesting.admitted === 1,
      'only the legitimate socket is left',
    );
    // The address's slots come back.
    const again = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'attacker-again' }));
    await again.close(1000);
    await calm.close(1000);
  });

  it('closes an idle keep-alive socket after its response', async () => {
    const s = await openRaw(srv.port, '127.0.0.3', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitUntil(() => s.response.includes('"status"'), 'the health answer');
    expect(s.response).toMatch(/^HTTP\/1\.1 200 /);
    expect(s.response.toLowerCase()).toContain('connection: keep-alive');
    await s.closed;
    // Closed quietly: no second response.
    expect(s.response.match(/HTTP\/1\.1/g)).toHaveLength(1);
  });
});

describe('MAX_CONNECTIONS', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      MAX_CONNECTIONS: '10',
      MAX_CONNECTIONS_PER_IP: '0',
      UPGRADE_HEADERS_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(() => srv.close());

  it('refuses sockets beyond the cap, answers /health from a reserve, and destroys what exceeds the reserve', async () => {
    const guard = srv.server.internalsForTesting.sockets;
    const held = await Promise.all(Array.from({ length: 10 }, () => openRaw(srv.port, '127.0.0.4')));
    await waitUntil(() => guard.openForTesting.admitted === 10, 'the cap is reached');

    // Over the cap: /health is answered (and the socket closed), everything else is 503.
    expect(await request(srv.port, '127.0.0.5', get('/health'))).toMatch(/^HTTP\/1\.1 200 /);
    expect(await request(srv.port, '127.0.0.5', get('/metrics'))).toMatch(/^HTTP\/1\.1 503 /);
    const refused = await request(srv.port, '127.0.0.1', upgrade(await srv.token({ sub: 'late' })));
    expect(refused).toMatch(/^HTTP\/1\.1 503 /);

    // The reserve (16 here: a tenth of the cap, at least 16) holds silent sockets too, at most 4
    // per address; one more is destroyed at once, unanswered.
    const reserve = await Promise.all(
      ['127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8'].flatMap((a) =>
        Array.from({ length: 4 }, () => openRaw(srv.port, a)),
      ),
    );
    await waitUntil(() => guard.openForTesting.overCap === 16, 'the reserve is full');
    const beyond = await openRaw(srv.port, '127.0.0.9', get('/health'));
    await beyond.closed;
    expect(beyond.response).toBe('');
    expect(reserve.every((s) => s.closedAt === null)).toBe(true);

    // Silent sockets die at the deadline, and the node serves again.
    await Promise.all([...held, ...reserve].map((s) => s.closed));
    await waitUntil(
      () => guard.openForTesting.admitted === 0 && guard.openForTesting.overCap === 0,
      'everything is released',
    );
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'after' }));
    await ping(c, 'after');
    await c.close(1000);
  });

  it('counts a WebSocket until it closes, through the gateway, with no listener of its own on the socket', async () => {
    const guard = srv.server.internalsForTesting.sockets;
    const sockets: Socket[] = [];
    const keep = (_req: unknown, socket: Socket) => void sockets.push(socket);
    srv.server.http.on('upgrade', keep);
    try {
      const clients = await Promise.all(
        Array.from({ length: 10 }, async (_, i) =>
          TestClient.connect(srv.wsUrl, await srv.token({ sub: `ws-${i}` })),
        ),
      );
      expect(guard.openForTesting.admitted).toBe(10);
      // Each socket holds ws's own listeners only (a second one would make an array per event).
      for (const socket of sockets) {
        expect(socket.listeners('close').map((l) => l.name)).toEqual(['socketOnClose']);
        expect(socket.listeners('error').map((l) => l.name)).toEqual(['socketOnError']);
      }
      // At the cap: the next one is refused.
      expect(await request(srv.port, '127.0.0.1', upgrade(await srv.token({ sub: 'eleventh' })))).toMatch(
        /^HTTP\/1\.1 503 /,
      );
      // Closing (client side and server side) gives the slots back, once each.
      await Promise.all(clients.slice(0, 5).map((c) => c.close(1000)));
      for (const socket of sockets.slice(5)) socket.destroy();
      await waitUntil(() => guard.openForTesting.admitted === 0, 'every WebSocket released');
      expect(guard.openForTesting.overCap).toBe(0);
      const again = await Promise.all(
        Array.from({ length: 10 }, async (_, i) =>
          TestClient.connect(srv.wsUrl, await srv.token({ sub: `again-${i}` })),
        ),
      );
      expect(guard.openForTesting.admitted).toBe(10);
      await Promise.all(again.map((c) => c.close(1000)));
      await waitUntil(() => guard.openForTesting.admitted === 0, 'released again');
    } finally {
      srv.server.http.off('upgrade', keep);
    }
  });
});
