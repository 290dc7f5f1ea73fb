import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { Connection } from '../../src/server/signaling/connection.js';
import { framesFollow, heldForTesting } from '../../src/server/signaling/write-burst.js';
import { candidateNumber, iceStep, TEST_SDP } from '../helpers/call-steps.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Frames that arrive together leave together (signaling/write-burst.ts): while the server handles
 * a frame whose chunk holds more, the sockets it writes to are corked, and uncorked at the end of
 * the turn. What must hold: every frame still arrives, in order; a burst reaches a socket in fewer
 * writes than it has frames; a frame that arrives alone is written at once, with no cork.
 */

/** Sends every text in one TCP write: the receiving server reads them as one chunk. */
function sendTogether(ws: WebSocket, texts: readonly string[]): void {
  const socket = (ws as unknown as { _socket: Duplex })._socket;
  socket.cork();
  for (const t of texts) ws.send(t);
  socket.uncork();
}

/** Counts what the server hands to a socket's kernel write: calls, and frames' bytes written. */
function countWrites(socket: Duplex): { calls: number; corks: number } {
  const seen = { calls: 0, corks: 0 };
  const s = socket as Duplex & {
    _write: (...a: unknown[]) => void;
    _writev?: (...a: unknown[]) => void;
  };
  const write = s._write.bind(s);
  s._write = (...a) => {
    seen.calls++;
    write(...a);
  };
  const writev = s._writev?.bind(s);
  if (writev)
    s._writev = (...a) => {
      seen.calls++;
      writev(...a);
    };
  const cork = s.cork.bind(s);
  s.cork = () => {
    seen.corks++;
    cork();
  };
  return seen;
}

describe('framesFollow (what ws says of the chunk being read)', () => {
  let wss: WebSocketServer;
  let url: string;
  const seen: boolean[] = [];

  beforeAll(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    wss.on('connection', (ws) => ws.on('message', () => seen.push(framesFollow(ws))));
  });
  afterAll(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  it('is true for each frame but the last of a chunk, and false for a frame alone', async () => {
    const client = new WebSocket(url);
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    sendTogether(client, ['a', 'b', 'c']);
    await waitUntil(() => seen.length === 3, 'three frames');
    expect(seen).toEqual([true, true, false]);
    seen.length = 0;
    client.send('alone');
    await waitUntil(() => seen.length === 1, 'one frame');
    expect(seen).toEqual([false]);
    client.terminate();
  });

  it('is false for a socket without ws’s receiver (nothing is held then)', () => {
    expect(framesFollow({} as WebSocket)).toBe(false);
    expect(framesFollow({ _receiver: null } as unknown as WebSocket)).toBe(false);
  });
});

describe('relayed frames that arrive together', () => {
  let srv: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  let bobSocket: { calls: number; corks: number };

  beforeAll(async () => {
    srv = await startServer({ CALL_POLICY: 'any' });
    alice = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'wb-alice' }));
    bob = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'wb-bob' }));
    alice.send('call:offer', { recipientId: 'wb-bob', callId: 'wb', sdp: TEST_SDP });
    await bob.next('call:offer');
    const conns: Connection[] = [...srv.server.internalsForTesting.gateway.connections()];
    const bobConn = conns.find((c) => c.identity?.userId === 'wb-bob');
    if (!bobConn) throw new Error('no server-side connection for wb-bob');
    bobSocket = countWrites((bobConn.ws as unknown as { _socket: Duplex })._socket);
  });
  afterAll(async () => {
    alice.ws.terminate();
    bob.ws.terminate();
    await srv.close();
  });

  const candidates = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => {
      const s = iceStep('wb-bob', 'wb', from + i);
      return JSON.stringify({ type: s.type, payload: s.payload });
    });
  const receivedNumbers = () =>
    bob.received
      .filter((m) => m.type === 'call:ice-candidate')
      .map((m) => Number(candidateNumber(m.payload as Record<string, unknown>)));

  // First, so that the call's candidates are on the synchronous path (its route kept) for the rest:
  // a message that waits (a first candidate planned asynchronously) has its chunk's later frames
  // handled after it, outside the burst.
  it('a frame that arrives alone is written at once, without a cork', async () => {
    bobSocket.calls = 0;
    bobSocket.corks = 0;
    for (const [i, text] of candidates(100, 3).entries()) {
      alice.ws.send(text);
      await waitUntil(() => receivedNumbers().length === i + 1, `candidate ${i + 1}`);
    }
    expect(receivedNumbers()).toEqual([100, 101, 102]);
    expect(bobSocket.calls).toBe(3);
    expect(bobSocket.corks).toBe(0);
    bob.received.length = 0;
  });

  it('reach the recipient complete and in order, in fewer socket writes than frames', async () => {
    bobSocket.calls = 0;
    sendTogether(alice.ws, candidates(1, 20));
    await waitUntil(() => receivedNumbers().length === 20, '20 candidates');
    expect(receivedNumbers()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // One chunk in: one write out, or a few if the kernel split the chunk; 20 without the burst.
    expect(bobSocket.calls).toBeGreaterThan(0);
    expect(bobSocket.calls).toBeLessThan(20);
    expect(heldForTesting()).toBe(0);
    // Everything was sent as the server's own frame: nothing was refused.
    expect(alice.received.filter((m) => m.type === 'error')).toEqual([]);
    bob.received.length = 0;
  });

  it('a burst that also holds an invalid frame answers it and relays the rest, in order', async () => {
    const [a, b] = candidates(200, 2);
    sendTogether(alice.ws, [a, '{"type":"call:ice-candidate","payload":{}}', b]);
    await waitUntil(() => receivedNumbers().length === 2, 'two candidates');
    expect(receivedNumbers()).toEqual([200, 201]);
    const err = await alice.next('error');
    expect(err.payload.code).toBe('INVALID_MESSAGE');
    bob.received.length = 0;
  });
});
