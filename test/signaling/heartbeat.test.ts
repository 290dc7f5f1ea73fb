import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The heartbeat spread over its interval (heartbeat-sweep.ts; the schedule itself is in
 * test/unit/heartbeat-sweep.test.ts): on a real server with a 2 s interval (two ticks of a second),
 * every connection is still pinged, a silent one is still terminated, and a connection that answers
 * is left alone.
 */
describe('heartbeat, spread over the interval', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    srv = await startServer({ HEARTBEAT_INTERVAL_MS: '2000', HEARTBEAT_TIMEOUT_MS: '4500' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await srv.close();
  });

  const open = async (sub: string, autoPong: boolean) => {
    const c = new TestClient(srv.wsUrl, [], {
      headers: { authorization: `Bearer ${await srv.token({ sub })}` },
      autoPong,
    });
    clients.push(c);
    await c.opened;
    await c.next('welcome');
    return c;
  };

  it('pings every connection, terminates the one that never answers, and keeps the others', async () => {
    const live = await Promise.all(Array.from({ length: 8 }, (_, i) => open(`live${i}`, true)));
    const silent = await open('silent', false);
    const pings = new Map<TestClient, number>();
    for (const c of [...live, silent]) c.ws.on('ping', () => pings.set(c, (pings.get(c) ?? 0) + 1));

    // The silent one is pinged, then cut after its timeout (no close frame: terminated).
    const closed = await silent.closed;
    expect(closed.code).toBe(1006);
    expect(pings.get(silent)).toBeGreaterThanOrEqual(1);
    // Each live one is pinged again and again (the schedule repeats every interval) and stays open.
    await waitUntil(
      () => live.every((c) => (pings.get(c) ?? 0) >= 2),
      'every live connection pinged twice',
      15_000,
    );
    expect(live.every((c) => c.ws.readyState === c.ws.OPEN)).toBe(true);
    await waitUntil(
      () => srv.server.internalsForTesting.gateway.connectionCount === 8,
      'the server let go of the silent one',
      5_000,
    );
  });
});
