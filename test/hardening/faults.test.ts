import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { joinWithMedia } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { Pinger } from './lib/pinger.js';
import { reportFigures, round, summarize } from './lib/stats.js';
import { TcpProxy } from './lib/tcp-proxy.js';

/*
 * Faults, measured: what clients observe, how long until service is back, and that every count
 * (connections, sessions, rooms, calls, SFU objects, worker consumer budgets, speaker locks)
 * returns to its baseline. Node kill -9 and Redis restarts/outages: test/cluster/multi-node.test.ts.
 */

const GRACE_MS = 1_500;

async function snapshot(srv: TestServer, ptt: string[] = []) {
  const { gateway, sessions, rooms, relay, media, pool, store } = srv.server.internalsForTesting;
  const m = media.stats();
  const speakers = await Promise.all(ptt.map((r) => store.currentSpeaker(r)));
  return {
    connections: gateway.connectionCount,
    sessions: sessions.size,
    rooms: await rooms.roomCount(),
    calls: relay.calls.size,
    mediaRooms: m.rooms,
    transports: m.transports,
    producers: m.producers,
    consumers: m.consumers,
    workerConsumers: pool.workers().reduce((s, w) => s + w.consumers, 0),
    speakers: speakers.filter(Boolean).length,
  };
}

async function connectWithWelcome(url: string, token: string) {
  const c = new TestClient(url, [], { headers: { authorization: `Bearer ${token}` } });
  await c.opened;
  return { c, welcome: (await c.next('welcome')).payload };
}

const isFloorFree = (m: ServerMessage) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null;

describe('a client dropped at the network level', () => {
  let srv: TestServer;
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      {
        MEDIASOUP_WORKERS: '1',
        RESUME_GRACE_MS: String(GRACE_MS),
        HEARTBEAT_INTERVAL_MS: '200',
        HEARTBEAT_TIMEOUT_MS: '600',
        LOG_LEVEL: 'info',
      },
      { channels: [{ id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 20 }] },
    );
  });
  afterAll(() => srv.close());

  it('socket destroyed without a close frame: suspended at once, floor freed, resumable within the grace window, then a leave; nothing leaks', async () => {
    const base = await snapshot(srv, ['radio']);
    const peer = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'peer' }));
    expect((await peer.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
    const { c: v, welcome } = await connectWithWelcome(srv.wsUrl, await srv.token({ sub: 'victim' }));
    await joinWithMedia(v, 'radio', { produce: true, consumeFloor: true });
    expect((await v.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
    v.send('call:offer', { recipientId: 'peer', callId: 'k', sdp: 'v=0' });
    await peer.next('call:offer');
    peer.send('call:accept', { recipientId: 'victim', callId: 'k' });
    await v.next('call:accept');
    await peer.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'victim');
    const loaded = await snapshot(srv, ['radio']);
    const { sessions } = srv.server.internalsForTesting;

    // Drop 1: the TCP connection ends with no WebSocket close frame (1006 on the server).
    let t0 = performance.now();
    v.ws.terminate();
    await waitUntil(() => sessions.get(welcome.sessionId)?.suspended === true, 'suspended', 2_000, 2);
    const detectMs = performance.now() - t0;
    await peer.waitFor(isFloorFree, 2_000);
    const floorFreeMs = performance.now() - t0;
    // Within the window: resume on a new connection, same session, same room, floor available again.
    const { c: v2 } = await connectWithWelcome(srv.wsUrl, await srv.token({ sub: 'victim' }));
    const t1 = performance.now();
    const resumed = await v2.request('session:resume', { resumeToken: welcome.resumeToken });
    const resumeMs = performance.now() - t1;
    const serviceBackMs = performance.now() - t0;
    expect(resumed).toMatchObject({
      type: 'session:resumed',
      payload: { sessionId: welcome.sessionId, rooms: ['radio'] },
    });
    expect((await v2.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
    expect(peer.received.filter((m) => m.type === 'room:participant-left')).toEqual([]);

    // Drop 2, no resume: after the grace window the room hears the leave and the call peer a hang-up.
    t0 = performance.now();
    v2.ws.terminate();
    const left = await peer.waitFor((m) => m.type === 'room:participant-left', GRACE_MS + 2_000);
    const leaveMs = performance.now() - t0;
    expect(left).toMatchObject({ payload: { reason: 'disconnected', participant: { userId: 'victim' } } });
    const hangup = await peer.waitFor((m) => m.type === 'call:hangup', 1_000);
    expect(hangup).toMatchObject({ payload: { callId: 'k', senderId: 'victim', reason: 'disconnected' } });
    const hangupMs = performance.now() - t0;
    const withPeerOnly = await snapshot(srv, ['radio']);
    await peer.close(1000);
    await waitUntil(async () => (await snapshot(srv)).sessions === 0, 'the peer is gone');
    const after = await snapshot(srv, ['radio']);
    reportFigures('fault-client-drop-fin', {
      graceMs: GRACE_MS,
      detectMs: round(detectMs),
      floorFreeMs: round(floorFreeMs),
      resumeRttMs: round(resumeMs),
      serviceBackMs: round(serviceBackMs),
      leaveAfterMs: round(leaveMs, 0),
      hangupAfterMs: round(hangupMs, 0),
      baseline: base,
      loaded,
      afterLeaveWithPeerOnly: withPeerOnly,
      after,
    });
    expect(detectMs).toBeLessThan(500);
    expect(leaveMs).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(leaveMs).toBeLessThan(GRACE_MS + 1_000);
    expect(withPeerOnly).toMatchObject({
      sessions: 1,
      rooms: 1,
      calls: 0,
      transports: 0,
      producers: 0,
      consumers: 0,
      speakers: 0,
    });
    expect(after).toEqual(base);
  });

  it('silent drop (no FIN, no RST): the heartbeat notices, the floor frees, and the session can still be resumed', async () => {
    const base = await snapshot(srv, ['radio']);
    const proxy = await TcpProxy.start(srv.port);
    try {
      const peer = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'peer2' }));
      expect((await peer.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
      const { c: v, welcome } = await connectWithWelcome(
        `ws://127.0.0.1:${proxy.port}/ws`,
        await srv.token({ sub: 'victim2' }),
      );
      expect((await v.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
      expect((await v.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
      const { sessions } = srv.server.internalsForTesting;

      const t0 = performance.now();
      proxy.blackhole();
      await waitUntil(
        () => sessions.get(welcome.sessionId)?.suspended === true,
        'suspended by the heartbeat',
        3_000,
        5,
      );
      const detectMs = performance.now() - t0;
      await peer.waitFor(isFloorFree, 1_000);
      const floorFreeMs = performance.now() - t0;
      // The client saw nothing at all: its socket is still "open".
      const clientStillOpen = v.ws.readyState === v.ws.OPEN;
      const { c: v2 } = await connectWithWelcome(srv.wsUrl, await srv.token({ sub: 'victim2' }));
      const resumed = await v2.request('session:resume', { resumeToken: welcome.resumeToken });
      const serviceBackMs = performance.now() - t0;
      expect(resumed.type).toBe('session:resumed');
      expect(peer.received.filter((m) => m.type === 'room:participant-left')).toEqual([]);
      reportFigures('fault-client-drop-silent', {
        heartbeatIntervalMs: 200,
        heartbeatTimeoutMs: 600,
        detectMs: round(detectMs, 0),
        floorFreeMs: round(floorFreeMs, 0),
        serviceBackMs: round(serviceBackMs, 0),
        clientStillOpen,
      });
      expect(clientStillOpen).toBe(true);
      expect(detectMs).toBeLessThan(600 + 200 + 300);
      v.ws.terminate();
      await v2.close(1000);
      await peer.close(1000);
    } finally {
      await proxy.close();
    }
    await waitUntil(async () => (await snapshot(srv)).sessions === 0, 'everyone is gone', 3_000);
    expect(await snapshot(srv, ['radio'])).toEqual(base);
  });
});

describe('a mediasoup worker killed under load', () => {
  const ROOMS = ['r0', 'r1', 'r2', 'r3'];
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '2', RATE_LIMIT_BURST: '2000', LOG_LEVEL: 'info' },
      { channels: ROOMS.map((id) => ({ id, name: id, mode: 'ptt', maxParticipants: 50 })) },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  it('rooms on it are closed and told, speakers revoked, a replacement starts, media comes back; signaling never stops; nothing leaks', async () => {
    const { pool, media } = srv.server.internalsForTesting;
    const base = await snapshot(srv, ROOMS);
    const pinger = await Pinger.start(srv.wsUrl, await srv.token({ sub: 'calm' }), 'r0', 10);
    // 4 rooms × 4 members with media; one speaker per room holds the floor.
    const members = new Map<string, TestClient[]>();
    for (const roomId of ROOMS) {
      const list: TestClient[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: `${roomId}-m${i}` }));
        clients.push(c);
        await joinWithMedia(c, roomId, { produce: true, consumeFloor: true });
        list.push(c);
      }
      expect((await list[0].request('ptt:start', { roomId })).type).toBe('ptt:granted');
      members.set(roomId, list);
    }
    // Signaling load throughout: in-room relays, 200 per second.
    let relays = 0;
    const chatter = setInterval(() => {
      for (const roomId of ROOMS) {
        const [a] = members.get(roomId)!;
        for (let k = 0; k < 5; k++) {
          a.send('ice:candidate', { roomId, to: `${roomId}-m1`, candidate: null });
          relays++;
        }
      }
    }, 100);
    const loaded = await snapshot(srv, ROOMS);

    // Kill the worker that hosts the most rooms.
    const routersOf = new Map<number, number>();
    for (const w of pool.workers()) routersOf.set(w.pid, (await w.worker.dump()).routerIds.length);
    const victim = pool.workers().sort((a, b) => routersOf.get(b.pid)! - routersOf.get(a.pid)!)[0];
    pinger.mark();
    const t0 = performance.now();
    process.kill(victim.pid, 'SIGKILL');

    // What members observe: media:closed (rooms on that worker), ptt:revoked for their speaker.
    const closedAt = new Map<string, number>();
    const revokedAt = new Map<string, number>();
    await waitUntil(
      () => {
        for (const [roomId, list] of members) {
          if (!closedAt.has(roomId) && list.every((c) => c.received.some((m) => m.type === 'media:closed')))
            closedAt.set(roomId, performance.now() - t0);
          if (!revokedAt.has(roomId) && list[0].received.some((m) => m.type === 'ptt:revoked'))
            revokedAt.set(roomId, performance.now() - t0);
        }
        return closedAt.size >= 1 && [...closedAt.keys()].every((r) => revokedAt.has(r));
      },
      'members of the dead worker’s rooms are told',
      5_000,
      5,
    );
    await sleep(300); // let any other notices arrive
    const affected = [...members.keys()].filter((r) =>
      members.get(r)!.some((c) => c.received.some((m) => m.type === 'media:closed')),
    );
    await waitUntil(
      () => pool.size === 2 && !pool.workers().some((w) => w.pid === victim.pid),
      'a replacement worker',
      5_000,
      10,
    );
    const replacementMs = performance.now() - t0;
    // Service back: an affected member sets media up again and takes the floor.
    const again = members.get(affected[0])!;
    await joinWithMedia(again[1], affected[0], { produce: true, consumeFloor: true });
    expect((await again[1].request('ptt:start', { roomId: affected[0] })).type).toBe('ptt:granted');
    const serviceBackMs = performance.now() - t0;
    clearInterval(chatter);
    const duringKill = pinger.window();
    await pinger.stop();

    // Unaffected rooms kept their media and their speaker.
    const unaffected = ROOMS.filter((r) => !affected.includes(r));
    for (const r of unaffected) {
      for (const c of members.get(r)!)
        expect(c.received.find((m) => m.type === 'media:closed')).toBeUndefined();
      expect((await srv.server.internalsForTesting.store.currentSpeaker(r))?.userId).toBe(`${r}-m0`);
    }
    // No signaling connection was lost.
    for (const c of clients) expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(pinger.errors).toEqual([]);

    // Everybody leaves: back to the baseline (worker consumer budgets included).
    await Promise.all(clients.map((c) => c.close(1000)));
    await waitUntil(async () => (await snapshot(srv)).sessions === 0, 'sessions end', 3_000);
    await waitUntil(() => media.stats().transports === 0, 'transports close', 3_000);
    const after = await snapshot(srv, ROOMS);
    reportFigures('fault-worker-kill', {
      rooms: ROOMS.length,
      membersPerRoom: 4,
      affectedRooms: affected.length,
      mediaClosedAfterMs: Object.fromEntries([...closedAt].map(([k, v]) => [k, round(v)])),
      speakerRevokedAfterMs: Object.fromEntries([...revokedAt].map(([k, v]) => [k, round(v)])),
      replacementWorkerAfterMs: round(replacementMs, 0),
      serviceBackAfterMs: round(serviceBackMs, 0),
      relaysDuringTest: relays,
      calmRttDuringKillMs: summarize(duringKill),
      baseline: base,
      loaded,
      after,
    });
    expect(affected.length).toBeGreaterThanOrEqual(1);
    expect(unaffected.length + affected.length).toBe(ROOMS.length);
    expect(after).toEqual(base);
  });
});
