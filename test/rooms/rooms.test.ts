import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage, ServerMessageOf } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const MANIFEST = {
  name: 'Test Station',
  channels: [
    { id: 'ops', name: 'Operations', mode: 'ptt', maxParticipants: 2, maxTalkMs: 30_000 },
    { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 10 },
    { id: 'small', name: 'Small', mode: 'conference', maxParticipants: 2 },
    { id: 'leave-room', name: 'Leave', mode: 'conference', maxParticipants: 10 },
    { id: 'a', name: 'Room A', mode: 'conference', maxParticipants: 10 },
    { id: 'b', name: 'Room B', mode: 'conference', maxParticipants: 10 },
  ],
};

const isPresence = (m: ServerMessage) =>
  m.type === 'room:participant-joined' || m.type === 'room:participant-left';

async function join(c: TestClient, roomId: string, displayName?: string): Promise<ServerMessage> {
  return c.request('room:join', displayName === undefined ? { roomId } : { roomId, displayName });
}

async function joined(
  c: TestClient,
  roomId: string,
  displayName?: string,
): Promise<ServerMessageOf<'room:state'>> {
  const reply = await join(c, roomId, displayName);
  expect(reply.type).toBe('room:state');
  return reply as ServerMessageOf<'room:state'>;
}

describe('rooms', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = async (sub: string, claims: Record<string, unknown> = {}) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, ...claims }));
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    srv = await startServer({}, MANIFEST);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('room:join replies room:state with participants, the manifest config and no speaker; others get participant-joined', async () => {
    const alice = await connect('alice', { name: 'Alice' });
    const bob = await connect('bob', { name: 'Bob' });
    const t0 = Date.now();
    const s1 = await joined(alice, 'ops');
    expect(Object.keys(s1.payload).sort()).toEqual(['config', 'participants', 'roomId', 'speaker']);
    expect(s1.payload).toMatchObject({ roomId: 'ops', speaker: null });
    // The public config only: PTT settings such as maxTalkMs stay on the server.
    expect(s1.payload.config).toEqual({ id: 'ops', name: 'Operations', mode: 'ptt', maxParticipants: 2 });
    expect(s1.payload.participants).toHaveLength(1);
    const me = s1.payload.participants[0];
    expect(Object.keys(me).sort()).toEqual(['joinedAt', 'name', 'sessionId', 'userId']);
    expect(me).toMatchObject({ userId: 'alice', name: 'Alice' });
    expect(me.joinedAt).toBeGreaterThanOrEqual(t0);
    expect(me.joinedAt).toBeLessThanOrEqual(Date.now());
    const aliceSession = me.sessionId;

    const s2 = await joined(bob, 'ops');
    expect(s2.payload.participants.map((p) => p.userId).sort()).toEqual(['alice', 'bob']);
    const bobEntry = s2.payload.participants.find((p) => p.userId === 'bob')!;
    expect(bobEntry.sessionId).not.toBe(aliceSession);

    const ev = await alice.next('room:participant-joined');
    expect(ev.payload).toEqual({ roomId: 'ops', participant: bobEntry });
    // The joiner is not told about their own join.
    await bob.expectNothing(isPresence, 150);
  });

  it('room:leave replies room:left and the others get participant-left {reason: "left"}', async () => {
    const carol = await connect('carol');
    const dave = await connect('dave');
    await joined(carol, 'leave-room');
    const daveState = await joined(dave, 'leave-room');
    const daveEntry = daveState.payload.participants.find((p) => p.userId === 'dave')!;
    await carol.next('room:participant-joined');

    const reply = await dave.request('room:leave', { roomId: 'leave-room' });
    expect(reply).toMatchObject({ type: 'room:left', payload: { roomId: 'leave-room' } });
    const left = await carol.next('room:participant-left');
    expect(left.payload).toEqual({ roomId: 'leave-room', participant: daveEntry, reason: 'left' });

    // Dave no longer hears the room; Carol's view no longer lists him.
    const erin = await connect('erin');
    const state = await joined(erin, 'leave-room');
    expect(state.payload.participants.map((p) => p.userId).sort()).toEqual(['carol', 'erin']);
    await carol.next('room:participant-joined');
    await dave.expectNothing(isPresence, 150);
  });

  it('leaving a room you are not in is NOT_IN_ROOM, with the correlationId', async () => {
    const c = await connect('frank');
    const reply = await c.request('room:leave', { roomId: 'lobby' });
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'NOT_IN_ROOM' } });
    expect(reply.correlationId).toMatch(/^c\d+$/);
    // Leaving twice: the second one is refused too.
    await joined(c, 'lobby');
    expect((await c.request('room:leave', { roomId: 'lobby' })).type).toBe('room:left');
    expect(await c.request('room:leave', { roomId: 'lobby' })).toMatchObject({
      type: 'error',
      payload: { code: 'NOT_IN_ROOM' },
    });
  });

  it('refuses a join beyond maxParticipants with ROOM_FULL and leaves the members undisturbed', async () => {
    const first = await connect('gina');
    const second = await connect('gus');
    await joined(first, 'small');
    await joined(second, 'small');
    await first.next('room:participant-joined');
    const third = await connect('grace');
    const reply = await join(third, 'small');
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'ROOM_FULL' } });
    await first.expectNothing(isPresence, 150);
    await second.expectNothing(isPresence, 0);
    expect((await third.request('ping')).type).toBe('pong');
    // A seat frees up: the same client can now join.
    expect((await second.request('room:leave', { roomId: 'small' })).type).toBe('room:left');
    await first.next('room:participant-left');
    const state = await joined(third, 'small');
    expect(state.payload.participants.map((p) => p.userId).sort()).toEqual(['gina', 'grace']);
  });

  it('allows ad-hoc rooms by default, with the ad-hoc config', async () => {
    const c = await connect('henry');
    const state = await joined(c, 'adhoc-123');
    expect(state.payload.config).toEqual({
      id: 'adhoc-123',
      name: 'adhoc-123',
      mode: 'conference',
      maxParticipants: 50,
    });
  });

  for (const roomId of ['has space', '', 'x'.repeat(65), 'ünïcode', 'a/b', '../etc']) {
    it(`refuses room id ${JSON.stringify(roomId).slice(0, 20)} with INVALID_MESSAGE naming payload.roomId`, async () => {
      const c = await connect('ivan');
      const reply = await join(c, roomId);
      expect(reply).toMatchObject({
        type: 'error',
        payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.roomId' } },
      });
    });
  }

  it('enforces the token room grant; an admin may join anything', async () => {
    const limited = await connect('judy', { rooms: ['a'] });
    expect(await join(limited, 'b')).toMatchObject({ type: 'error', payload: { code: 'FORBIDDEN' } });
    expect(await join(limited, 'adhoc-x')).toMatchObject({ type: 'error', payload: { code: 'FORBIDDEN' } });
    expect((await join(limited, 'a')).type).toBe('room:state');

    const admin = await connect('root', { rooms: ['a'], admin: true });
    expect((await join(admin, 'b')).type).toBe('room:state');
    expect((await join(admin, 'adhoc-y')).type).toBe('room:state');

    const wildcard = await connect('kim', { rooms: ['*'] });
    expect((await join(wildcard, 'b')).type).toBe('room:state');
  });

  it('joining twice is idempotent: room:state again, no duplicate participant, no second broadcast', async () => {
    const watcher = await connect('leo');
    const twice = await connect('mia');
    await joined(watcher, 'twice');
    const first = await joined(twice, 'twice');
    await watcher.next('room:participant-joined');
    const second = await joined(twice, 'twice');
    expect(second.payload.participants).toEqual(first.payload.participants);
    expect(second.payload.participants).toHaveLength(2);
    await watcher.expectNothing(isPresence, 150);
  });

  it('uses displayName (trimmed) only when the token has no name, marked nameVerified: false, and validates it', async () => {
    const watcher = await connect('nick');
    const c = await connect('olga'); // a token without `name`
    await joined(watcher, 'names');
    const state = await joined(c, 'names', '  Dispatcher One  ');
    expect(state.payload.participants.find((p) => p.userId === 'olga')).toMatchObject({
      name: 'Dispatcher One',
      nameVerified: false,
    });
    const ev = await watcher.next('room:participant-joined');
    expect(ev.payload.participant).toMatchObject({
      userId: 'olga',
      name: 'Dispatcher One',
      nameVerified: false,
    });
    expect(await join(c, 'names2', 'x'.repeat(65))).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE', details: { path: 'payload.displayName' } },
    });
    expect(await join(c, 'names2', '   ')).toMatchObject({
      type: 'error',
      payload: { code: 'INVALID_MESSAGE' },
    });
  });

  it('a close with 1000 leaves every room at once (no grace window)', async () => {
    const watcher = await connect('pam');
    const leaver = await connect('quinn');
    await joined(watcher, 'bye-1');
    await joined(watcher, 'bye-2');
    const s1 = await joined(leaver, 'bye-1');
    await joined(leaver, 'bye-2');
    await watcher.next('room:participant-joined');
    await watcher.next('room:participant-joined');
    const entry = s1.payload.participants.find((p) => p.userId === 'quinn')!;
    await leaver.close(1000);
    // The grace window here is the default 15 s: a leave inside these deadlines cannot be its expiry.
    const left = await Promise.all([
      watcher.waitFor((m) => m.type === 'room:participant-left' && m.payload.roomId === 'bye-1', 5_000),
      watcher.waitFor((m) => m.type === 'room:participant-left' && m.payload.roomId === 'bye-2', 5_000),
    ]);
    expect(left[0]).toMatchObject({ payload: { participant: entry, reason: 'left' } });
    expect(left[1]).toMatchObject({ payload: { participant: { userId: 'quinn' } } });
  });
});

describe('a close frame without a status code', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ RESUME_GRACE_MS: '15000' });
  });
  afterAll(() => srv.close());

  it('(a browser\u2019s plain ws.close(), seen as 1005) leaves every room at once, not after the grace window', async () => {
    const watcher = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'watcher' }));
    const leaver = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'leaver' }));
    await joined(watcher, 'lobby');
    await joined(leaver, 'lobby');
    await watcher.next('room:participant-joined');
    leaver.ws.close(); // no code: the close frame has an empty body
    const left = await watcher.next('room:participant-left', 1_000);
    expect(left.payload).toMatchObject({
      roomId: 'lobby',
      participant: { userId: 'leaver' },
      reason: 'left',
    });
    // And no ghost session is left in the room to buffer a call for (it would share the room and
    // ring): the leaver shares no room with the watcher any more.
    expect(
      await watcher.request('call:offer', { recipientId: 'leaver', callId: 'x', sdp: 'v=0' }),
    ).toMatchObject({
      type: 'error',
      payload: { code: 'CALL_NOT_ALLOWED' },
    });
    await watcher.close();
  });
});

describe('rooms on a station without ad-hoc rooms', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({}, { ...MANIFEST, allowAdHocRooms: false });
  });
  afterAll(() => srv.close());

  it('refuses a room that is not in the manifest with ROOM_NOT_FOUND; manifest channels still work', async () => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'alice' }));
    const reply = await join(c, 'not-a-channel');
    expect(reply).toMatchObject({ type: 'error', payload: { code: 'ROOM_NOT_FOUND' } });
    expect(reply.correlationId).toBeDefined();
    // Not even an admin can conjure a room that does not exist.
    const admin = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'root', admin: true }));
    expect(await join(admin, 'not-a-channel')).toMatchObject({
      type: 'error',
      payload: { code: 'ROOM_NOT_FOUND' },
    });
    expect((await join(c, 'lobby')).type).toBe('room:state');
    await c.close();
    await admin.close();
  });
});

describe('rooms with RESUME_GRACE_MS=0', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ RESUME_GRACE_MS: '0' });
  });
  afterAll(() => srv.close());

  it('a dropped socket leaves every room with reason "disconnected"', async () => {
    const watcher = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'watcher' }));
    const dropper = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'dropper' }));
    await joined(watcher, 'lobby');
    const s = await joined(dropper, 'lobby');
    await watcher.next('room:participant-joined');
    dropper.ws.terminate();
    const left = await watcher.next('room:participant-left', 2_000);
    expect(left.payload).toEqual({
      roomId: 'lobby',
      participant: s.payload.participants.find((p) => p.userId === 'dropper'),
      reason: 'disconnected',
    });
    await watcher.close();
  });
});
