import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient } from '../helpers/client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server.js';
import { clusterForSuite } from '../helpers/suite-cluster.js';
import { waitUntil } from '../helpers/wait.js';
import { candidateNumber, iceStep as ice, TEST_SDP as SDP, type Step } from '../helpers/call-steps.js';

/**
 * The call relay runs a message synchronously when everything it needs is known on the node (the
 * recipient's whereabouts, the call's record) and through the async path otherwise (a first offer,
 * a record or directory cache miss, a call that is answered or ends). Whatever the mix, each
 * recipient must see one sender connection's messages in the order they were sent: a fast message
 * may never overtake a slow one sent before it. Real servers, real sockets; across two node
 * processes and a real redis-server too.
 */

/** Lifted limits: the bursts below are hundreds of frames sent at once. */
const ENV = {
  CALL_POLICY: 'any',
  RATE_LIMIT_PER_SEC: '100000',
  RATE_LIMIT_BURST: '100000',
  RELAY_BUDGET_MESSAGES_PER_SEC: '100000',
  RELAY_BUDGET_BURST_MESSAGES: '100000',
};

const offer = (to: string, callId: string, n: number): Step => ({
  type: 'call:offer',
  payload: { recipientId: to, callId, sdp: `${SDP}a=n:${n}\r\n` },
});

/** A step's identity as the recipient sees it: type, call and sequence number. */
function label(type: string, payload: Record<string, unknown>): string {
  const sdp = typeof payload.sdp === 'string' ? /a=n:(\d+)/.exec(payload.sdp)?.[1] : undefined;
  const n = sdp ?? candidateNumber(payload) ?? '-';
  return `${type}/${String(payload.callId)}/${n}`;
}

/**
 * One burst, written to the socket in one go: calls that start (slow: a first offer, then a record
 * cache miss) interleaved with candidates of calls already known (fast when nothing is pending).
 */
function burst(round: number, to: readonly string[], known: readonly string[]): Step[] {
  const steps: Step[] = [];
  let n = round * 1_000;
  for (let i = 0; i < 4; i++) {
    for (const [j, callId] of known.entries()) steps.push(ice(to[j % to.length], callId, n++));
    const recipient = to[i % to.length];
    steps.push(offer(recipient, `r${round}-${i}`, n++));
    for (let k = 0; k < 5; k++) steps.push(ice(recipient, `r${round}-${i}`, n++));
    for (const [j, callId] of known.entries()) steps.push(ice(to[j % to.length], callId, n++));
  }
  return steps;
}

/** One write per frame, all before any reply can come back: the server reads them back to back. */
function sendAll(c: TestClient, steps: Step[]): void {
  for (const s of steps) c.send(s.type, s.payload);
}

/** What `to` must receive of `steps`, in order. */
function expected(steps: Step[], to: string): string[] {
  return steps.filter((s) => s.payload.recipientId === to).map((s) => label(s.type, s.payload));
}

async function receivedIn(c: TestClient, count: number): Promise<string[]> {
  const isCall = (m: ServerMessage) => m.type === 'call:offer' || m.type === 'call:ice-candidate';
  // On a timeout, what did arrive is compared below (and the difference shown).
  await waitUntil(() => c.received.filter(isCall).length >= count, `${count} call messages`, 15_000).catch(
    () => undefined,
  );
  const got = c.received.filter(isCall);
  c.received.length = 0;
  return got.map((m) => label(m.type, m.payload as Record<string, unknown>));
}

describe('call relay order, memory backend', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    srv = await startServer(ENV);
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await srv.close();
  });

  it('a sender’s messages reach each recipient in the order sent, fast and slow paths mixed', async () => {
    const on = async (sub: string) => {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub }));
      clients.push(c);
      return c;
    };
    const alice = await on('o-alice');
    const bob = await on('o-bob');
    const carol = await on('o-carol');
    // Two calls already known to the node (their records cached), whose candidates take the fast path.
    sendAll(alice, [offer('o-bob', 'known-b', 1), offer('o-carol', 'known-c', 2)]);
    await bob.next('call:offer');
    await carol.next('call:offer');
    const before = srv.server.internalsForTesting.relay.relayPathsForTesting;

    for (let round = 1; round <= 3; round++) {
      const steps = burst(round, ['o-bob', 'o-carol'], ['known-b', 'known-c']);
      sendAll(alice, steps);
      const wantBob = expected(steps, 'o-bob');
      const wantCarol = expected(steps, 'o-carol');
      expect(await receivedIn(bob, wantBob.length)).toEqual(wantBob);
      expect(await receivedIn(carol, wantCarol.length)).toEqual(wantCarol);
    }
    // Both paths ran, interleaved: this test is about their mix.
    const after = srv.server.internalsForTesting.relay.relayPathsForTesting;
    expect(after.now - before.now).toBeGreaterThan(50);
    expect(after.later - before.later).toBeGreaterThanOrEqual(3 * 4);
    // Nothing was refused on the way.
    expect(alice.received.filter((m) => m.type === 'error')).toEqual([]);
  }, 60_000);
});

describe('call relay order, two nodes and Redis', () => {
  const cluster = clusterForSuite(
    ['o-1', 'o-2'],
    (nodeId, redis) => ({ ...ENV, REDIS_URL: redis.url, NODE_ID: nodeId }),
    { startTimeoutMs: 40_000 },
  );
  const issuer = new TokenIssuer({ secret: TEST_SECRET });

  it('keeps each recipient’s order for local and cross-node recipients, caches cold and warm', async () => {
    const [n1, n2] = cluster.nodes as [NodeProcess, NodeProcess];
    const on = async (node: NodeProcess, sub: string) =>
      cluster.adopt(await TestClient.connect(node.wsUrl, await issuer.issue({ sub })));
    const alice = await on(n1, 'x-alice');
    const remote = await on(n2, 'x-remote'); // across the bus
    const local = await on(n1, 'x-local'); // on alice's node
    // What goes on node o-2's channel: one publication per event-loop turn of o-1 carries all the
    // frames relayed in it (a batch), so a burst read in one go takes fewer publications than frames.
    const watch = new Redis({ path: cluster.redis().path });
    let publications = 0;
    watch.on('pmessageBuffer', () => publications++);
    await watch.psubscribe('*node:o-2');
    let remoteFrames = 0;
    // Round 1 starts cold: the directory cache and the call-record cache know nothing yet.
    let known: string[] = [];
    for (let round = 1; round <= 3; round++) {
      const steps = burst(round, ['x-remote', 'x-local'], known);
      sendAll(alice, steps);
      const wantRemote = expected(steps, 'x-remote');
      const wantLocal = expected(steps, 'x-local');
      expect(await receivedIn(remote, wantRemote.length)).toEqual(wantRemote);
      expect(await receivedIn(local, wantLocal.length)).toEqual(wantLocal);
      remoteFrames += wantRemote.length;
      known = [`r${round}-0`, `r${round}-1`];
    }
    expect(alice.received.filter((m) => m.type === 'error')).toEqual([]);
    // Batches carried them: fewer publications than frames, and the order above held across them.
    watch.disconnect();
    expect(publications).toBeGreaterThan(0);
    expect(publications).toBeLessThan(remoteFrames);
  }, 90_000);
});
