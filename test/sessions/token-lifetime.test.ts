import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAs, TestClient } from '../helpers/client.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 13, Medium 4 (an expired JWT kept full access on a live connection) and Medium 3 (narrower
 * grants were ignored on refresh and resume). The server's clock is a FakeClock: token lifetimes
 * pass in microseconds, nothing sleeps. Tokens are real JWTs, verified against the real time, so
 * the fake clock starts at the real now.
 */
describe('token lifetime on live connections', () => {
  let srv: TestServer;
  let clock: FakeClock;
  let clients: TestClient[] = [];
  const LEAD_MS = 60_000;
  const TOLERANCE_S = 5;
  beforeAll(async () => {
    clock = new FakeClock(Date.now());
    srv = await startServer(
      { AUTH_EXPIRING_LEAD_MS: String(LEAD_MS), JWT_CLOCK_TOLERANCE_S: String(TOLERANCE_S) },
      {},
      { clock },
    );
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    clients = [];
  });
  afterAll(() => srv.close());

  /** Each client's token `exp`, in ms: tokens are issued at the real time, in whole seconds. */
  const expOf = new Map<TestClient, number>();
  async function connect(
    sub: string,
    ttlS: number,
    claims: Record<string, unknown> = {},
  ): Promise<TestClient> {
    const token = await srv.token({ sub, ...claims }, { ttlS });
    const c = await TestClient.connect(srv.wsUrl, token);
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number };
    expOf.set(c, payload.exp * 1_000);
    clients.push(c);
    return c;
  }
  /** Advances the server's clock to `ms` after `from`. */
  const at = (from: number, ms: number) => clock.advance(Math.max(0, from + ms - clock.now()));

  it('auth:expiring comes the lead time before exp; a refresh for the same user keeps the connection, the user beside it who did not refresh is closed with 4401 at exp', async () => {
    const start = clock.now();
    const refresher = await connect('ref', 120);
    const idle = await connect('idle', 120);
    const longLived = await connect('long', 3_600);

    // Two tokens issued a moment apart can straddle a second: each is timed by its own exp.
    const refExp = expOf.get(refresher) as number;
    const idleExp = expOf.get(idle) as number;
    expect(refExp).toBeGreaterThan(start + 119_000);
    await at(refExp, -LEAD_MS - 2_000);
    await refresher.expectNothing((m) => m.type === 'auth:expiring', 50);
    await at(refExp, -LEAD_MS + 1_000);
    const warning = await refresher.next('auth:expiring');
    expect(warning.payload.expiresAt).toBe(refExp);
    expect(warning.payload.expiresInMs).toBe(LEAD_MS);
    await at(idleExp, -LEAD_MS + 1_000);
    expect((await idle.next('auth:expiring')).payload.expiresAt).toBe(idleExp);

    // The refresher answers with a fresh token for the same user.
    const fresh = await srv.token({ sub: 'ref' }, { ttlS: 3_600 });
    expect(await refresher.request('auth:request', { token: fresh })).toMatchObject({
      type: 'auth:response',
      payload: { userId: 'ref' },
    });

    // At exp both are still connected (the clock tolerance), past it only the refresher is.
    await at(idleExp, 0);
    expect((await idle.request('ping')).type).toBe('pong');
    await at(idleExp, TOLERANCE_S * 1_000 + 1);
    const closed = await idle.closed;
    expect(closed.code).toBe(4401);
    expect(idle.received.some((m) => m.type === 'error' && m.payload.code === 'UNAUTHORIZED')).toBe(true);
    expect((await refresher.request('ping')).type).toBe('pong');
    expect((await longLived.request('ping')).type).toBe('pong');
    await longLived.expectNothing((m) => m.type === 'auth:expiring', 0);
    expect(srv.logs.some((l) => l.msg === 'token expired on a live connection' && l.userId === 'idle')).toBe(
      true,
    );
  });

  it('a refresh with another user’s token is FORBIDDEN, one with a bad token UNAUTHORIZED; neither extends the connection', async () => {
    const c = await connect('ann', 90);
    const exp = expOf.get(c) as number;
    const other = await srv.token({ sub: 'eve' }, { ttlS: 3_600 });
    expect(await c.request('auth:request', { token: other })).toMatchObject({
      type: 'error',
      payload: { code: 'FORBIDDEN' },
    });
    expect(await c.request('auth:request', { token: 'not.a.jwt' })).toMatchObject({
      type: 'error',
      payload: { code: 'UNAUTHORIZED' },
    });
    expect((await c.request('ping')).type).toBe('pong'); // still connected, still ann
    await at(exp, TOLERANCE_S * 1_000 + 1);
    expect((await c.closed).code).toBe(4401);
  });
});

describe('grants hold for the whole session', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    srv = await startServer({ RESUME_GRACE_MS: '10000' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  it('an auth:request refresh with narrower grants leaves the rooms no longer allowed and releases a floor held without the right to publish', async () => {
    const u = await connectAs(srv, clients, 'narrow', { rooms: ['lobby', 'dispatch'] });
    const watcher = await connectAs(srv, clients, 'watch1');
    for (const roomId of ['lobby', 'dispatch']) {
      expect((await u.request('room:join', { roomId })).type).toBe('room:state');
      expect((await watcher.request('room:join', { roomId })).type).toBe('room:state');
    }
    expect((await u.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    await watcher.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'narrow');

    // Now only the lobby, and listen-only.
    const narrower = await srv.token({
      sub: 'narrow',
      name: 'NARROW',
      rooms: ['lobby', 'field-ops'],
      canPublish: false,
    });
    expect((await u.request('auth:request', { token: narrower })).type).toBe('auth:response');
    const reduced = await u.next('auth:grants-reduced');
    expect(reduced.payload).toEqual({ rooms: ['dispatch'], publishing: true, closedProducers: [] });
    const left = await watcher.waitFor(
      (m) => m.type === 'room:participant-left' && m.payload.roomId === 'dispatch',
    );
    expect(left).toMatchObject({ payload: { participant: { userId: 'narrow' } } });
    await watcher.waitFor(
      (m) =>
        m.type === 'ptt:speaker-changed' && m.payload.roomId === 'dispatch' && m.payload.speaker === null,
    );
    // What the new token allows still works; what it does not is refused.
    expect((await u.request('room:join', { roomId: 'dispatch' })).payload).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect((await u.request('ptt:start', { roomId: 'field-ops' })).type).toBe('error');
    expect((await u.request('room:leave', { roomId: 'lobby' })).type).toBe('room:left');
    // The watcher beside it was never disturbed.
    expect(watcher.received.filter((m) => m.type === 'error')).toEqual([]);
  });

  it('a refresh with the same grants tells nothing', async () => {
    const u = await connectAs(srv, clients, 'same', { rooms: ['lobby'] });
    expect((await u.request('room:join', { roomId: 'lobby' })).type).toBe('room:state');
    const again = await srv.token({ sub: 'same', name: 'SAME', rooms: ['lobby'] });
    expect((await u.request('auth:request', { token: again })).type).toBe('auth:response');
    await u.expectNothing((m) => m.type === 'auth:grants-reduced', 150);
  });

  it('session:resume with a token that no longer allows a room leaves it: no snapshot for it, and its members see the leave', async () => {
    const first = new TestClient(srv.wsUrl, [], {
      headers: { authorization: `Bearer ${await srv.token({ sub: 'res', rooms: ['lobby', 'dispatch'] })}` },
    });
    clients.push(first);
    const { resumeToken } = (await first.next('welcome')).payload;
    const watcher = await connectAs(srv, clients, 'watch2');
    for (const roomId of ['lobby', 'dispatch']) {
      expect((await first.request('room:join', { roomId })).type).toBe('room:state');
      expect((await watcher.request('room:join', { roomId })).type).toBe('room:state');
    }
    first.ws.terminate(); // a network drop: the session waits for a resume
    await watcher.expectNothing((m) => m.type === 'room:participant-left', 100);

    const back = new TestClient(srv.wsUrl, [], {
      headers: { authorization: `Bearer ${await srv.token({ sub: 'res', rooms: ['lobby'] })}` },
    });
    clients.push(back);
    await back.next('welcome');
    const resumed = await back.request('session:resume', { resumeToken });
    expect(resumed.type).toBe('session:resumed');
    expect((await back.next('auth:grants-reduced')).payload).toMatchObject({ rooms: ['dispatch'] });
    const snapshot = await back.next('room:state');
    expect(snapshot.payload.roomId).toBe('lobby');
    await back.expectNothing((m) => m.type === 'room:state' && m.payload.roomId === 'dispatch', 150);
    const left = await watcher.waitFor((m) => m.type === 'room:participant-left');
    expect(left.payload).toMatchObject({ roomId: 'dispatch', participant: { userId: 'res' } });
  });
});
