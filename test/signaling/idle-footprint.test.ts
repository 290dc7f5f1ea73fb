import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../src/server/config/defaults.js';
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

  it('an open socket holds no listener at all, and each connection still works', async () => {
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    const a = byUser('alice');
    const b = byUser('bob');
    // The gateway's socket class hands the events to the gateway itself (gateway.ts, #socketClass).
    for (const event of ['message', 'pong', 'error', 'close']) {
      expect(a.ws.listenerCount(event), `${event} listeners`).toBe(0);
      expect(b.ws.listenerCount(event), `${event} listeners`).toBe(0);
    }
    expect(Object.getPrototypeOf(a.ws)).toBe(Object.getPrototypeOf(b.ws));
    // Still each one's own: a request gets its own reply, a ping its own pong.
    for (const c of [alice, bob]) {
      c.send('ping', {}, `p-${c === alice ? 'a' : 'b'}`);
      const pong = await c.next('pong');
      expect(pong.correlationId).toBe(`p-${c === alice ? 'a' : 'b'}`);
    }
  });

  it("the socket's events still reach the gateway: a pong, a frame, a listener added later, an error", async () => {
    const alice = await connectAs(srv, clients, 'alice');
    const conn = byUser('alice');
    const seen = conn.lastSeen;
    // A WebSocket pong (the client answers the server's ping by itself) marks the connection alive.
    conn.ws.ping();
    await waitUntil(() => conn.lastSeen > seen, 'the pong is seen');
    // A listener added with on() (as shutdown does) still hears the socket's events after the gateway.
    const closes: number[] = [];
    conn.ws.on('close', (code: number) => closes.push(code));
    // An oversize frame: ws reports an error (no listener: it must not throw) and closes with 1009.
    alice.ws.send('x'.repeat(defaults.maxFrameBytes + 1));
    expect((await alice.closed).code).toBe(1009);
    await waitUntil(() => closes.length === 1, 'the late listener heard the close');
    await waitUntil(() => srv.server.internalsForTesting.gateway.connectionCount === 0, 'forgotten');
    clients = clients.filter((c) => c !== alice);
    // And the server still serves.
    const bob = await connectAs(srv, clients, 'bob');
    bob.send('ping', {}, 'p-b');
    expect((await bob.next('pong')).correlationId).toBe('p-b');
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

  it('the socket guard keeps no record of an upgraded socket, and still counts it until it closes', async () => {
    const guard = srv.server.internalsForTesting.sockets;
    await waitUntil(() => guard.openForTesting.admitted === 0, 'no socket left from earlier tests');
    const alice = await connectAs(srv, clients, 'alice');
    const bob = await connectAs(srv, clients, 'bob');
    // Both count towards MAX_CONNECTIONS; neither has a record (timer, state) in the guard.
    expect(guard.openForTesting).toEqual({ admitted: 2, overCap: 0, records: 0 });
    await alice.close();
    await waitUntil(() => guard.openForTesting.admitted === 1, 'a clean close is released');
    byUser('bob').terminate();
    await waitUntil(() => guard.openForTesting.admitted === 0, 'a drop is released');
    expect(guard.openForTesting).toEqual({ admitted: 0, overCap: 0, records: 0 });
    clients = clients.filter((c) => c !== alice && c !== bob);
    // And a new connection still works, and is counted.
    const carol = await connectAs(srv, clients, 'carol');
    carol.send('ping', {}, 'p-c');
    expect((await carol.next('pong')).correlationId).toBe('p-c');
    expect(guard.openForTesting).toEqual({ admitted: 1, overCap: 0, records: 0 });
  });

  it("the connections' token deadlines are places in one shared queue, not timers of their own", async () => {
    await connectAs(srv, clients, 'alice');
    await connectAs(srv, clients, 'bob');
    // The welcome arms the deadline after the session is opened: wait for both.
    await waitUntil(() => open().every((c) => c.expiry !== null), 'both armed');
    const slots = open()
      .map((c) => c.expiry?.queueSlot)
      .sort();
    expect(slots).toEqual([0, 1]);
    byUser('alice').terminate();
    await waitUntil(() => open().length === 1, 'alice gone');
    // Alice's deadline left the queue with her connection; bob's moved to the top.
    expect(byUser('bob').expiry?.queueSlot).toBe(0);
  });
});
