import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { frame } from '../../src/server/wire/frame.js';
import { TestClient } from '../helpers/client.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { startOldBusNode, type OldBusNode } from '../helpers/old-bus-node.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { candidateNumber, iceStep as ice, TEST_SDP as SDP, type Step } from '../helpers/call-steps.js';

/**
 * A rolling upgrade across batched bus publications: a node of the previous release reads one
 * message per publication, so a new node sends it single messages (the old format), every one, in
 * order, while two new nodes batch between them. Two real node processes and a real redis-server;
 * the old node is its registry record plus a real subscriber decoding with that release's decoder.
 */

const ENV = {
  CALL_POLICY: 'any',
  RATE_LIMIT_PER_SEC: '100000',
  RATE_LIMIT_BURST: '100000',
  RELAY_BUDGET_MESSAGES_PER_SEC: '100000',
  RELAY_BUDGET_BURST_MESSAGES: '100000',
  RELAY_BUDGET_BYTES_PER_SEC: '1000000000',
  RELAY_BUDGET_BURST_BYTES: '1000000000',
};

const offer = (to: string, callId: string): Step => ({
  type: 'call:offer',
  payload: { recipientId: to, callId, sdp: SDP },
});

/** `type/n` of a call message: n is the candidate's number, `-` for an offer. */
function label(type: string, payload: Record<string, unknown>): string {
  return `${type}/${candidateNumber(payload) ?? '-'}`;
}

/** Candidates for both recipients interleaved, written back to back (the server reads them in a few turns). */
function burst(from: number, count: number, old: string, fresh: string): Step[] {
  const steps: Step[] = [];
  for (let n = from; n < from + count; n++) {
    steps.push(ice(old, 'c-old', n));
    steps.push(ice(fresh, 'c-new', n));
  }
  return steps;
}

const want = (steps: Step[], to: string) =>
  steps.filter((s) => s.payload.recipientId === to).map((s) => label(s.type, s.payload));

/** The call messages the old node read, as labels. */
function oldLabels(node: OldBusNode): string[] {
  return node.userMessages
    .filter((m) => m.frame?.type === 'call:offer' || m.frame?.type === 'call:ice-candidate')
    .map((m) => {
      const env = JSON.parse(m.frame!.data.toString('utf8')) as ServerMessage;
      return label(env.type, env.payload);
    });
}

function clientLabels(c: TestClient): string[] {
  return c.received
    .filter((m) => m.type === 'call:offer' || m.type === 'call:ice-candidate')
    .map((m) => label(m.type, m.payload as Record<string, unknown>));
}

const refusals = (c: TestClient) => c.received.filter((m) => m.type === 'error');

/**
 * Sends `step` until `arrived()` says it was relayed. The server refuses a call message with
 * SERVICE_UNAVAILABLE when a Redis operation it needs fails; on a busy machine that happens when
 * redis-server or the node is not scheduled for a second (ioredis's command timeout). A client
 * sends such a message again, and so does this; any other refusal fails the test.
 *
 * Why the calls are set up this way before the burst: a refused offer writes no call record, and
 * candidates for no call are dropped silently (call-answering.ts, `noCall`), so one failed Redis
 * operation while the offer was handled lost every message of that call, for good.
 */
async function sendUntilRelayed(sender: TestClient, step: Step, arrived: () => boolean): Promise<void> {
  const what = `${label(step.type, step.payload)} to ${String(step.payload.recipientId)} relayed`;
  for (let attempt = 1; ; attempt++) {
    const before = refusals(sender).length;
    sender.send(step.type, step.payload);
    await waitUntil(() => arrived() || refusals(sender).length > before, what, 20_000);
    if (arrived()) return;
    const refusal = refusals(sender)[before].payload as { code?: string };
    if (refusal.code !== 'SERVICE_UNAVAILABLE' || attempt >= 5)
      throw new Error(`${what}: refused ${JSON.stringify(refusal)} (attempt ${attempt})`);
  }
}

describe('mixed-version cluster: a node of the previous release on the bus', () => {
  let redis: TestRedis;
  const nodes: NodeProcess[] = [];
  const clients: TestClient[] = [];
  let old: OldBusNode;
  let watch: Redis;
  let admin: Redis;
  let newNodePublications = 0;
  const issuer = new TokenIssuer({ secret: TEST_SECRET });
  const env = (nodeId: string) => ({ ...ENV, REDIS_URL: redis.url, NODE_ID: nodeId });

  beforeAll(async () => {
    redis = await startRedis();
    old = await startOldBusNode({
      redisPath: redis.path,
      nodeId: 'mv-old',
      session: { userId: 'mv-olduser', sessionId: 'mv-old-session' },
    });
    nodes.push(
      ...(await Promise.all([startNodeProcess(env('mv-1'), 40_000), startNodeProcess(env('mv-2'), 40_000)])),
    );
    admin = new Redis({ path: redis.path });
    watch = new Redis({ path: redis.path });
    watch.on('messageBuffer', () => newNodePublications++);
    await watch.subscribe('parley:node:mv-2');
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    watch?.disconnect();
    admin?.disconnect();
    old?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it('relays a burst to the old node as single messages, all in order, and batches to the new node', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const alice = await TestClient.connect(n1.wsUrl, await issuer.issue({ sub: 'mv-alice' }));
    const carol = await TestClient.connect(n2.wsUrl, await issuer.issue({ sub: 'mv-carol' }));
    clients.push(alice, carol);

    // Carol's node registers her in the directory after her welcome: wait for it, or alice's node
    // could find her offline.
    await waitUntil(
      async () => (await admin.hlen('parley:user:{mv-carol}:sessions')) > 0,
      'carol registered',
    );

    // Both calls first: each offer, then one candidate (which reads the new call record into the
    // node's cache), each sent until relayed.
    const setup = [
      offer('mv-olduser', 'c-old'),
      ice('mv-olduser', 'c-old', 9_999),
      offer('mv-carol', 'c-new'),
      ice('mv-carol', 'c-new', 9_999),
    ];
    for (const s of setup) {
      const to = s.payload.recipientId === 'mv-olduser' ? () => oldLabels(old) : () => clientLabels(carol);
      await sendUntilRelayed(alice, s, () => to().includes(label(s.type, s.payload)));
    }
    const refusedInSetup = refusals(alice).length;
    const publicationsInSetup = newNodePublications;

    // The burst, back to back.
    const steps: Step[] = [];
    for (let round = 0; round < 4; round++) steps.push(...burst(round * 100, 100, 'mv-olduser', 'mv-carol'));
    for (const s of steps) alice.send(s.type, s.payload);

    const wantOld = want([...setup, ...steps], 'mv-olduser');
    const wantNew = want([...setup, ...steps], 'mv-carol');
    await waitUntil(
      () => oldLabels(old).length >= wantOld.length,
      'the old node has every message',
      20_000,
    ).catch(
      () => undefined, // compared below, with the difference shown
    );
    await waitUntil(
      () => clientLabels(carol).length >= wantNew.length,
      'carol has every message',
      20_000,
    ).catch(() => undefined);
    // Every message reached the old node, readable by its own decoder, in the order sent.
    expect(oldLabels(old)).toEqual(wantOld);
    expect(old.unreadable).toBe(0);
    // One publication per message: nothing was batched to it.
    expect(old.publications).toBe(old.userMessages.length);
    // The new node got everything in order too, in fewer publications than messages: batched.
    expect(clientLabels(carol)).toEqual(wantNew);
    const burstPublications = newNodePublications - publicationsInSetup;
    expect(burstPublications).toBeGreaterThan(0);
    expect(burstPublications).toBeLessThan(want(steps, 'mv-carol').length);
    expect(refusals(alice).slice(refusedInSetup)).toEqual([]);
  }, 60_000);

  it('a new node reads what the old node publishes', async () => {
    const alice = clients[0];
    alice.received.length = 0;
    const candidate = { candidate: 'candidate:77 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' };
    const f = frame('call:ice-candidate', {
      callId: 'c-old',
      senderId: 'mv-olduser',
      senderName: 'Old',
      candidate,
    });
    expect(await old.publishToNode('mv-1', { t: 'user', userId: 'mv-alice' }, f)).toBe(1);
    const got = await alice.next('call:ice-candidate');
    expect(got.payload).toMatchObject({ callId: 'c-old', senderId: 'mv-olduser', candidate });
  });

  it('once the node restarts on the new release (its record says bus 2), it gets batches', async () => {
    const [alice, carol] = clients as [TestClient, TestClient];
    // The node restarted on this release: its first heartbeat rewrites its record. Its messages are
    // still read here with the old decoder, which cannot read a batch: that is how one shows up.
    await old.register({ bus: 2 });
    const before = old.unreadable;
    // The new node re-reads the registry on its heartbeat tick (a third of NODE_TTL_MS): bursts
    // until then, each paced by carol receiving it, go as single messages. The deadline only
    // bounds a failure.
    let next = 10_000;
    const deadline = Date.now() + 20_000;
    while (old.unreadable === before && Date.now() < deadline) {
      carol.received.length = 0;
      const steps = burst(next, 50, 'mv-olduser', 'mv-carol');
      next += 50;
      for (const s of steps) alice.send(s.type, s.payload);
      await waitUntil(() => clientLabels(carol).length >= 50, 'carol has the burst', 10_000);
      expect(clientLabels(carol)).toEqual(want(steps, 'mv-carol'));
    }
    expect(old.unreadable).toBeGreaterThan(before);
  }, 60_000);
});
