/**
 * The reference deployment, for real: HAProxy (Debian's) running deploy/haproxy.cfg, templated to
 * this test's ports, in front of two Parley node processes and one redis-server, all inside the
 * loopback-only network namespace. Clients are the SDK's SignalingClient and reach the nodes only
 * through the balancer.
 *
 * Asserted: behaviour and order (sessions kept, rooms kept, nobody seen leaving, no relayed message
 * lost or reordered, floors coherent). Measured and printed, never asserted: time-to-recover and the
 * balancer's reaction time (docs/reliability.md, "Behind a load balancer").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignalingClient, type ReconnectedInfo } from '../../src/client/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { startHaproxy, type TestHaproxy } from '../helpers/haproxy.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { probeFreePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebSocket } from 'ws';

const issuer = new TokenIssuer({ secret: TEST_SECRET });
const RESUME_GRACE_MS = 10_000;
/** Relayed messages each client sends to the next one, at most (the stream stops earlier when told). */
const STREAM_MAX = 3_000;
const STREAM_EVERY_MS = 40;
/**
 * Clients connect from this loopback address (HAProxy's own connections to the nodes come from
 * 127.0.0.1) and send a made-up X-Forwarded-For: a node that logs this address took the hop HAProxy
 * appended (`option forwardfor` + TRUST_PROXY=true), not its socket's address nor the client's claim.
 */
const CLIENT_ADDRESS = '127.0.0.2';
const SPOOFED_ADDRESS = '203.0.113.66';
const clientSocket: ConstructorParameters<typeof SignalingClient>[0]['webSocketFactory'] = (url, protocols) =>
  new WebSocket(url, protocols, {
    localAddress: CLIENT_ADDRESS,
    headers: { 'x-forwarded-for': SPOOFED_ADDRESS },
  });
/**
 * A restarted node compiles the server (tsx) again, slowly on a busy machine; the tests' own timeouts
 * leave room for two restarts (rolling) or one (crash) on top of what they did before.
 */
const NODE_START_TIMEOUT_MS = 45_000;

interface Member {
  name: string;
  client: SignalingClient;
  /** The node process that terminated its WebSocket when last checked. */
  sessionId: string;
  left: string[];
  shutdowns: { resume: boolean; at: number }[];
  /** When the socket dropped (`reconnecting`, first attempt) and when the session was back. */
  outages: { droppedAt: number; backAt: number | null; info: ReconnectedInfo | null }[];
  /** Stream messages received, by sender: their sequence numbers in arrival order. */
  received: Map<string, number[]>;
  /** Arrival delay of each stream message (ms since it was handed to send()). */
  delays: number[];
  speakerEvents: { roomId: string; speaker: string | null }[];
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const round = (x: number) => Math.round(x);

function figures(name: string, data: Record<string, unknown>): void {
  const line = JSON.stringify({ test: name, ...data });
  console.log(`[figures] ${line}`);
  const dir = join(process.env.TMPDIR ?? tmpdir(), 'parley-figures');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${line}\n`);
}

describe('behind HAProxy (deploy/haproxy.cfg): rolling restart and crash', () => {
  let redis: TestRedis;
  let haproxy: TestHaproxy;
  const ports = { parley1: 0, parley2: 0 };
  const nodes: Record<'parley1' | 'parley2', NodeProcess | null> = { parley1: null, parley2: null };
  let incarnation = 0;
  const allNodes: NodeProcess[] = [];
  const members: Member[] = [];
  /** sent[sender] = send time of each sequence number */
  const sent = new Map<string, number[]>();
  let streaming = false;
  const sendFailures: string[] = [];

  const startNode = async (name: 'parley1' | 'parley2') => {
    incarnation++;
    nodes[name] = await startNodeProcess(
      {
        PORT: String(ports[name]),
        NODE_ID: `${name}-${incarnation}`,
        REDIS_URL: redis.url,
        TRUST_PROXY: 'true',
        NODE_TTL_MS: '1000',
        RESUME_GRACE_MS: String(RESUME_GRACE_MS),
        PTT_LOCK_TTL_MS: '1500',
        SHUTDOWN_TIMEOUT_MS: '8000',
        SHUTDOWN_RECONNECT_HINT_MS: '200',
        LOG_LEVEL: process.env.DUMP ? 'debug' : 'info',
        RATE_LIMIT_BURST: '1000',
      },
      NODE_START_TIMEOUT_MS,
    );
    allNodes.push(nodes[name]);
    return nodes[name];
  };

  /** Which node terminates this session now (from the nodes' connection logs). */
  const nodeOf = (m: Member): 'parley1' | 'parley2' | null => {
    for (const name of ['parley1', 'parley2'] as const) {
      const n = nodes[name];
      if (!n || n.child.exitCode !== null || n.child.signalCode !== null) continue;
      const logs = n.logs();
      // The SDK authenticates in-band, so a connection's user is known from its session: opened
      // for this user here, or resumed here after a move (m.sessionId stays the same).
      const mine = logs.filter(
        (l) =>
          (l.msg === 'session opened' && l.userId === m.name) ||
          (l.msg === 'session resumed' && m.sessionId !== '' && l.session === m.sessionId),
      ) as { conn: string }[];
      const closed = new Set(logs.filter((l) => l.msg === 'connection closed').map((l) => l.conn));
      if (mine.some((o) => !closed.has(o.conn))) return name;
    }
    return null;
  };

  /**
   * The node a member's session is on, once that node's log (written asynchronously) says so: right
   * after a connect or a resume the line may still be on its way.
   */
  const placedOn = async (m: Member): Promise<'parley1' | 'parley2'> => {
    await waitUntil(() => nodeOf(m) !== null, `${m.name}'s session to show in a node's log`, 10_000);
    return nodeOf(m)!;
  };
  const placementOf = async (ms: Member[]) => {
    const where = await Promise.all(ms.map(placedOn));
    return (name: 'parley1' | 'parley2') => ms.filter((_, i) => where[i] === name);
  };

  const join = async (name: string): Promise<Member> => {
    const client = new SignalingClient({
      url: haproxy.httpUrl,
      token: () => issuer.issue({ sub: name, name: name.toUpperCase() }),
      webSocketFactory: clientSocket,
      // The default reconnect policy: what a real user gets.
    });
    const m: Member = {
      name,
      client,
      sessionId: '',
      left: [],
      shutdowns: [],
      outages: [],
      received: new Map(),
      delays: [],
      speakerEvents: [],
    };
    client.on('room:participant-left', (p) => m.left.push(`${p.roomId}:${p.participant.userId}`));
    client.on('server:shutdown', (p) => m.shutdowns.push({ resume: p.resume, at: performance.now() }));
    client.on('reconnecting', ({ attempt }) => {
      if (attempt === 1) m.outages.push({ droppedAt: performance.now(), backAt: null, info: null });
    });
    client.on('reconnected', (info) => {
      const o = m.outages.at(-1);
      if (o) Object.assign(o, { backAt: performance.now(), info });
    });
    client.on('ptt:speaker-changed', (p) =>
      m.speakerEvents.push({ roomId: p.roomId, speaker: p.speaker?.userId ?? null }),
    );
    client.on('ice:candidate', (p) => {
      const [, seqText] = /^candidate:(\d+) /.exec(p.candidate?.candidate ?? '') ?? [];
      if (seqText === undefined) return;
      const seq = Number(seqText);
      const list = m.received.get(p.senderId) ?? [];
      list.push(seq);
      m.received.set(p.senderId, list);
      const at = sent.get(p.senderId)?.[seq];
      if (at !== undefined) m.delays.push(performance.now() - at);
    });
    const welcome = await client.connect();
    m.sessionId = welcome.sessionId;
    await client.joinRoom('lobby');
    await client.joinRoom('dispatch');
    await client.joinRoom('field-ops');
    members.push(m);
    return m;
  };

  /** Each member streams in-room relays to the next one until stopped (bounded by STREAM_MAX). */
  const startStream = (ring: Member[]) => {
    streaming = true;
    for (const [i, m] of ring.entries()) {
      const to = ring[(i + 1) % ring.length];
      const times: number[] = [];
      sent.set(m.name, times);
      void (async () => {
        for (let seq = 0; seq < STREAM_MAX && streaming; seq++) {
          times.push(performance.now());
          const ok = m.client.send('ice:candidate', {
            roomId: 'lobby',
            to: to.name,
            candidate: { candidate: `candidate:${seq} 1 udp 1 127.0.0.1 9 typ host`, sdpMid: '0' },
          });
          if (!ok) sendFailures.push(`${m.name}#${seq}`);
          await sleep(STREAM_EVERY_MS); // pacing the load generator
        }
      })();
    }
  };
  const stopStream = async (ring: Member[]) => {
    streaming = false;
    // Everything sent has arrived once each receiver has the sender's last sequence number.
    await waitUntil(
      () =>
        ring.every((m, i) => {
          const to = ring[(i + 1) % ring.length];
          const last = (sent.get(m.name)?.length ?? 0) - 1;
          return (to.received.get(m.name) ?? []).includes(last);
        }),
      'every stream message to arrive',
      10_000,
    );
  };

  beforeAll(async () => {
    redis = await startRedis();
    ports.parley1 = await probeFreePort();
    ports.parley2 = await probeFreePort();
    await Promise.all([startNode('parley1'), startNode('parley2')]);
    haproxy = await startHaproxy(ports);
  }, 2 * NODE_START_TIMEOUT_MS);

  afterAll(async () => {
    if (process.env.DUMP)
      for (const n of allNodes)
        console.log(
          n
            .logs()
            .map((l) => JSON.stringify(l))
            .join('\n'),
        );
    streaming = false;
    for (const m of members) m.client.close();
    await Promise.all([nodes.parley1?.stop(), nodes.parley2?.stop()]);
    await haproxy?.stop();
    await redis?.stop();
  });

  it('forwards the client address (TRUST_PROXY) and balances connections over both nodes', async () => {
    for (let i = 0; i < 8; i++) await join(`u${i}`);
    const on = await placementOf(members);
    expect(on('parley1').length).toBeGreaterThanOrEqual(2);
    expect(on('parley2').length).toBeGreaterThanOrEqual(2);
    // Every WebSocket reached its node from HAProxy (127.0.0.1), and each node logged the client's
    // own address: the hop HAProxy appended, not the X-Forwarded-For the client wrote.
    const remotes = [nodes.parley1!, nodes.parley2!]
      .flatMap((n) => n.logs())
      .filter((l) => l.msg === 'connection opened')
      .map((l) => l.remote);
    expect(remotes).toHaveLength(8);
    expect(new Set(remotes)).toEqual(new Set([CLIENT_ADDRESS]));
  });

  it('rolling restart: sessions move through the balancer, rooms kept, nobody leaves, no relay lost, floors coherent', async () => {
    const ring = members.slice(0, 8);
    const sessionIds = new Map(ring.map((m) => [m.name, m.sessionId]));
    startStream(ring);

    // Floors before the restart: dispatch held by someone on parley2 (it must survive parley1's
    // restart untouched), field-ops by someone on parley1 (it moves).
    const before = await placementOf(ring);
    const steady = before('parley2')[0];
    const mover = before('parley1')[0];
    expect((await steady.client.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    expect((await mover.client.request('ptt:start', { roomId: 'field-ops' })).type).toBe('ptt:granted');
    await waitUntil(
      () => ring.every((m) => m.speakerEvents.filter((e) => e.speaker !== null).length >= 2),
      'everyone to see both speakers',
    );
    for (const m of ring) m.speakerEvents.length = 0;

    const drainDetect: number[] = [];
    const phases: { node: string; movers: Member[] }[] = [];
    for (const name of ['parley1', 'parley2'] as const) {
      const node = nodes[name]!;
      const movers = (await placementOf(ring))(name);
      expect(movers.length).toBeGreaterThan(0);
      phases.push({ node: name, movers });
      for (const m of movers) m.outages.length = 0;
      const t0 = performance.now();
      await node.stop(); // SIGTERM: drain, hand the sessions over, exit
      expect(node.child.exitCode).toBe(0);
      drainDetect.push((await haproxy.waitForServer(name, 'DOWN', t0)) - t0);
      await waitUntil(() => movers.every((m) => m.outages.at(-1)?.backAt != null), 'movers back', 15_000);
      for (const m of movers) {
        expect(m.shutdowns.at(-1)).toMatchObject({ resume: true });
        expect(m.outages.at(-1)?.info).toMatchObject({
          resumed: true,
          missedFrames: false,
          rooms: ['lobby', 'dispatch', 'field-ops'],
        });
        expect(m.client.sessionId).toBe(sessionIds.get(m.name));
        expect(await placedOn(m)).toBe(name === 'parley1' ? 'parley2' : 'parley1');
      }
      // The node's own log: every session handed over, none left for the reaper.
      expect(
        node.logs().some((l) => l.msg === 'sessions not resumed elsewhere yet; the cluster reaps them'),
      ).toBe(false);
      if (name === 'parley1') {
        // The floor on the surviving node never changed hands; the mover's floor was released
        // when its node drained, and it can talk again from its new node.
        expect(ring.every((m) => !m.speakerEvents.some((e) => e.roomId === 'dispatch'))).toBe(true);
        await waitUntil(
          () =>
            ring.every((m) => m.speakerEvents.some((e) => e.roomId === 'field-ops' && e.speaker === null)),
          'everyone to see the moved speaker’s floor free',
        );
        expect((await mover.client.request('ptt:start', { roomId: 'field-ops' })).type).toBe('ptt:granted');
        const state = await ring
          .find((m) => m !== steady && m !== mover)!
          .client.request('ptt:start', {
            roomId: 'dispatch',
          });
        expect(state).toMatchObject({ type: 'ptt:denied', payload: { speaker: { userId: steady.name } } });
        await waitUntil(
          () =>
            ring.every((m) =>
              m.speakerEvents.some((e) => e.roomId === 'field-ops' && e.speaker === mover.name),
            ),
          'everyone to see the moved speaker talk again',
        );
        for (const m of ring) m.speakerEvents.length = 0;
      } else {
        // Both speakers were on parley2 now: both floors are announced free when it drains, and
        // both speakers get them back from parley1, where everyone else now sees them.
        await waitUntil(
          () =>
            ring.every((m) =>
              ['dispatch', 'field-ops'].every((roomId) =>
                m.speakerEvents.some((e) => e.roomId === roomId && e.speaker === null),
              ),
            ),
          'everyone to see both floors free',
        );
        expect((await steady.client.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
        expect((await mover.client.request('ptt:start', { roomId: 'field-ops' })).type).toBe('ptt:granted');
        const other = ring.find((m) => m !== steady && m !== mover)!;
        expect(await other.client.request('ptt:start', { roomId: 'field-ops' })).toMatchObject({
          type: 'ptt:denied',
          payload: { speaker: { userId: mover.name } },
        });
        await waitUntil(
          () =>
            ring.every(
              (m) =>
                m.speakerEvents.some((e) => e.roomId === 'dispatch' && e.speaker === steady.name) &&
                m.speakerEvents.some((e) => e.roomId === 'field-ops' && e.speaker === mover.name),
            ),
          'everyone to see both speakers talk again',
        );
        // Free the floors for the crash test.
        await steady.client.request('ptt:stop', { roomId: 'dispatch' });
        await mover.client.request('ptt:stop', { roomId: 'field-ops' });
      }
      const t1 = performance.now();
      await startNode(name);
      await haproxy.waitForServer(name, 'UP', t1);
    }
    await stopStream(ring);

    // Nobody saw anybody leave; every relayed message arrived exactly once, in order.
    for (const m of ring) expect(m.left).toEqual([]);
    expect(sendFailures).toEqual([]);
    for (const [i, m] of ring.entries()) {
      const to = ring[(i + 1) % ring.length];
      const got = to.received.get(m.name) ?? [];
      const n = sent.get(m.name)?.length ?? 0;
      expect(got).toEqual(Array.from({ length: n }, (_, k) => k));
    }

    const recover = phases.flatMap((p) =>
      p.movers.map((m) => m.outages.at(-1)!.backAt! - m.outages.at(-1)!.droppedAt),
    );
    const delays = ring.flatMap((m) => m.delays);
    figures('haproxy-rolling-restart', {
      clients: ring.length,
      moved: recover.length,
      timeToRecoverMs: { p50: round(pct(recover, 50)), max: round(pct(recover, 100)) },
      drainSeenByHaproxyMs: drainDetect.map(round),
      relays: {
        sent: delays.length,
        lost: 0,
        delayP50Ms: round(pct(delays, 50)),
        delayMaxMs: round(pct(delays, 100)),
      },
    });
  }, 180_000);

  it('crash (kill -9): clients resume on the survivor within the grace window and its floors are freed', async () => {
    // New clients land on the least loaded node; after the rolling restart that is parley2.
    const crashers: Member[] = [];
    for (let i = 0; i < 4; i++) crashers.push(await join(`c${i}`));
    const victimName = await placedOn(crashers[0]);
    const survivor = victimName === 'parley1' ? 'parley2' : 'parley1';
    const onVictim = (await placementOf(crashers))(victimName);
    expect(onVictim.length).toBeGreaterThan(0);
    const speaker = onVictim[0];
    expect((await speaker.client.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    const watchers = (await placementOf(members))(survivor);
    await waitUntil(
      () =>
        watchers.every((m) =>
          m.speakerEvents.some((e) => e.roomId === 'dispatch' && e.speaker === speaker.name),
        ),
      'everyone to see the speaker',
    );
    const sessionIds = new Map(onVictim.map((m) => [m.name, m.sessionId]));
    for (const m of [...members]) {
      m.outages.length = 0;
      m.speakerEvents.length = 0;
    }

    startStream(crashers);
    await waitUntil(() => crashers.every((m) => m.received.size > 0), 'the stream to flow');
    const t0 = performance.now();
    await nodes[victimName]!.kill9();
    await waitUntil(
      () => onVictim.every((m) => m.outages.at(-1)?.backAt != null),
      'crash victims back',
      15_000,
    );
    const downAt = await haproxy.waitForServer(victimName, 'DOWN', t0);
    for (const m of onVictim) {
      const o = m.outages.at(-1)!;
      // Resumed at all means within the grace window: past it the cluster reaps the dead node's
      // sessions and a resume is refused (how long it took is measured below, not asserted).
      expect(o.info?.resumed).toBe(true);
      expect(m.client.sessionId).toBe(sessionIds.get(m.name));
      expect(await placedOn(m)).toBe(survivor);
    }
    // The dead node's floor is free for everyone (announced once its holder resumed elsewhere), and
    // it can be taken again.
    await waitUntil(
      () => watchers.every((m) => m.speakerEvents.some((e) => e.roomId === 'dispatch' && e.speaker === null)),
      'the survivor’s members to see the crashed node’s floor free',
      10_000,
    );
    const freedAt = performance.now();
    expect((await speaker.client.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    for (const m of members) expect(m.left).toEqual([]);
    // Relays in flight when the node died may be lost (measured, not asserted); the stream works
    // again afterwards, in order, without duplicates.
    await stopStream(crashers);
    let sentTotal = 0;
    let lost = 0;
    for (const [i, m] of crashers.entries()) {
      const got = crashers[(i + 1) % crashers.length].received.get(m.name) ?? [];
      const n = sent.get(m.name)?.length ?? 0;
      sentTotal += n;
      lost += n - got.length;
      expect(got).toEqual([...got].sort((a, b) => a - b));
      expect(new Set(got).size).toBe(got.length);
    }

    const recover = onVictim.map((m) => m.outages.at(-1)!.backAt! - t0);
    figures('haproxy-crash', {
      clients: onVictim.length,
      timeToRecoverMs: { p50: round(pct(recover, 50)), max: round(pct(recover, 100)) },
      crashSeenByHaproxyMs: round(downAt - t0),
      floorFreeSeenByAllMs: round(freedAt - t0),
      relays: { sent: sentTotal, lost },
    });
    await startNode(victimName);
  }, 105_000);
});
