import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import type { TestClient } from '../helpers/client.js';
import { connectAs, TestClient as Client } from '../helpers/client.js';
import { expectReply, joinWithMedia } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { indexOfWrite, tapWrites, type TappedWrite } from '../helpers/wire-tap.js';

const manifest = {
  channels: [
    { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 10 },
    { id: 'queued', name: 'Queued', mode: 'ptt', maxParticipants: 10, queue: true },
    { id: 'conf', name: 'Conf', mode: 'conference', maxParticipants: 10 },
    { id: 'conf2', name: 'Conf 2', mode: 'conference', maxParticipants: 10 },
    { id: 'tiny', name: 'Tiny', mode: 'conference', maxParticipants: 2 },
  ],
};

/** Types of what a client received, in order, from its socket. */
const types = (c: TestClient) => c.received.map((m: ServerMessage) => m.type);

/**
 * SPEC §9: "a request's reply goes to the requester before any broadcast that the request causes".
 * Checked twice for each request that also broadcasts: on the requester's own socket (what it
 * reads), and across sockets with a tap on the server's writes (the reply is written before the
 * broadcast is written to anyone). Real sockets and real mediasoup workers.
 */
describe('order: the reply before the broadcast it causes', () => {
  let srv: TestServer;
  let clients: TestClient[] = [];
  const connect = (sub: string, claims: Record<string, unknown> = {}) => connectAs(srv, clients, sub, claims);
  const join = async (c: TestClient, roomId: string) =>
    expectReply(await c.request('room:join', { roomId }), 'room:state');
  /** The reply (by correlationId) is written before the first `broadcast` write, to anyone. */
  const replyFirst = (log: TappedWrite[], correlationId: string, broadcast: string) => {
    const reply = indexOfWrite(log, { correlationId });
    const first = indexOfWrite(log, { type: broadcast });
    expect(reply, `reply ${correlationId} written`).toBeGreaterThanOrEqual(0);
    expect(first, `${broadcast} written`).toBeGreaterThanOrEqual(0);
    expect(reply, `reply before ${broadcast}: ${JSON.stringify(log)}`).toBeLessThan(first);
  };
  /** Sends a request with a known correlationId and waits for its reply. */
  const ask = async (c: TestClient, type: string, payload: unknown, correlationId: string) => {
    const reply = c.waitFor((m) => m.correlationId === correlationId, 5_000, `reply to ${type}`);
    c.send(type, payload, correlationId);
    return reply;
  };
  /** The types written to one user's sockets, in order. */
  const writtenTo = (log: TappedWrite[], userId: string) =>
    log.filter((w) => w.userId === userId).map((w) => w.type);
  /** Connects with the token on the upgrade and keeps the welcome (for its resume token). */
  const openKeepingWelcome = async (sub: string, claims: Record<string, unknown> = {}) => {
    const token = await srv.token({ sub, name: sub.toUpperCase(), ...claims });
    const c = new Client(srv.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    clients.push(c);
    await c.opened;
    return { c, welcome: (await c.next('welcome')).payload };
  };
  /** Drops the socket as a network failure would (1006) and waits for the user's session to be suspended. */
  const drop = async (c: TestClient, userId: string) => {
    c.ws.terminate();
    const { sessions } = srv.server.internalsForTesting;
    await waitUntil(
      () => [...(sessions.sessionsOf(userId) ?? [])].some((s) => s.suspended),
      `${userId}'s session suspended`,
    );
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', RATE_LIMIT_BURST: '1000' }, manifest);
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    await waitUntil(() => srv.server.internalsForTesting.gateway.connectionCount === 0, 'all closed');
  });
  afterAll(() => srv.close());

  it('ptt:start: the speaker reads ptt:granted, then ptt:speaker-changed; written in that order', async () => {
    const a = await connect('o-a');
    const b = await connect('o-b');
    await join(a, 'radio');
    await join(b, 'radio');
    a.received.length = 0;
    const log = tapWrites(srv);
    await ask(a, 'ptt:start', { roomId: 'radio' }, 'start-1');
    await b.next('ptt:speaker-changed');
    await a.waitFor((m) => m.type === 'ptt:speaker-changed');
    // Nothing consumed from `received` but the two above: the reply is still the first entry.
    expect(log.filter((w) => w.userId === 'o-a').map((w) => w.type)).toEqual([
      'ptt:granted',
      'ptt:speaker-changed',
    ]);
    replyFirst(log, 'start-1', 'ptt:speaker-changed');
  });

  it('ptt:stop: ptt:stopped before ptt:speaker-changed {speaker:null}, and before the next queued grant', async () => {
    const a = await connect('o-c');
    const b = await connect('o-d');
    await join(a, 'queued');
    await join(b, 'queued');
    expectReply(await a.request('ptt:start', { roomId: 'queued' }), 'ptt:granted');
    expectReply(await b.request('ptt:start', { roomId: 'queued' }), 'ptt:queued');
    await a.waitFor((m) => m.type === 'ptt:speaker-changed');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed');
    a.received.length = 0;
    b.received.length = 0;
    const log = tapWrites(srv);
    expect((await ask(a, 'ptt:stop', { roomId: 'queued' }, 'stop-1')).payload).toEqual({
      roomId: 'queued',
      held: true,
    });
    await b.next('ptt:granted');
    await waitUntil(
      () => types(a).filter((t) => t === 'ptt:speaker-changed').length === 2,
      'a sees both changes',
    );
    expect(log.filter((w) => w.userId === 'o-c').map((w) => w.type)).toEqual([
      'ptt:stopped',
      'ptt:speaker-changed',
      'ptt:speaker-changed',
    ]);
    // The freed floor is announced before it is granted to the next in line.
    expect(log.filter((w) => w.userId === 'o-d').map((w) => w.type)).toEqual([
      'ptt:speaker-changed',
      'ptt:granted',
      'ptt:speaker-changed',
    ]);
    replyFirst(log, 'stop-1', 'ptt:speaker-changed');
    replyFirst(log, 'stop-1', 'ptt:granted');
  });

  it('pre-emption: the dispatcher gets ptt:granted before the pre-empted speaker reads ptt:revoked', async () => {
    const a = await connect('o-e');
    const chief = await connect('o-chief', { pttPriority: 5 });
    await join(a, 'radio');
    await join(chief, 'radio');
    expectReply(await a.request('ptt:start', { roomId: 'radio' }), 'ptt:granted');
    const log = tapWrites(srv);
    await ask(chief, 'ptt:start', { roomId: 'radio' }, 'preempt-1');
    expect((await a.next('ptt:revoked')).payload).toMatchObject({
      reason: 'preempted',
      by: { userId: 'o-chief' },
    });
    await waitUntil(
      () => indexOfWrite(log, { userId: 'o-chief', type: 'ptt:speaker-changed' }) >= 0,
      'broadcast',
    );
    replyFirst(log, 'preempt-1', 'ptt:revoked');
    replyFirst(log, 'preempt-1', 'ptt:speaker-changed');
    expect(indexOfWrite(log, { type: 'ptt:revoked' })).toBeLessThan(
      indexOfWrite(log, { type: 'ptt:speaker-changed' }),
    );
  });

  it('room:join and room:leave: room:state / room:left written before the others hear of it', async () => {
    const a = await connect('o-f');
    const b = await connect('o-g');
    await join(b, 'conf');
    const log = tapWrites(srv);
    expectReply(await ask(a, 'room:join', { roomId: 'conf' }, 'join-1'), 'room:state');
    await b.next('room:participant-joined');
    replyFirst(log, 'join-1', 'room:participant-joined');
    expectReply(await ask(a, 'room:leave', { roomId: 'conf' }, 'leave-1'), 'room:left');
    await b.next('room:participant-left');
    replyFirst(log, 'leave-1', 'room:participant-left');
  });

  it('a speaker who leaves: room:left before the floor is announced free', async () => {
    const a = await connect('o-h');
    const b = await connect('o-i');
    await join(a, 'radio');
    await join(b, 'radio');
    expectReply(await a.request('ptt:start', { roomId: 'radio' }), 'ptt:granted');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker !== null);
    const log = tapWrites(srv);
    expectReply(await ask(a, 'room:leave', { roomId: 'radio' }, 'leave-2'), 'room:left');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
    replyFirst(log, 'leave-2', 'room:participant-left');
    replyFirst(log, 'leave-2', 'ptt:speaker-changed');
  });

  it('produce, producer:pause/resume, producer:close: the reply is written before the room hears of it', async () => {
    const a = await connect('o-j');
    const b = await connect('o-k');
    await joinWithMedia(b, 'conf');
    const ma = await joinWithMedia(a, 'conf');
    expectReply(
      await a.request('transport:connect', {
        transportId: ma.send.id,
        dtlsParameters: {
          role: 'client',
          fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, () => 'AB').join(':') }],
        },
      }),
      'transport:connected',
    );
    const { opusRtpParameters } = await import('../helpers/media.js');
    let log = tapWrites(srv);
    const produced = expectReply(
      await ask(
        a,
        'produce',
        { transportId: ma.send.id, kind: 'audio', rtpParameters: opusRtpParameters() },
        'prod-1',
      ),
      'produced',
    );
    await b.next('producer:new');
    replyFirst(log, 'prod-1', 'producer:new');

    const producerId = produced.payload.producerId;
    log = tapWrites(srv);
    expectReply(await ask(a, 'producer:pause', { producerId }, 'pause-1'), 'producer:paused');
    await b.next('producer:paused');
    // The reply has the same type as the notice: the requester's copy comes first.
    expect(log[0]).toEqual({ userId: 'o-j', type: 'producer:paused', correlationId: 'pause-1' });
    expect(log[1]).toEqual({ userId: 'o-k', type: 'producer:paused' });

    log = tapWrites(srv);
    expectReply(await ask(a, 'producer:resume', { producerId }, 'resume-1'), 'producer:resumed');
    await b.next('producer:resumed');
    expect(log.slice(0, 2)).toEqual([
      { userId: 'o-j', type: 'producer:resumed', correlationId: 'resume-1' },
      { userId: 'o-k', type: 'producer:resumed' },
    ]);

    log = tapWrites(srv);
    expectReply(await ask(a, 'producer:close', { producerId }, 'close-1'), 'producer:closed');
    await b.next('producer:closed');
    expect(log.slice(0, 2)).toEqual([
      { userId: 'o-j', type: 'producer:closed', correlationId: 'close-1' },
      { userId: 'o-k', type: 'producer:closed' },
    ]);
  });

  it('auth:request (in-band): auth:response is written before welcome', async () => {
    const c = new Client(srv.wsUrl);
    clients.push(c);
    await c.opened;
    const log = tapWrites(srv);
    const token = await srv.token({ sub: 'o-inband', name: 'In-band' });
    expectReply(await ask(c, 'auth:request', { token }, 'auth-1'), 'auth:response');
    await c.next('welcome');
    // Not authenticated when the tap was laid: the server-side socket has no user yet.
    expect(writtenTo(log, '?')).toEqual(['auth:response', 'welcome']);
  });

  it('room:join into a full room takes a suspended member’s seat: room:state, then the departure, then the arrival', async () => {
    const gone = await connect('o-l');
    const stays = await connect('o-m');
    await join(gone, 'tiny');
    await join(stays, 'tiny');
    await drop(gone, 'o-l');
    const late = await connect('o-n');
    const log = tapWrites(srv);
    const state = expectReply(await ask(late, 'room:join', { roomId: 'tiny' }, 'join-full'), 'room:state');
    expect(state.payload.participants.map((p) => p.userId).sort()).toEqual(['o-m', 'o-n']);
    expect((await stays.next('room:participant-left')).payload).toMatchObject({
      participant: { userId: 'o-l' },
      reason: 'disconnected',
    });
    expect((await stays.next('room:participant-joined')).payload.participant.userId).toBe('o-n');
    replyFirst(log, 'join-full', 'room:participant-left');
    // The others never see three members in a room of two: the departure comes before the arrival.
    expect(writtenTo(log, 'o-m')).toEqual(['room:participant-left', 'room:participant-joined']);
  });

  it('auth:request with a narrower token: auth:response, then the room hears what it lost, then auth:grants-reduced', async () => {
    const a = await connect('o-p');
    const b = await connect('o-q');
    await join(a, 'radio');
    await join(b, 'radio');
    expectReply(await a.request('ptt:start', { roomId: 'radio' }), 'ptt:granted');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'o-p');
    const narrower = await srv.token({ sub: 'o-p', name: 'O-P', rooms: ['conf'] });
    const log = tapWrites(srv);
    expectReply(await ask(a, 'auth:request', { token: narrower }, 'refresh-1'), 'auth:response');
    expect((await a.next('auth:grants-reduced')).payload.rooms).toEqual(['radio']);
    await b.waitFor((m) => m.type === 'room:participant-left');
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
    replyFirst(log, 'refresh-1', 'room:participant-left');
    replyFirst(log, 'refresh-1', 'ptt:speaker-changed');
    expect(writtenTo(log, 'o-p')).toEqual(['auth:response', 'auth:grants-reduced']);
  });

  it('session:resume with a narrower token: session:resumed, then the room hears the session leave', async () => {
    const first = await openKeepingWelcome('o-r');
    const b = await connect('o-s');
    await join(first.c, 'conf2');
    await join(b, 'conf2');
    await drop(first.c, 'o-r');
    const again = await openKeepingWelcome('o-r', { rooms: ['conf'] });
    const log = tapWrites(srv);
    const resumed = expectReply(
      await ask(again.c, 'session:resume', { resumeToken: first.welcome.resumeToken }, 'resume-1'),
      'session:resumed',
    );
    expect(resumed.payload.rooms).toEqual(['conf2']);
    expect((await b.next('room:participant-left')).payload.participant.userId).toBe('o-r');
    expect((await again.c.next('auth:grants-reduced')).payload.rooms).toEqual(['conf2']);
    replyFirst(log, 'resume-1', 'room:participant-left');
  });

  it('ptt:stop by a queued member: ptt:stopped {held:false} before the members behind it get their new positions', async () => {
    const a = await connect('o-t');
    const b = await connect('o-u');
    const c = await connect('o-v');
    for (const x of [a, b, c]) await join(x, 'queued');
    expectReply(await a.request('ptt:start', { roomId: 'queued' }), 'ptt:granted');
    expect(
      expectReply(await b.request('ptt:start', { roomId: 'queued' }), 'ptt:queued').payload.position,
    ).toBe(1);
    expect(
      expectReply(await c.request('ptt:start', { roomId: 'queued' }), 'ptt:queued').payload.position,
    ).toBe(2);
    const log = tapWrites(srv);
    expect((await ask(b, 'ptt:stop', { roomId: 'queued' }, 'stop-queued')).payload).toEqual({
      roomId: 'queued',
      held: false,
    });
    expect((await c.next('ptt:queued')).payload.position).toBe(1);
    replyFirst(log, 'stop-queued', 'ptt:queued');
    expect(expectReply(await a.request('ptt:stop', { roomId: 'queued' }), 'ptt:stopped').payload.held).toBe(
      true,
    );
    await c.next('ptt:granted');
  });

  it('room:leave by a queued member: room:left before the members behind it get their new positions', async () => {
    const a = await connect('o-t2');
    const b = await connect('o-u2');
    const c = await connect('o-v2');
    for (const x of [a, b, c]) await join(x, 'queued');
    expectReply(await a.request('ptt:start', { roomId: 'queued' }), 'ptt:granted');
    expectReply(await b.request('ptt:start', { roomId: 'queued' }), 'ptt:queued');
    expectReply(await c.request('ptt:start', { roomId: 'queued' }), 'ptt:queued');
    const log = tapWrites(srv);
    expectReply(await ask(b, 'room:leave', { roomId: 'queued' }, 'leave-queued'), 'room:left');
    expect((await c.next('ptt:queued')).payload.position).toBe(1);
    replyFirst(log, 'leave-queued', 'room:participant-left');
    replyFirst(log, 'leave-queued', 'ptt:queued');
    expect(writtenTo(log, 'o-v2')).toEqual(['room:participant-left', 'ptt:queued']);
    expectReply(await a.request('ptt:stop', { roomId: 'queued' }), 'ptt:stopped');
  });

  it('transport:create (recv): transport:created before the producer:new of producers already in the room', async () => {
    const a = await connect('o-w');
    const b = await connect('o-x');
    await joinWithMedia(b, 'conf2', { produce: true });
    await join(a, 'conf2');
    expectReply(await a.request('media:capabilities', { roomId: 'conf2' }), 'media:capabilities');
    const log = tapWrites(srv);
    expectReply(
      await ask(a, 'transport:create', { roomId: 'conf2', direction: 'recv' }, 'recv-1'),
      'transport:created',
    );
    expect((await a.next('producer:new')).payload.userId).toBe('o-x');
    expect(writtenTo(log, 'o-w')).toEqual(['transport:created', 'producer:new']);
  });

  it('producer:close: the reply is written before its consumers hear consumer:closed', async () => {
    const a = await connect('o-y');
    const b = await connect('o-z');
    const ma = await joinWithMedia(a, 'conf2', { produce: true });
    const mb = await joinWithMedia(b, 'conf2');
    const producerId = ma.producerId ?? '';
    const consumed = expectReply(
      await b.request('consume', {
        producerId,
        transportId: mb.recv.id,
        rtpCapabilities: mb.caps.rtpCapabilities,
      }),
      'consumed',
    ).payload;
    const log = tapWrites(srv);
    expectReply(await ask(a, 'producer:close', { producerId }, 'close-2'), 'producer:closed');
    expect((await b.next('consumer:closed')).payload.consumerId).toBe(consumed.consumerId);
    replyFirst(log, 'close-2', 'consumer:closed');
  });
});
