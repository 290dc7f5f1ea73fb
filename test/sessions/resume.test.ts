import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage, ServerMessageOf } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const GRACE_MS = 1_000;

type Welcome = ServerMessageOf<'welcome'>['payload'];

const presenceOf = (userId: string) => (m: ServerMessage) =>
  (m.type === 'room:participant-joined' || m.type === 'room:participant-left') &&
  m.payload.participant.userId === userId;

describe('session resume on one node', () => {
  let srv: TestServer;
  let open: TestClient[] = [];

  /** Connects and returns the client with its welcome, recording the order of everything it receives. */
  const connect = async (sub: string) => {
    const c = new TestClient(srv.wsUrl, [], {
      headers: { authorization: `Bearer ${await srv.token({ sub })}` },
    });
    const order: string[] = [];
    c.ws.on('message', (d) => order.push((JSON.parse((d as Buffer).toString()) as ServerMessage).type));
    open.push(c);
    await c.opened;
    const welcome: Welcome = (await c.next('welcome')).payload;
    return { c, welcome, order };
  };
  /** Drops the socket without a close frame and waits until the server has suspended the session. */
  const drop = async (c: TestClient, sessionId: string) => {
    c.ws.terminate();
    await waitUntil(
      () => srv.server.internalsForTesting.sessions.get(sessionId)?.suspended === true,
      'the session is suspended',
    );
  };
  const joinRoom = async (c: TestClient, roomId: string) => {
    expect((await c.request('room:join', { roomId })).type).toBe('room:state');
  };

  beforeAll(async () => {
    srv = await startServer({ RESUME_GRACE_MS: String(GRACE_MS) });
  });
  afterEach(async () => {
    await Promise.all(open.map((c) => c.close(1000)));
    open = [];
  });
  afterAll(() => srv.close());

  it('restores identity and rooms within the window, tells the room nothing, and delivers what was missed', async () => {
    const a1 = await connect('alice');
    const b = await connect('bob');
    await joinRoom(a1.c, 'r1');
    await joinRoom(b.c, 'r1');
    await a1.c.next('room:participant-joined');

    await drop(a1.c, a1.welcome.sessionId);
    // While alice is suspended: a call for her, and a newcomer in her room.
    const offer = b.c.request(
      'call:offer',
      { recipientId: 'alice', callId: 'k1', sdp: 'v=0 while-away' },
      400,
    );
    await expect(offer).rejects.toThrow(/timed out/); // success has no reply: no RECIPIENT_OFFLINE
    const carol = await connect('carol');
    await joinRoom(carol.c, 'r1');

    const a2 = await connect('alice');
    const resumed = await a2.c.request('session:resume', { resumeToken: a1.welcome.resumeToken });
    expect(resumed.type).toBe('session:resumed');
    const p = (resumed as ServerMessageOf<'session:resumed'>).payload;
    expect(p.sessionId).toBe(a1.welcome.sessionId);
    expect(p.sessionId).not.toBe(a2.welcome.sessionId);
    expect(p.rooms).toEqual(['r1']);
    expect(p.missedFrames).toBe(false);
    expect(p.resumeToken).not.toBe(a1.welcome.resumeToken);
    expect(p.resumeToken).not.toBe(a2.welcome.resumeToken);

    // What was missed arrives after session:resumed, and the room snapshot comes last.
    const missedOffer = await a2.c.next('call:offer');
    expect(missedOffer.payload).toMatchObject({ callId: 'k1', sdp: 'v=0 while-away', senderId: 'bob' });
    const joinedWhileAway = await a2.c.next('room:participant-joined');
    expect(joinedWhileAway.payload.participant.userId).toBe('carol');
    const state = await a2.c.next('room:state');
    expect(state.payload.roomId).toBe('r1');
    expect(state.payload.participants.map((x) => x.userId).sort()).toEqual(['alice', 'bob', 'carol']);
    expect(state.payload.participants.find((x) => x.userId === 'alice')!.sessionId).toBe(
      a1.welcome.sessionId,
    );
    expect(a2.order).toEqual([
      'welcome',
      'session:resumed',
      'call:offer',
      'room:participant-joined',
      'room:state',
    ]);

    // The room never heard alice leave or come back (a window in which nothing may arrive).
    await sleep(100);
    expect(b.c.received.filter(presenceOf('alice'))).toEqual([]);
    expect(carol.c.received.filter(presenceOf('alice'))).toEqual([]);

    // She is a member again on the new socket: in-room relay both ways, and calls reach her directly.
    a2.c.send('sdp:offer', { roomId: 'r1', to: 'bob', sdp: 'v=0 hello' });
    expect((await b.c.next('sdp:offer')).payload.senderId).toBe('alice');
    b.c.send('call:offer', { recipientId: 'alice', callId: 'k2', sdp: 'v=0 live' });
    expect((await a2.c.next('call:offer')).payload.callId).toBe('k2');

    // The used token is spent; the fresh one works for the next drop.
    const a3 = await connect('alice');
    expect(await a3.c.request('session:resume', { resumeToken: a1.welcome.resumeToken })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    expect((await a3.c.request('ping')).type).toBe('pong');
    await drop(a2.c, a1.welcome.sessionId);
    const again = await a3.c.request('session:resume', { resumeToken: p.resumeToken });
    expect(again).toMatchObject({
      type: 'session:resumed',
      payload: { sessionId: a1.welcome.sessionId, rooms: ['r1'] },
    });
    expect(b.c.received.filter(presenceOf('alice'))).toEqual([]);
  });

  it('refuses another user\u2019s token without consuming it', async () => {
    const a1 = await connect('alice');
    await drop(a1.c, a1.welcome.sessionId);
    const mallory = await connect('mallory');
    const stolen = await mallory.c.request('session:resume', { resumeToken: a1.welcome.resumeToken });
    expect(stolen).toMatchObject({ type: 'error', payload: { code: 'RESUME_FAILED' } });
    expect(stolen.correlationId).toBeDefined();
    // The owner can still resume with it.
    const a2 = await connect('alice');
    expect(await a2.c.request('session:resume', { resumeToken: a1.welcome.resumeToken })).toMatchObject({
      type: 'session:resumed',
      payload: { sessionId: a1.welcome.sessionId },
    });
  });

  it('refuses a garbage token, the connection\u2019s own token, and the token of a session that ended with 1000', async () => {
    const a = await connect('alice');
    expect(await a.c.request('session:resume', { resumeToken: 'garbage' })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    expect(await a.c.request('session:resume', { resumeToken: a.welcome.resumeToken })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    expect(await a.c.request('session:resume', { resumeToken: 'x'.repeat(257) })).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.resumeToken' } },
    });
    const gone = await connect('alice');
    await gone.c.close(1000);
    await waitUntil(
      () => srv.server.internalsForTesting.sessions.get(gone.welcome.sessionId) === undefined,
      'the session ended',
    );
    expect(await a.c.request('session:resume', { resumeToken: gone.welcome.resumeToken })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    // None of that disturbed the connection.
    expect((await a.c.request('ping')).type).toBe('pong');
  });

  it('after the window, the room sees participant-left {reason: "disconnected"} and resume fails', async () => {
    const a1 = await connect('alice');
    const b = await connect('bob');
    await joinRoom(a1.c, 'r2');
    await joinRoom(b.c, 'r2');
    await a1.c.next('room:participant-joined');
    const t0 = Date.now();
    await drop(a1.c, a1.welcome.sessionId);
    const left = await b.c.waitFor(presenceOf('alice'), GRACE_MS + 2_000, 'alice left');
    const elapsed = Date.now() - t0;
    expect(left).toMatchObject({
      type: 'room:participant-left',
      payload: { roomId: 'r2', reason: 'disconnected' },
    });
    // Ordering, not speed: the leave never comes before the window has run out (a busy machine can
    // only make it later; the waitFor deadline above bounds how much later).
    expect(elapsed).toBeGreaterThanOrEqual(GRACE_MS - 50);

    const a2 = await connect('alice');
    expect(await a2.c.request('session:resume', { resumeToken: a1.welcome.resumeToken })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    // Offline for good: calls to her are refused again (she left the room they shared).
    await a2.c.close(1000);
    await waitUntil(
      () => srv.server.internalsForTesting.sessions.sessionsOf('alice') === undefined,
      'alice is offline',
    );
    expect(await b.c.request('call:offer', { recipientId: 'alice', callId: 'k3', sdp: 'v=0' })).toMatchObject(
      {
        type: 'error',
        payload: { code: 'CALL_NOT_ALLOWED' },
      },
    );
  });

  it('refuses a resume on a connection that already joined a room', async () => {
    const a1 = await connect('alice');
    await joinRoom(a1.c, 'r3');
    await drop(a1.c, a1.welcome.sessionId);
    const a2 = await connect('alice');
    await joinRoom(a2.c, 'r4');
    expect(await a2.c.request('session:resume', { resumeToken: a1.welcome.resumeToken })).toMatchObject({
      type: 'error',
      payload: { code: 'RESUME_FAILED' },
    });
    // The new connection keeps its own session and room.
    expect(await a2.c.request('room:leave', { roomId: 'r4' })).toMatchObject({ type: 'room:left' });
  });

  it('replaces a still-open (half-open) old socket: it is closed with 4409 and the room notices nothing', async () => {
    const a1 = await connect('hal');
    const b = await connect('bob');
    await joinRoom(a1.c, 'r5');
    await joinRoom(b.c, 'r5');
    await a1.c.next('room:participant-joined');

    const a2 = await connect('hal');
    const resumed = await a2.c.request('session:resume', { resumeToken: a1.welcome.resumeToken });
    expect(resumed).toMatchObject({
      type: 'session:resumed',
      payload: { sessionId: a1.welcome.sessionId, rooms: ['r5'] },
    });
    expect((await a1.c.closed).code).toBe(4409);

    await sleep(100); // a window in which no presence change may arrive
    expect(b.c.received.filter(presenceOf('hal'))).toEqual([]);
    // Messages for hal now go to the new socket only.
    b.c.send('call:offer', { recipientId: 'hal', callId: 'k4', sdp: 'v=0' });
    expect((await a2.c.next('call:offer')).payload.callId).toBe('k4');
    expect(srv.server.internalsForTesting.sessions.sessionsOf('hal')?.size).toBe(1);
  });
});
