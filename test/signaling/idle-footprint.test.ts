import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/server/signaling/connection.js';
import { connectAs, type TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Issue 14, memory per idle connection: what an open connection holds beyond ws. Its socket's
 * listeners are the gateway's shared ones (no closure per connection), and with them the per-address
 * count is still released when a connection closes, however it closes. Real sockets.
 */
describe('an idle connection holds no listeners of its own', () => {
  let srv: TestServer;
  let clients: TestClient[] = [];
  const open = () => [...srv.server.internalsForTesting.gateway.connections()];
  const byUser = (userId: string): Connection => {
    const conn = open().find((c) => c.identity?.userId === userId);
    if (!conn) throw new Error(`no connection for ${userId}`);
    return conn;
  };

  beforeAll(async () => {
    srv = await startServer({ MEDIASOUP_WORKERS: '0' });
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    await waitUntil(() => srv.server.internalsForTesting.gateway.connectionCount === 0, 'all closed');
  });
  afterAll(() => srv.close());

  it('two connections share every socket listener, and each still works', async () => {
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    const a = byUser('alice');
    const b = byUser('bob');
    for (const event of ['message', 'pong', 'error', 'close']) {
      const mine = a.ws.listeners(event);
      expect(mine.length, `${event} listeners`).toBeGreaterThan(0);
      expect(mine, `${event}: the same functions on both sockets`).toEqual(b.ws.listeners(event));
    }
    // Still each one's own: a request gets its own reply, a ping its own pong.
    for (const c of [alice, bob]) {
      c.send('ping', {}, `p-${c === alice ? 'a' : 'b'}`);
      const pong = await c.next('pong');
      expect(pong.correlationId).toBe(`p-${c === alice ? 'a' : 'b'}`);
    }
  });

  it('the per-address count comes back to 0 after a clean close and after a drop', async () => {
    const gateway = srv.server.internalsForTesting.gateway;
    const before = gateway.connectionsFrom('127.0.0.1');
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    expect(gateway.connectionsFrom('127.0.0.1')).toBe(before + 2);
    await alice.close();
    await waitUntil(() => gateway.connectionsFrom('127.0.0.1') === before + 1, 'one released');
    byUser('bob').terminate();
    await waitUntil(() => gateway.connectionsFrom('127.0.0.1') === before, 'both released');
    expect(gateway.connectionCount).toBe(0);
    clients = clients.filter((c) => c !== alice && c !== bob);
  });
});
