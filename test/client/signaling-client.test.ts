import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  DefaultReconnectPolicy,
  ParleyError,
  SignalingClient,
  type ConnectionState,
  type ReconnectPolicy,
} from '../../src/client/index.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { dropFromServer, nodeWebSocket, record, sdkClient } from './helpers.js';

const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'ops', name: 'Operations', mode: 'conference', maxParticipants: 10 },
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 10 },
  ],
};

/** Reconnects at once, every time: keeps the tests fast and deterministic. */
const immediate: ReconnectPolicy = { nextRetryDelayInMs: ({ attempt }) => (attempt < 20 ? 20 : null) };

describe('SignalingClient against a real server (ws in Node)', () => {
  let srv: TestServer;
  const clients: SignalingClient[] = [];
  const open = async (sub: string, options: Parameters<typeof sdkClient>[2] = {}) => {
    const c = sdkClient(srv, await srv.token({ sub, name: sub.toUpperCase() }), {
      reconnectPolicy: immediate,
      ...options,
    });
    clients.push(c);
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    srv = await startServer(
      { LOG_LEVEL: 'warn', CALL_POLICY: 'any' /* calls between users who share no room */ },
      manifest,
    );
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await srv.close();
  });

  it('authenticates in-band (auth:request), and requests resolve with their typed replies', async () => {
    const states: ConnectionState[] = [];
    const c = sdkClient(srv, await srv.token({ sub: 'alice', name: 'Alice' }));
    clients.push(c);
    c.on('connectionStateChanged', (s) => states.push(s));
    const welcome = await c.connect();
    expect(welcome).toMatchObject({ userId: 'alice', name: 'Alice', protocolVersion: 1 });
    expect(c.sessionId).toBe(welcome.sessionId);
    expect(states).toEqual(['connecting', 'connected']);

    const joined = await c.request('room:join', { roomId: 'ops' });
    expect(joined.type).toBe('room:state');
    expect(joined.payload.participants.map((p) => p.userId)).toEqual(['alice']);
    expect(c.rooms.has('ops')).toBe(true);
    const pong = await c.request('ping', {});
    expect(pong.payload.serverTime).toBeGreaterThan(0);
    await waitUntil(() => c.rttMs !== null, 'a heartbeat round trip');
    // Server and client share this machine's clock, so the estimated offset is off by at most half
    // the round trip it was measured over (server time falls inside it), however slow that was.
    expect(Math.abs(c.serverNow() - Date.now())).toBeLessThanOrEqual(c.rttMs! / 2 + 1);
  });

  it('rejects with one ParleyError carrying the server code and reason', async () => {
    const c = await open('err-a');
    const err = await c.request('room:join', { roomId: 'nowhere' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParleyError);
    expect(err).toMatchObject({ code: 'ROOM_NOT_FOUND', retryable: false });
    expect((err as ParleyError).reason).toMatch(/does not exist|not found/i);
    const ptt = await c.request('ptt:start', { roomId: 'dispatch' }).catch((e: unknown) => e);
    expect(ptt).toMatchObject({ code: 'NOT_IN_ROOM' });
    expect(c.rooms.has('nowhere')).toBe(false);
  });

  it('delivers every other server message as a typed event', async () => {
    const a = await open('ev-a');
    const b = await open('ev-b');
    await a.joinRoom('ops');
    const joined = a.waitFor('room:participant-joined', 2_000);
    await b.joinRoom('ops', 'Bee');
    const [payload, message] = await joined;
    // The token's name, not the displayName the client asked for: the token has one.
    expect(payload.participant).toMatchObject({ userId: 'ev-b', name: 'EV-B' });
    expect(payload.participant.nameVerified).toBeUndefined();
    expect(message.type).toBe('room:participant-joined');
    const left = b.waitFor('room:participant-left', 2_000);
    await a.leaveRoom('ops');
    const [gone] = await left;
    expect(gone).toMatchObject({ roomId: 'ops', reason: 'left', participant: { userId: 'ev-a' } });
  });

  it('relays with send(); RECIPIENT_OFFLINE reaches onError', async () => {
    const a = await open('relay-a');
    const b = await open('relay-b');
    const offer = b.waitFor('call:offer', 2_000);
    a.send('call:offer', { recipientId: 'relay-b', callId: 'c1', sdp: 'v=0' });
    const [p] = await offer;
    expect(p).toMatchObject({ senderId: 'relay-a', senderName: 'RELAY-A', callId: 'c1' });
    const err = await new Promise<ParleyError>((resolve) => {
      a.send('call:offer', { recipientId: 'nobody', callId: 'c2', sdp: 'v=0' }, { onError: resolve });
    });
    expect(err.code).toBe('RECIPIENT_OFFLINE');
  });

  it('a drop is resumed: same session, rooms untouched, nobody sees a leave, queued sends delivered', async () => {
    const a = await open('drop-a');
    const b = await open('drop-b');
    await a.joinRoom('ops');
    await b.joinRoom('ops');
    const seenByB = record(b, 'room:participant-left', 'room:participant-joined');
    const seenByA = record(a, 'reconnecting', 'reconnected', 'room:state');
    const session = a.sessionId!;
    const reconnected = a.waitFor('reconnected', 5_000);
    await dropFromServer(srv, session);
    await waitUntil(() => a.state === 'reconnecting', 'A to notice the drop');
    // While reconnecting: sends and requests queue, and go out once the session is back.
    const offer = b.waitFor('call:offer', 5_000);
    expect(a.send('call:offer', { recipientId: 'drop-b', callId: 'queued', sdp: 'v=0' })).toBe(true);
    const ping = a.request('ping', {});
    const [info] = await reconnected;
    expect(info).toMatchObject({ resumed: true, rooms: ['ops'], missedFrames: false });
    expect(a.sessionId).toBe(session);
    expect((await ping).type).toBe('pong');
    expect((await offer)[0]).toMatchObject({ callId: 'queued', senderId: 'drop-a' });
    expect(seenByA.map((e) => e.event)).toEqual(['reconnecting', 'room:state', 'reconnected']);
    await sleep(200); // B must NOT hear of A's drop or return
    expect(seenByB).toEqual([]);
  });

  it('when the session cannot be resumed, it re-joins its rooms on a fresh one', async () => {
    // A token without a name: the displayName it joined with is re-sent (and shown, unverified).
    const a = sdkClient(srv, await srv.token({ sub: 'rejoin-a' }), { reconnectPolicy: immediate });
    clients.push(a);
    await a.connect();
    const b = await open('rejoin-b');
    await a.joinRoom('ops', 'Ay');
    await b.joinRoom('ops');
    const old = a.sessionId!;
    const reconnected = a.waitFor('reconnected', 5_000);
    const seenByB = record(b, 'room:participant-left', 'room:participant-joined');
    await dropFromServer(srv, old);
    // The grace window "expires" on the server before A is back.
    const sessions = srv.server.internalsForTesting.sessions;
    const session = sessions.get(old);
    if (session) await sessions.end(session, 'disconnected');
    const [info] = await reconnected;
    expect(info).toMatchObject({ resumed: false, rooms: ['ops'] });
    expect(a.sessionId).not.toBe(old);
    await waitUntil(() => seenByB.length >= 2, 'B to see A leave and come back');
    expect(
      seenByB.map((e) => [e.event, (e.args[0] as { participant: { name: string } }).participant.name]),
    ).toEqual([
      ['room:participant-left', 'Ay'],
      ['room:participant-joined', 'Ay'],
    ]);
  });

  it('close() is idempotent: one disconnected event, and the server ends the session at once', async () => {
    const a = await open('close-a');
    const b = await open('close-b');
    await a.joinRoom('ops');
    await b.joinRoom('ops');
    const left = b.waitFor('room:participant-left', 2_000);
    const events = record(a, 'disconnected', 'reconnecting');
    const pending = a.request('ping', {}, { timeoutMs: 5_000 });
    a.close();
    a.close();
    a.close();
    expect(events.map((e) => e.event)).toEqual(['disconnected']);
    expect(events[0]?.args[0]).toMatchObject({ code: 'CLOSED' });
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(a.request('ping', {})).rejects.toMatchObject({ code: 'CLOSED' });
    expect((await left)[0]).toMatchObject({ reason: 'left', participant: { userId: 'close-a' } });
  });

  it('an expired token fails fast with UNAUTHORIZED instead of retrying', async () => {
    const expired = await srv.token({ sub: 'late' }, { ttlS: -10 });
    const c = sdkClient(srv, expired);
    clients.push(c);
    await expect(c.connect()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(c.state).toBe('disconnected');
    const forged = sdkClient(srv, (await srv.token({ sub: 'x' })).slice(0, -4) + 'AAAA');
    clients.push(forged);
    await expect(forged.connect()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('past MAX_SESSIONS_PER_USER, all live, connect fails with QUOTA_EXCEEDED (4429) and does not retry', async () => {
    const live: SignalingClient[] = [];
    for (let i = 0; i < 10; i++) live.push(await open('many-devices'));
    const c = sdkClient(srv, await srv.token({ sub: 'many-devices' }), { reconnectPolicy: immediate });
    clients.push(c);
    await expect(c.connect()).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', details: { closeCode: 4429 } });
    expect(c.state).toBe('disconnected');
    // The ten are untouched.
    for (const l of live) expect(l.state).toBe('connected');
    await expect(live[0].request('ping', {})).resolves.toMatchObject({ type: 'pong' });
  });

  it('a token function is called on every (re)connect', async () => {
    let calls = 0;
    const c = new SignalingClient({
      url: srv.wsUrl,
      token: async () => {
        calls++;
        return srv.token({ sub: 'fresh' });
      },
      webSocketFactory: nodeWebSocket,
      reconnectPolicy: immediate,
    });
    clients.push(c);
    await c.connect();
    const back = c.waitFor('reconnected', 5_000);
    await dropFromServer(srv, c.sessionId!);
    await back;
    expect(calls).toBe(2);
  });
});

describe('SignalingClient against servers that misbehave', () => {
  /** Accepts, sends a welcome, then never says another word: the TCP connection stays up. */
  async function silentServer() {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'parley' });
    await new Promise((r) => wss.once('listening', r));
    const state = {
      connections: 0,
      wss,
      url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws`,
    };
    wss.on('connection', (ws) => {
      const connections = ++state.connections;
      ws.send(
        JSON.stringify({
          type: 'welcome',
          timestamp: Date.now(),
          payload: {
            sessionId: `s${connections}`,
            userId: 'u',
            name: 'U',
            protocolVersion: 1,
            serverTime: Date.now(),
            heartbeatIntervalMs: 30_000,
            heartbeatTimeoutMs: 75_000,
            resumeToken: 'r',
            resumeGraceMs: 0,
          },
        }),
      );
    });
    return state;
  }

  it('requests time out with TIMEOUT (retryable); aborting one rejects it at once', async () => {
    const silent = await silentServer();
    const c = new SignalingClient({
      url: silent.url,
      token: 'not-a-jwt',
      webSocketFactory: nodeWebSocket,
      requestTimeoutMs: 150,
    });
    try {
      await c.connect();
      const t0 = performance.now();
      const err = await c.request('room:join', { roomId: 'ops' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TIMEOUT', retryable: true });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      const ac = new AbortController();
      const aborted = c.request('room:join', { roomId: 'ops' }, { signal: ac.signal, timeoutMs: 60_000 });
      ac.abort(new Error('user gave up'));
      await expect(aborted).rejects.toBeInstanceOf(ParleyError);
      expect(c.rooms.size).toBe(0);
    } finally {
      c.close();
      await new Promise((r) => silent.wss.close(r));
    }
  });

  it('a silent server (no pong) is detected by the heartbeat and replaced', async () => {
    const silent = await silentServer();
    const c = new SignalingClient({
      url: silent.url,
      token: 'not-a-jwt',
      webSocketFactory: nodeWebSocket,
      pingIntervalMs: 100,
      pingTimeoutMs: 200,
      reconnectPolicy: immediate,
    });
    try {
      await c.connect();
      const [info] = await c.waitFor('reconnecting', 2_000);
      expect(info.reason).toMatchObject({ code: 'DISCONNECTED' });
      expect(info.reason.reason).toMatch(/heartbeat/);
      await waitUntil(() => silent.connections >= 2, 'a new connection');
    } finally {
      c.close();
      await new Promise((r) => silent.wss.close(r));
    }
  });

  it('after server:shutdown it waits for the hint, then re-joins on the restarted server', async () => {
    let srv = await startServer({ LOG_LEVEL: 'warn', RESUME_GRACE_MS: '15000' }, manifest);
    const port = srv.port;
    const c = sdkClient(srv, await srv.token({ sub: 'restart' }), {
      reconnectPolicy: new DefaultReconnectPolicy({ baseDelayMs: 100, maxDelayMs: 200 }),
    });
    try {
      await c.connect();
      await c.joinRoom('ops');
      const shutdown = c.waitFor('server:shutdown', 5_000);
      const reconnecting = c.waitFor('reconnecting', 5_000);
      await srv.close();
      const [hint] = await shutdown;
      const [info] = await reconnecting;
      expect(info.delayMs).toBeGreaterThanOrEqual(hint.reconnectInMs);
      srv = await startServer({ LOG_LEVEL: 'warn', PORT: String(port) }, manifest);
      const [back] = await c.waitFor('reconnected', 15_000);
      expect(back).toMatchObject({ resumed: false, rooms: ['ops'] });
      const state = await c.request('room:join', { roomId: 'ops' });
      expect(state.payload.participants.map((p) => p.userId)).toEqual(['restart']);
    } finally {
      c.close();
      await srv.close();
    }
  });
});

describe('DefaultReconnectPolicy', () => {
  it('retries the first time almost at once, then backs off exponentially with jitter, then gives up', () => {
    const reason = new ParleyError('DISCONNECTED');
    const lo = new DefaultReconnectPolicy({ random: () => 0, maxElapsedMs: 60_000 });
    const hi = new DefaultReconnectPolicy({ random: () => 1 - 1e-9, maxElapsedMs: 60_000 });
    const at = (p: DefaultReconnectPolicy, attempt: number, elapsedMs = 0) =>
      p.nextRetryDelayInMs({ attempt, elapsedMs, reason });
    expect(at(lo, 0)).toBe(0);
    expect(at(hi, 0)).toBeLessThanOrEqual(100);
    expect([1, 2, 3, 4].map((n) => at(lo, n))).toEqual([250, 500, 1_000, 2_000]);
    expect([1, 2, 3, 4].map((n) => at(hi, n))).toEqual([500, 1_000, 2_000, 4_000]);
    expect(at(hi, 30)).toBeLessThanOrEqual(10_000);
    expect(at(lo, 30)).toBeGreaterThanOrEqual(5_000);
    expect(at(lo, 3, 60_000)).toBeNull();
    expect(lo.nextRetryDelayInMs({ attempt: 0, elapsedMs: 0, reason, serverHintMs: 3_000 })).toBe(3_000);
  });
});
