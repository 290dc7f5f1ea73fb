import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage, ServerMessageOf } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { expectReply, FAKE_DTLS, joinWithMedia, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Issue 13, High 2 and Medium 1: per-user and per-session quotas, against a real server with real
 * mediasoup workers (in the loopback netns). Each test plays the attack from the audit, checks
 * that the limit stops it with QUOTA_EXCEEDED (or the documented close), and that a legitimate
 * user beside the attacker is still served.
 */

const manifest = {
  allowAdHocRooms: true,
  adHocRoom: { mode: 'conference', maxParticipants: 50 },
  channels: [
    { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 500 },
    { id: 'small', name: 'Small', mode: 'ptt', maxParticipants: 3 },
    { id: 'conf-a', name: 'Conf A', mode: 'conference', maxParticipants: 50 },
    { id: 'conf-b', name: 'Conf B', mode: 'conference', maxParticipants: 50 },
    { id: 'conf-c', name: 'Conf C', mode: 'conference', maxParticipants: 50 },
    { id: 'conf-d', name: 'Conf D', mode: 'conference', maxParticipants: 50 },
  ],
};

/** A connection that kept its welcome (for the resume token). */
interface Opened {
  c: TestClient;
  welcome: ServerMessageOf<'welcome'>['payload'];
}

function errorOf(m: ServerMessage): { code: string; details?: Record<string, unknown> } {
  if (m.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(m)}`);
  return m.payload;
}

describe('quotas per user and per session', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];

  async function open(sub: string): Promise<Opened> {
    const token = await srv.token({ sub, name: sub.toUpperCase() });
    const c = new TestClient(srv.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    clients.push(c);
    await c.opened;
    const welcome = (await c.next('welcome')).payload;
    return { c, welcome };
  }

  /** Drops the socket the way a network failure would (1006), and waits until the session is suspended. */
  async function drop(o: Opened): Promise<void> {
    o.c.ws.terminate();
    const { sessions } = srv.server.internalsForTesting;
    await waitUntil(
      () => sessions.get(o.welcome.sessionId)?.suspended === true,
      'the session to be suspended',
    );
  }

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      {
        MEDIASOUP_WORKERS: '1',
        RESUME_GRACE_MS: '60000',
        MAX_SESSIONS_PER_USER: '3',
        MAX_ROOMS_PER_SESSION: '4',
        MAX_AD_HOC_ROOMS_PER_USER: '2',
        MAX_TRANSPORTS_PER_USER: '6',
        MAX_PRODUCERS_PER_USER: '2',
        MAX_CONSUMERS_PER_USER: '2',
        LOG_LEVEL: 'info',
      },
      manifest,
    );
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close(1000)));
    const { sessions } = srv.server.internalsForTesting;
    // Sessions left suspended by a test end now, so the next one starts from nothing.
    for (const s of [...sessions.all()]) await sessions.end(s, 'left');
  });
  afterAll(() => srv.close());

  it('sessions per user count suspended ones: the oldest suspended goes first; all live, a new one is closed 4429', async () => {
    const { sessions } = srv.server.internalsForTesting;
    const watcher = await open('watcher');
    expectReply(await watcher.c.request('room:join', { roomId: 'radio' }), 'room:state');
    const hog = [await open('hog'), await open('hog'), await open('hog')];
    for (const h of hog) expectReply(await h.c.request('room:join', { roomId: 'radio' }), 'room:state');
    // The audit's move: drop connections so that each session keeps its seat for the grace window.
    await drop(hog[0]);
    await drop(hog[1]);

    // A fourth session is admitted: the oldest suspended one (hog[0]) ends, and its room hears it leave.
    const fourth = await open('hog');
    const left = await watcher.c.waitFor(
      (m) =>
        m.type === 'room:participant-left' && m.payload.participant.sessionId === hog[0].welcome.sessionId,
    );
    expect(left.type === 'room:participant-left' && left.payload.reason).toBe('disconnected');
    expect(sessions.get(hog[0].welcome.sessionId)).toBeUndefined();
    expect(sessions.get(hog[1].welcome.sessionId)?.suspended).toBe(true);

    // The newer suspended one (hog[1]) can still be resumed once a place is free.
    await fourth.c.close(1000);
    await waitUntil(() => sessions.get(fourth.welcome.sessionId) === undefined, 'the closed session to end');
    const back = await open('hog');
    const resumed = await back.c.request('session:resume', { resumeToken: hog[1].welcome.resumeToken });
    expect(expectReply(resumed, 'session:resumed').payload.sessionId).toBe(hog[1].welcome.sessionId);
    // The evicted one cannot.
    const late = await open('hog');
    const refused = await late.c.request('session:resume', { resumeToken: hog[0].welcome.resumeToken });
    expect(errorOf(refused).code).toBe('RESUME_FAILED');

    // Now all three are live: one more is refused with QUOTA_EXCEEDED, then closed 4429.
    expect(sessions.sessionsOf('hog')?.size).toBe(3);
    const token = await srv.token({ sub: 'hog' });
    const over = new TestClient(srv.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    clients.push(over);
    const err = errorOf(await over.next('error'));
    expect(err).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'sessions', limit: 3 } });
    expect((await over.closed).code).toBe(4429);
    expect(over.received.some((m) => m.type === 'welcome')).toBe(false);
    expect(sessions.sessionsOf('hog')?.size).toBe(3);

    // Beside it, another user connects and joins, and the watcher is served as before.
    const carol = await open('carol');
    expectReply(await carol.c.request('room:join', { roomId: 'radio' }), 'room:state');
    expect((await watcher.c.request('ping')).type).toBe('pong');
    expect(srv.logText()).not.toContain('handler failed');
  });

  it('rooms per session: one more room:join is QUOTA_EXCEEDED and changes nothing', async () => {
    const hog = await open('hog');
    for (const roomId of ['conf-a', 'conf-b', 'conf-c', 'radio'])
      expectReply(await hog.c.request('room:join', { roomId }), 'room:state');
    const refused = errorOf(await hog.c.request('room:join', { roomId: 'conf-d' }));
    expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'rooms', limit: 4 } });
    const { store } = srv.server.internalsForTesting;
    expect((await store.participants('conf-d')).length).toBe(0);
    // Joining a room it is already in is not a new room; leaving one makes a place.
    expectReply(await hog.c.request('room:join', { roomId: 'conf-a' }), 'room:state');
    expectReply(await hog.c.request('room:leave', { roomId: 'conf-a' }), 'room:left');
    expectReply(await hog.c.request('room:join', { roomId: 'conf-d' }), 'room:state');
    // Another session of another user is not affected.
    const other = await open('other');
    const state = expectReply(await other.c.request('room:join', { roomId: 'conf-d' }), 'room:state');
    expect(state.payload.participants.map((p) => p.userId).sort()).toEqual(['hog', 'other']);
  });

  it('ad-hoc rooms per user: a join creating one more is QUOTA_EXCEEDED; joining existing ones is not', async () => {
    const hog = await open('hog');
    const hog2 = await open('hog'); // the quota is the user's, over all its sessions
    expectReply(await hog.c.request('room:join', { roomId: 'adhoc-1' }), 'room:state');
    expectReply(await hog2.c.request('room:join', { roomId: 'adhoc-2' }), 'room:state');
    const refused = errorOf(await hog2.c.request('room:join', { roomId: 'adhoc-3' }));
    expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'adHocRooms', limit: 2 } });
    const { store } = srv.server.internalsForTesting;
    expect((await store.participants('adhoc-3')).length).toBe(0);

    // Someone else creates a room; the hog may join it (it creates nothing), and manifest channels too.
    const other = await open('other');
    expectReply(await other.c.request('room:join', { roomId: 'others-room' }), 'room:state');
    expectReply(await hog2.c.request('room:join', { roomId: 'others-room' }), 'room:state');
    expectReply(await hog2.c.request('room:join', { roomId: 'conf-a' }), 'room:state');

    // Once one of its rooms is gone (empty), the hog may create another.
    expectReply(await hog.c.request('room:leave', { roomId: 'adhoc-1' }), 'room:left');
    expectReply(await hog.c.request('room:join', { roomId: 'adhoc-3' }), 'room:state');
  });

  it('transports, producers and consumers are bounded per user over all its rooms and sessions', async () => {
    const { media } = srv.server.internalsForTesting;
    const hogA = await open('hog');
    const hogB = await open('hog');
    // The audit: many connections of one user, each below the per-room limit, took every port.
    const a1 = await joinWithMedia(hogA.c, 'conf-a');
    const a2 = await joinWithMedia(hogA.c, 'conf-b');
    await joinWithMedia(hogB.c, 'conf-c');
    expect(media.heldBy('hog').transports).toBe(6);
    expectReply(await hogB.c.request('room:join', { roomId: 'conf-d' }), 'room:state');
    const refused = errorOf(
      await hogB.c.request('transport:create', { roomId: 'conf-d', direction: 'recv' }),
    );
    expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'transports', limit: 6 } });
    expect(media.heldBy('hog').transports).toBe(6);

    // A legitimate user in the same room still gets transports.
    const pub = await open('pub');
    const p = await joinWithMedia(pub.c, 'conf-d');
    expectReply(
      await pub.c.request('transport:connect', { transportId: p.send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );

    // Producers: two over two rooms; a third anywhere is refused.
    for (const t of [a1.send.id, a2.send.id]) {
      expectReply(
        await hogA.c.request('transport:connect', { transportId: t, dtlsParameters: FAKE_DTLS }),
        'transport:connected',
      );
    }
    for (const t of [a1.send.id, a2.send.id]) {
      expectReply(
        await hogA.c.request('produce', {
          transportId: t,
          kind: 'audio',
          rtpParameters: opusRtpParameters(),
        }),
        'produced',
      );
    }
    const third = errorOf(
      await hogA.c.request('produce', {
        transportId: a1.send.id,
        kind: 'audio',
        rtpParameters: { ...opusRtpParameters(), mid: '1' },
      }),
    );
    expect(third).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'producers', limit: 2 } });

    // Consumers: two publishers offer three tracks; the hog may consume two of them.
    const producerIds: string[] = [];
    const pub2 = await open('pub2');
    const p2 = await joinWithMedia(pub2.c, 'conf-d');
    await pub2.c.request('transport:connect', { transportId: p2.send.id, dtlsParameters: FAKE_DTLS });
    for (const [c, transportId, mid] of [
      [pub.c, p.send.id, '0'],
      [pub.c, p.send.id, '1'],
      [pub2.c, p2.send.id, '0'],
    ] as const) {
      const produced = expectReply(
        await c.request('produce', {
          transportId,
          kind: 'audio',
          rtpParameters: { ...opusRtpParameters(), mid },
        }),
        'produced',
      );
      producerIds.push(produced.payload.producerId);
    }
    expectReply(await hogB.c.request('room:leave', { roomId: 'conf-c' }), 'room:left');
    await waitUntil(() => media.heldBy('hog').transports === 4, 'the left room’s transports to close');
    const d = await joinWithMedia(hogB.c, 'conf-d');
    const consume = (c: TestClient, recv: string, producerId: string) =>
      c.request('consume', { producerId, transportId: recv, rtpCapabilities: d.caps.rtpCapabilities });
    expectReply(await consume(hogB.c, d.recv.id, producerIds[0]), 'consumed');
    expectReply(await consume(hogB.c, d.recv.id, producerIds[1]), 'consumed');
    expect(errorOf(await consume(hogB.c, d.recv.id, producerIds[2]))).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'consumers', limit: 2 },
    });
    // A listener beside it consumes the track the hog was refused (and another: its own quota is 2 too).
    const listener = await open('listener');
    const l = await joinWithMedia(listener.c, 'conf-d');
    for (const id of [producerIds[2], producerIds[0]])
      expectReply(await consume(listener.c, l.recv.id, id), 'consumed');

    // Leaving gives everything back.
    for (const roomId of ['conf-a', 'conf-b']) await hogA.c.request('room:leave', { roomId });
    await hogB.c.request('room:leave', { roomId: 'conf-d' });
    await waitUntil(() => media.heldBy('hog').transports === 0, 'the hog’s transports to close');
    expect(media.heldBy('hog')).toEqual({ transports: 0, producers: 0, consumers: 0 });
  });

  it('a suspended session releases its transports at once; on resume it is told media:closed and rebuilds', async () => {
    const { media, pool, store } = srv.server.internalsForTesting;
    const peer = await open('peer');
    const bob = await joinWithMedia(peer.c, 'conf-a');
    const alice = await open('alice');
    const before = pool.workers()[0].transports;
    const m = await joinWithMedia(alice.c, 'conf-a', { produce: true });
    expect(pool.workers()[0].transports).toBe(before + 2);
    // Bob consumes Alice.
    const consumed = expectReply(
      await peer.c.request('consume', {
        producerId: m.producerId,
        transportId: bob.recv.id,
        rtpCapabilities: bob.caps.rtpCapabilities,
      }),
      'consumed',
    );

    await drop(alice);
    // Her ports are free at once, not at the end of the grace window; her seat stays.
    await waitUntil(
      () => media.heldBy('alice').transports === 0,
      'the suspended session’s transports to close',
    );
    expect(pool.workers()[0].transports).toBe(before);
    expect(media.heldBy('alice')).toEqual({ transports: 0, producers: 0, consumers: 0 });
    expect((await store.participants('conf-a')).map((p) => p.userId).sort()).toEqual(['alice', 'peer']);
    // Bob's consumer of her track is closed (as when a producer goes); nobody saw her leave.
    await peer.c.waitFor(
      (msg) => msg.type === 'consumer:closed' && msg.payload.consumerId === consumed.payload.consumerId,
    );
    expect(peer.c.received.some((msg) => msg.type === 'room:participant-left')).toBe(false);

    // Resume: the reply, then media:closed {suspended} for the room, so the client rebuilds.
    const back = await open('alice');
    const resumed = expectReply(
      await back.c.request('session:resume', { resumeToken: alice.welcome.resumeToken }),
      'session:resumed',
    );
    expect(resumed.payload.rooms).toEqual(['conf-a']);
    const closed = await back.c.next('media:closed');
    expect(closed.payload).toEqual({ roomId: 'conf-a', reason: 'suspended' });
    const order = back.c.received.map((x) => x.type);
    expect(order.indexOf('room:state')).toBeGreaterThan(-1); // snapshot after it (already received)

    // Rebuilt the way the SDK does it: new transports, a new producer; Bob is told and can consume it.
    const send = expectReply(
      await back.c.request('transport:create', { roomId: 'conf-a', direction: 'send' }),
      'transport:created',
    ).payload;
    expectReply(
      await back.c.request('transport:connect', { transportId: send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const produced = expectReply(
      await back.c.request('produce', {
        transportId: send.id,
        kind: 'audio',
        rtpParameters: opusRtpParameters(),
      }),
      'produced',
    );
    const announced = await peer.c.waitFor(
      (msg) => msg.type === 'producer:new' && msg.payload.producerId === produced.payload.producerId,
    );
    expect(announced.type === 'producer:new' && announced.payload.userId).toBe('alice');
    expectReply(
      await peer.c.request('consume', {
        producerId: produced.payload.producerId,
        transportId: bob.recv.id,
        rtpCapabilities: bob.caps.rtpCapabilities,
      }),
      'consumed',
    );
  });

  it('connect, create transports, drop, repeat: the user never holds more than its quota, others still get ports', async () => {
    const { media, pool } = srv.server.internalsForTesting;
    const base = pool.workers()[0].transports;
    // The audit: short-lived sessions that create transports and drop their sockets held those ports
    // for the grace window. Twelve rounds, each session taking two transports in its room.
    for (let i = 0; i < 12; i++) {
      const h = await open('hog');
      await joinWithMedia(h.c, 'radio');
      h.c.ws.terminate();
    }
    const { sessions } = srv.server.internalsForTesting;
    await waitUntil(
      () => [...(sessions.sessionsOf('hog') ?? [])].every((s) => s.suspended),
      'every hog session to be suspended',
    );
    await waitUntil(
      () => media.heldBy('hog').transports === 0,
      'the suspended sessions’ transports to close',
    );
    expect(sessions.sessionsOf('hog')?.size).toBe(3); // MAX_SESSIONS_PER_USER, suspended included
    expect(pool.workers()[0].transports).toBe(base);
    const other = await open('other');
    const m = await joinWithMedia(other.c, 'radio', { consumeFloor: true });
    expect(m.consumerId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a full room: a live joiner takes the seat of its longest-seated suspended member; live members keep theirs', async () => {
    const { store } = srv.server.internalsForTesting;
    const seated = [await open('s1'), await open('s2'), await open('s3')];
    for (const s of seated) expectReply(await s.c.request('room:join', { roomId: 'small' }), 'room:state');
    const late = await open('late');
    // Full and everyone live: ROOM_FULL as ever.
    expect(errorOf(await late.c.request('room:join', { roomId: 'small' })).code).toBe('ROOM_FULL');

    await drop(seated[0]);
    const state = expectReply(await late.c.request('room:join', { roomId: 'small' }), 'room:state');
    expect(state.payload.participants.map((p) => p.userId).sort()).toEqual(['late', 's2', 's3']);
    const left = await seated[1].c.waitFor((m) => m.type === 'room:participant-left');
    expect(left.type === 'room:participant-left' && left.payload).toMatchObject({
      roomId: 'small',
      participant: { userId: 's1' },
      reason: 'disconnected',
    });
    expect((await store.participants('small')).length).toBe(3);

    // The evicted session resumes without that room (it is told by the room list of session:resumed).
    const back = await open('s1');
    const resumed = expectReply(
      await back.c.request('session:resume', { resumeToken: seated[0].welcome.resumeToken }),
      'session:resumed',
    );
    expect(resumed.payload.rooms).toEqual([]);
    // Full of live members again: the next joiner is refused.
    const another = await open('another');
    expect(errorOf(await another.c.request('room:join', { roomId: 'small' })).code).toBe('ROOM_FULL');
  });
});

describe('payload depth is bounded before anything reaches mediasoup', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', LOG_LEVEL: 'info' }, manifest);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  /** `{"x":{"x":…}}` or `[[…]]`, `depth` levels, as JSON text (too deep for JSON.stringify). */
  function nested(depth: number, array: boolean): string {
    return array
      ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
      : `${'{"x":'.repeat(depth)}1${'}'.repeat(depth)}`;
  }

  let seq = 0;
  /** A request whose `payload` has the JSON text `deep` where the string DEEP stands. */
  function requestWithDeep(
    c: TestClient,
    type: string,
    payload: unknown,
    deep: string,
  ): Promise<ServerMessage> {
    const correlationId = `deep-${++seq}`;
    const text = JSON.stringify({ type, payload, correlationId }).replace('"DEEP"', deep);
    expect(text.length).toBeLessThan(64 * 1024); // under MAX_FRAME_BYTES: the depth, not the size, is refused
    const reply = c.waitFor((m) => m.correlationId === correlationId);
    c.sendRaw(text);
    return reply;
  }

  it('deeply nested rtpCapabilities, rtpParameters, dtlsParameters and appData are INVALID_MESSAGE, never INTERNAL', async () => {
    const attacker = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'attacker' }));
    const user = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'user' }));
    clients.push(attacker, user);
    const pub = await joinWithMedia(attacker, 'conf-a');
    const u = await joinWithMedia(user, 'conf-a');
    await attacker.request('transport:connect', { transportId: pub.send.id, dtlsParameters: FAKE_DTLS });
    const produced = expectReply(
      await attacker.request('produce', {
        transportId: pub.send.id,
        kind: 'audio',
        rtpParameters: opusRtpParameters(),
      }),
      'produced',
    );
    const producerId = produced.payload.producerId;
    // Thousands of levels (well inside a 64 KiB frame), in each shape the audit tried.
    const deep: [string, unknown, string][] = [
      [
        'consume',
        {
          producerId,
          transportId: pub.recv.id,
          rtpCapabilities: { ...u.caps.rtpCapabilities, extra: 'DEEP' },
        },
        nested(5_000, true),
      ],
      [
        'consume',
        {
          producerId,
          transportId: pub.recv.id,
          rtpCapabilities: { codecs: [{ kind: 'audio', mimeType: 'audio/opus', parameters: 'DEEP' }] },
        },
        nested(3_000, false),
      ],
      [
        'produce',
        { transportId: pub.send.id, kind: 'audio', rtpParameters: { ...opusRtpParameters(), rtcp: 'DEEP' } },
        nested(3_000, false),
      ],
      [
        'produce',
        {
          transportId: pub.send.id,
          kind: 'audio',
          rtpParameters: opusRtpParameters(),
          appData: { deep: 'DEEP' },
        },
        nested(5_000, true),
      ],
      [
        'transport:connect',
        { transportId: pub.recv.id, dtlsParameters: { ...FAKE_DTLS, x: 'DEEP' } },
        nested(5_000, true),
      ],
    ];
    for (const [type, payload, text] of deep) {
      const err = errorOf(await requestWithDeep(attacker, type, payload, text));
      expect(err.code, type).toBe('INVALID_MESSAGE');
      expect(String(err.details?.path), type).toMatch(/^payload\./);
      expect(err.details?.maxDepth).toBe(16);
    }
    // Nothing was created or crashed, and no stack trace was logged.
    expect(srv.logText()).not.toContain('handler failed');
    expect(srv.logText()).not.toContain('Maximum call stack');
    expect(srv.server.internalsForTesting.media.heldBy('attacker')).toMatchObject({
      producers: 1,
      consumers: 0,
    });

    // The attacker's connection still works, as does the user's: a real consume succeeds for both.
    expectReply(
      await user.request('consume', {
        producerId,
        transportId: u.recv.id,
        rtpCapabilities: u.caps.rtpCapabilities,
      }),
      'consumed',
    );
    expect((await attacker.request('ping')).type).toBe('pong');
    // Legitimate parameters with their usual nesting pass (the limit is far above what mediasoup uses).
    const withFeedback = {
      ...opusRtpParameters(),
      mid: '1',
      codecs: [
        {
          mimeType: 'audio/opus',
          payloadType: 100,
          clockRate: 48_000,
          channels: 2,
          parameters: { useinbandfec: 1 },
          rtcpFeedback: [{ type: 'transport-cc', parameter: '' }],
        },
      ],
    };
    expectReply(
      await attacker.request('produce', {
        transportId: pub.send.id,
        kind: 'audio',
        rtpParameters: withFeedback,
      }),
      'produced',
    );
  });
});
