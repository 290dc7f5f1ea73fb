import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { joinWithMedia } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import {
  killBusiestWorker,
  pttRoomsWithMedia,
  relayChatter,
  serverCounts,
  silentDropOfSpeaker,
} from '../scenarios/faults.js';
import { tokenFor } from '../hardening/lib/proc.js';
import { reportFigures, round, summarize } from '../hardening/lib/stats.js';
import { TcpProxy } from '../hardening/lib/tcp-proxy.js';

/*
 * Faults, repeated and bigger than in test/hardening/faults.test.ts, with distributions:
 * client drops (with and without resume), a mediasoup worker killed again and again under load,
 * Redis unreachable for several seconds (a network partition, not a restart), and kill -9 of a
 * node under load.
 */

const isFloorFree = (m: ServerMessage) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null;

const counts = (srv: TestServer) => serverCounts(srv);

describe('client drops, 60 times', () => {
  let srv: TestServer;
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '1', RESUME_GRACE_MS: '1000', LOG_LEVEL: 'warn', RATE_LIMIT_BURST: '1000' },
      { channels: [{ id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 100 }] },
    );
  });
  afterAll(() => srv.close());

  it('40 drops resumed within the window and 20 for good: suspension, floor, resume and leave times; no leak', async () => {
    const base = await counts(srv);
    const peer = await TestClient.connect(srv.wsUrl, await tokenFor('peer'));
    expect((await peer.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
    const detect: number[] = [];
    const floorFree: number[] = [];
    const resume: number[] = [];
    const leave: number[] = [];
    const { sessions } = srv.server.internalsForTesting;
    for (let i = 0; i < 60; i++) {
      const forGood = i % 3 === 2;
      const c = new TestClient(srv.wsUrl, [], {
        headers: { authorization: `Bearer ${await tokenFor(`v${i}`)}` },
      });
      await c.opened;
      const w = (await c.next('welcome')).payload;
      await joinWithMedia(c, 'radio', { produce: true, consumeFloor: true });
      expect((await c.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
      await peer.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === `v${i}`);
      const t0 = performance.now();
      c.ws.terminate();
      await waitUntil(() => sessions.get(w.sessionId)?.suspended === true, 'suspended', 2_000, 1);
      detect.push(performance.now() - t0);
      await peer.waitFor(isFloorFree, 2_000);
      floorFree.push(performance.now() - t0);
      if (forGood) {
        await peer.waitFor(
          (m) => m.type === 'room:participant-left' && m.payload.participant.userId === `v${i}`,
          3_000,
        );
        leave.push(performance.now() - t0);
      } else {
        const again = await TestClient.connect(srv.wsUrl, await tokenFor(`v${i}`));
        const r = await again.request('session:resume', { resumeToken: w.resumeToken });
        expect(r.type).toBe('session:resumed');
        resume.push(performance.now() - t0);
        await again.close(1000);
        await peer.waitFor(
          (m) => m.type === 'room:participant-left' && m.payload.participant.userId === `v${i}`,
          2_000,
        );
      }
    }
    await peer.close(1000);
    await waitUntil(async () => (await counts(srv)).sessions === 0, 'all sessions end', 3_000);
    const after = await counts(srv);
    reportFigures('fault-client-drops-60', {
      graceMs: 1_000,
      detectMs: summarize(detect),
      floorFreeMs: summarize(floorFree),
      serviceBackByResumeMs: summarize(resume),
      leaveAfterMs: summarize(leave),
      baseline: base,
      after,
    });
    expect(after).toEqual(base);
    // Moved here from test/hardening/faults.test.ts: a dropped socket is noticed at once, and the
    // leave comes right after the grace window.
    expect(Math.max(...detect)).toBeLessThan(500);
    expect(Math.min(...leave)).toBeGreaterThanOrEqual(1_000 - 50);
    expect(Math.max(...leave)).toBeLessThan(1_000 + 1_000);
  });
});

describe('silent drops (no FIN, no RST), 10 times', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(
      {
        RESUME_GRACE_MS: '1500',
        HEARTBEAT_INTERVAL_MS: '200',
        HEARTBEAT_TIMEOUT_MS: '600',
        LOG_LEVEL: 'warn',
        RATE_LIMIT_BURST: '1000',
      },
      { channels: [{ id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 100 }] },
    );
  });
  afterAll(() => srv.close());

  it('the heartbeat notices each within timeout + interval (+ slack); each resumes', async () => {
    const detect: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await silentDropOfSpeaker(srv, 'radio', { peer: `sp${i}`, victim: `sv${i}` }, 5_000);
      expect(r.resumed.type).toBe('session:resumed');
      expect(r.peerHeardLeave).toBe(false);
      detect.push(r.detectMs);
    }
    reportFigures('fault-client-drop-silent-x10', { detectMs: summarize(detect) });
    // Moved here from test/hardening/faults.test.ts.
    expect(Math.max(...detect)).toBeLessThan(600 + 200 + 300);
  });
});

describe('a mediasoup worker killed, 3 times, under load', () => {
  const ROOMS = Array.from({ length: 8 }, (_, i) => `w${i}`);
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '2', RATE_LIMIT_BURST: '5000', LOG_LEVEL: 'warn' },
      { channels: ROOMS.map((id) => ({ id, name: id, mode: 'ptt', maxParticipants: 50 })) },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  it('each kill: members told, speakers revoked, replacement up, media re-established; nothing leaks', async () => {
    const { media } = srv.server.internalsForTesting;
    const base = await counts(srv);
    const members = await pttRoomsWithMedia(srv, ROOMS, 8, clients);
    const chatter = relayChatter(members, 4, 50);
    const kills = [];
    try {
      for (let round_ = 0; round_ < 3; round_++) {
        const t0 = performance.now();
        const { affected, toldMs, replacementMs: replacedMs } = await killBusiestWorker(srv, members);
        // Every member of every affected room sets media up again; one takes the floor.
        await Promise.all(
          affected.flatMap((r) =>
            members.get(r)!.map((c) => joinWithMedia(c, r, { produce: true, consumeFloor: true })),
          ),
        );
        for (const r of affected)
          expect((await members.get(r)![0].request('ptt:start', { roomId: r })).type).toBe('ptt:granted');
        const restoredMs = performance.now() - t0;
        kills.push({
          affectedRooms: affected.length,
          toldMs: round(toldMs),
          replacementMs: round(replacedMs, 0),
          allMediaBackMs: round(restoredMs, 0),
        });
      }
    } finally {
      chatter.stop();
    }
    for (const c of clients) expect(c.ws.readyState).toBe(c.ws.OPEN);
    const loaded = await counts(srv);
    await Promise.all(clients.map((c) => c.close(1000)));
    await waitUntil(async () => (await counts(srv)).sessions === 0, 'sessions end', 5_000);
    await waitUntil(() => media.stats().transports === 0, 'transports close', 5_000);
    const after = await counts(srv);
    reportFigures('fault-worker-kill-x3', {
      rooms: ROOMS.length,
      membersPerRoom: 8,
      relays: chatter.relays(),
      kills,
      loaded,
      baseline: base,
      after,
    });
    expect(after).toEqual(base);
  });
});

describe('Redis unreachable for several seconds (a partition, not a restart)', () => {
  let redis: TestRedis;
  let proxy: TcpProxy;
  const nodes: NodeProcess[] = [];
  const clients: TestClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    proxy = await TcpProxy.start(redis.port);
    const env = (id: string) => ({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      NODE_ID: id,
      NODE_TTL_MS: '1000',
      RESUME_GRACE_MS: '1500',
      PTT_LOCK_TTL_MS: '1500',
    });
    nodes.push(...(await Promise.all([startNodeProcess(env('p1')), startNodeProcess(env('p2'))])));
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await proxy?.close();
    await redis?.stop();
  });

  it('5 s partition from Redis: fail fast while cut off, then presence and floors are whole again, nobody is reaped', async () => {
    const [n1, n2] = nodes;
    const on = async (node: NodeProcess, sub: string) => {
      const c = await TestClient.connect(node.wsUrl, await tokenFor(sub));
      clients.push(c);
      expect((await c.request('room:join', { roomId: 'dispatch' })).type).toBe('room:state');
      return c;
    };
    const a = await on(n1, 'part-a');
    const b = await on(n2, 'part-b');
    const c = await on(n2, 'part-c');
    expect((await a.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');

    const t0 = performance.now();
    proxy.partition();
    const refused = await b.request('ptt:start', { roomId: 'dispatch' }, 4_000);
    const refusedMs = performance.now() - t0;
    const revoked = await a.next('ptt:revoked', 5_000).catch(() => null);
    const revokedMs = performance.now() - t0;
    const statuses = () =>
      Promise.all(
        nodes.map(
          async (n) => ((await (await fetch(`${n.httpUrl}/health`)).json()) as { status: string }).status,
        ),
      );
    await waitUntil(
      async () => (await statuses()).every((s) => s === 'degraded'),
      '/health says degraded',
      3_000,
      50,
    ).catch(() => undefined);
    const health = await statuses();
    const degradedMs = performance.now() - t0;
    const pong = await a.request('ping', {}, 2_000);
    await sleep(Math.max(0, 5_000 - (performance.now() - t0)));
    proxy.heal();
    const t1 = performance.now();
    // Service back: a floor can be taken again.
    await waitUntil(
      async () => (await b.request('ptt:start', { roomId: 'dispatch' }, 2_000)).type === 'ptt:granted',
      'a floor is granted again',
      10_000,
      200,
    );
    const floorBackMs = performance.now() - t1;
    await waitUntil(async () => (await statuses()).every((s) => s === 'ok'), '/health ok again', 5_000, 50);
    const healthyMs = performance.now() - t1;
    expect((await b.request('ptt:stop', { roomId: 'dispatch' })).type).toBe('ptt:stopped');
    // Wait out the reapers (resume grace + lock TTL + slack), then ask each node who is in the room.
    await sleep(1_500 + 1_500 + 1_500);
    const views: Record<string, string[]> = {};
    for (const [name, node] of [
      ['p1', n1],
      ['p2', n2],
    ] as const) {
      const probe = await TestClient.connect(node.wsUrl, await tokenFor(`probe-${name}`));
      const st = await probe.request('room:join', { roomId: 'dispatch' });
      views[name] =
        st.type === 'room:state'
          ? st.payload.participants
              .map((p) => p.userId)
              .filter((u) => !u.startsWith('probe'))
              .sort()
          : [];
      await probe.close(1000);
    }
    const leftSeen = [a, b, c]
      .flatMap((x) => x.received)
      .flatMap((m) => (m.type === 'room:participant-left' ? [m.payload.participant.userId] : []))
      .filter((u) => !u.startsWith('probe'));
    const reaps = nodes.flatMap((n) =>
      n
        .logs()
        .filter((l) => l.msg === 'node is dead; cleaning up after it' || l.msg === 'dead node cleaned up'),
    );
    reportFigures('fault-redis-partition', {
      partitionMs: 5_000,
      duringPartition: {
        pttStartReply: refused.type === 'error' ? refused.payload.code : refused.type,
        pttStartReplyMs: round(refusedMs, 0),
        speakerRevoked: revoked?.type === 'ptt:revoked' ? revoked.payload.reason : null,
        speakerRevokedMs: round(revokedMs, 0),
        health,
        healthDegradedAfterMs: round(degradedMs, 0),
        localPing: pong.type,
      },
      healthOkAfterHealMs: round(healthyMs, 0),
      floorGrantedAgainAfterHealMs: round(floorBackMs, 0),
      membersSeenByEachNodeAfter: views,
      participantLeftSeenByClients: leftSeen,
      reaperLogLines: reaps.map((l) => JSON.stringify(l)),
    });
    expect(refused).toMatchObject({ type: 'error', payload: { code: 'SERVICE_UNAVAILABLE' } });
    expect(revoked).toMatchObject({ payload: { reason: 'lock-lost' } });
    expect(health).toEqual(['degraded', 'degraded']);
    expect(views.p1).toEqual(['part-a', 'part-b', 'part-c']);
    expect(views.p2).toEqual(['part-a', 'part-b', 'part-c']);
    expect(leftSeen).toEqual([]);
    for (const n of nodes) expect(n.child.exitCode).toBeNull();
  });
});

describe('kill -9 of a node under load', () => {
  let redis: TestRedis;
  const nodes: NodeProcess[] = [];
  const clients: TestClient[] = [];
  const GRACE = 2_000;
  beforeAll(async () => {
    redis = await startRedis();
    const env = (id: string) => ({
      REDIS_URL: redis.url,
      NODE_ID: id,
      NODE_TTL_MS: '1000',
      RESUME_GRACE_MS: String(GRACE),
      PTT_LOCK_TTL_MS: '1500',
      RATE_LIMIT_BURST: '2000',
      CALL_POLICY: 'any', // the load calls users who share no room
    });
    nodes.push(...(await Promise.all([startNodeProcess(env('doomed')), startNodeProcess(env('survivor'))])));
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it('12 users per node in 2 rooms, calls and relays running: half of the dead node’s users resume on the survivor, the rest leave; no ghost', async () => {
    const [doomed, survivor] = nodes;
    const ROOMS = ['dispatch', 'field-ops'];
    const connect = async (node: NodeProcess, sub: string) => {
      const c = new TestClient(node.wsUrl, [], {
        headers: { authorization: `Bearer ${await tokenFor(sub)}` },
      });
      clients.push(c);
      await c.opened;
      const w = (await c.next('welcome')).payload;
      const roomId = ROOMS[Number(sub.split('-')[1]) % 2];
      expect((await c.request('room:join', { roomId })).type).toBe('room:state');
      return { c, w, sub, roomId };
    };
    const onDoomed = await Promise.all(Array.from({ length: 12 }, (_, i) => connect(doomed, `d-${i}`)));
    const onSurvivor = await Promise.all(Array.from({ length: 12 }, (_, i) => connect(survivor, `s-${i}`)));
    expect((await onDoomed[0].c.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    // Load: cross-node calls and in-room relays, 100 per second.
    let sent = 0;
    const load = setInterval(() => {
      for (let i = 0; i < 5; i++) {
        const from = onSurvivor[i];
        from.c.send('call:offer', { recipientId: `d-${i}`, callId: `k${sent}`, sdp: 'v=0' });
        from.c.send('sdp:offer', { roomId: from.roomId, to: `s-${(i + 2) % 12}`, sdp: 'v=0' });
        sent += 2;
      }
    }, 100);
    await sleep(500);
    const watcher = onSurvivor[0].c; // in dispatch
    watcher.received.length = 0;
    const t0 = performance.now();
    await doomed.kill9();
    // Half of the dead node's users come back on the survivor and resume.
    const resumedAt: number[] = [];
    await Promise.all(
      onDoomed.slice(0, 6).map(async (d) => {
        d.c.ws.terminate();
        const again = new TestClient(survivor.wsUrl, [], {
          headers: { authorization: `Bearer ${await tokenFor(d.sub)}` },
        });
        clients.push(again);
        await again.opened;
        await again.next('welcome');
        const r = await again.request('session:resume', { resumeToken: d.w.resumeToken }, 5_000);
        expect(r.type).toBe('session:resumed');
        resumedAt.push(performance.now() - t0);
      }),
    );
    await watcher.waitFor(isFloorFree, 8_000);
    const floorFreeMs = performance.now() - t0;
    // The other half are gone for good: after detection + grace, leaves for them (and only them).
    await waitUntil(
      () => watcher.received.filter((m) => m.type === 'room:participant-left').length >= 3,
      'leaves for the unresumed users of dispatch',
      10_000,
      20,
    );
    const leavesMs = performance.now() - t0;
    await sleep(1_000);
    clearInterval(load);
    const left = watcher.received.flatMap((m) =>
      m.type === 'room:participant-left' ? [m.payload.participant.userId] : [],
    );
    const probe = await TestClient.connect(survivor.wsUrl, await tokenFor('probe'));
    const members: Record<string, string[]> = {};
    for (const roomId of ROOMS) {
      const st = await probe.request('room:join', { roomId });
      members[roomId] =
        st.type === 'room:state'
          ? st.payload.participants
              .map((p) => p.userId)
              .filter((u) => u !== 'probe')
              .sort()
          : [];
    }
    const expected = (roomId: string) =>
      [...onSurvivor, ...onDoomed.slice(0, 6)]
        .filter((x) => x.roomId === roomId)
        .map((x) => x.sub)
        .sort();
    reportFigures('fault-node-kill9-under-load', {
      usersPerNode: 12,
      loadMessages: sent,
      resumedOnSurvivorAfterMs: summarize(resumedAt),
      floorFreeAfterMs: round(floorFreeMs, 0),
      leavesForUnresumedAfterMs: round(leavesMs, 0),
      leavesSeenInDispatch: left.sort(),
      membersAfter: members,
    });
    expect(left.sort()).toEqual(['d-10', 'd-6', 'd-8']);
    for (const roomId of ROOMS) expect(members[roomId], roomId).toEqual(expected(roomId));
    expect(survivor.child.exitCode).toBeNull();
  });
});
