import { createHmac } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, type ErrorSpec } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const TURN_SECRET = 'turn-shared-secret-for-tests-7d1f';
const TURN_TTL = 600;
const MANIFEST = {
  name: 'Harbour Ops',
  stunUrls: ['stun:stun.example.org:3478'],
  allowAdHocRooms: false,
  adHocRoom: { mode: 'ptt', maxParticipants: 7 },
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 40, maxTalkMs: 30_000, queue: true },
    { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 12 },
  ],
};

interface ErrorBody {
  error: { code: string; message: string };
}

describe('HTTP API', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(
      {
        TURN_SECRET,
        TURN_URIS: 'turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349',
        TURN_TTL: String(TURN_TTL),
      },
      MANIFEST,
    );
  });
  afterAll(() => srv.close());

  it('GET /health reports ok, uptime, the live connection count and 0 workers', async () => {
    const before = await fetch(`${srv.httpUrl}/health`);
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await before.json()) as Record<string, unknown>;
    // `sfu`: the SFU's capacity (test/media/worker-placement.test.ts); null with the SFU disabled.
    expect(body).toMatchObject({ status: 'ok', connections: 0, workers: 0, state: 'memory', sfu: null });
    expect(Object.keys(body).sort()).toEqual([
      'connections',
      'node',
      'sfu',
      'state',
      'status',
      'uptime',
      'uptimeS',
      'workers',
    ]);
    expect(body.node).toEqual(srv.config.cluster.nodeId);
    expect(typeof body.uptimeS).toBe('number');
    expect(body.uptimeS).toBeGreaterThanOrEqual(0);
    // `uptime`: the same in seconds, the name earlier systems' health checks read (docs/migration.md).
    expect(typeof body.uptime).toBe('number');
    expect(Math.abs((body.uptime as number) - (body.uptimeS as number))).toBeLessThanOrEqual(0.5);

    const c1 = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'alice' }));
    const c2 = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'bob' }));
    expect(
      ((await (await fetch(`${srv.httpUrl}/health`)).json()) as { connections: number }).connections,
    ).toBe(2);
    await c1.close();
    await waitUntil(
      async () =>
        ((await (await fetch(`${srv.httpUrl}/health`)).json()) as { connections: number }).connections === 1,
      '/health counts one connection',
    );
    await c2.close();
  });

  it('GET /metrics exposes connections, messages in by type and errors by code in Prometheus format', async () => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'metrics' }));
    await c.request('ping');
    await c.request('ping');
    await c.request('room:join', { roomId: 'nowhere' }); // ROOM_NOT_FOUND: ad-hoc rooms are off
    const res = await fetch(`${srv.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE parley_connections gauge$/m);
    expect(text).toMatch(/^parley_connections 1$/m);
    expect(text).toMatch(/^parley_messages_in_total\{type="ping"\} 2$/m);
    expect(text).toMatch(/^parley_messages_in_total\{type="room:join"\} 1$/m);
    expect(text).toMatch(/^parley_errors_total\{code="ROOM_NOT_FOUND"\} 1$/m);
    expect(text).toMatch(/^parley_messages_out_total\{type="pong"\} 2$/m);
    expect(text).toMatch(/^# TYPE parley_relay_latency_seconds histogram$/m);
    expect(text).toMatch(/^parley_log_lines_dropped_total 0$/m);
    await c.close();
  });

  it('GET /api/station returns exactly the public part of the manifest', async () => {
    const res = await fetch(`${srv.httpUrl}/api/station`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      name: 'Harbour Ops',
      stunUrls: ['stun:stun.example.org:3478'],
      allowAdHocRooms: false,
      channels: [
        { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 40 },
        { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 12 },
      ],
      turn: true,
    });
    for (const secret of [TURN_SECRET, TEST_SECRET, 'turn.example.org']) expect(text).not.toContain(secret);
  });

  describe('GET /api/turn-credentials', () => {
    const url = () => `${srv.httpUrl}/api/turn-credentials`;

    it('refuses a request without Authorization with 401 UNAUTHORIZED', async () => {
      const res = await fetch(url());
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await res.json()) as ErrorBody).error.code).toBe('UNAUTHORIZED');
    });

    it('refuses a bad or expired token with 401', async () => {
      for (const token of ['not-a-jwt', await srv.token({ sub: 'alice' }, { ttlS: -60 })]) {
        const res = await fetch(url(), { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(401);
        const text = await res.text();
        expect((JSON.parse(text) as ErrorBody).error.code).toBe('UNAUTHORIZED');
        expect(text).not.toContain(token);
      }
      // Only the Authorization header counts: a query token is not accepted here.
      const viaQuery = await fetch(`${url()}?token=${await srv.token({ sub: 'alice' })}`);
      expect(viaQuery.status).toBe(401);
    });

    it('issues TURN REST credentials whose HMAC verifies independently', async () => {
      const res = await fetch(url(), {
        headers: { authorization: `Bearer ${await srv.token({ sub: 'alice' })}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { username: string; password: string; ttl: number; uris: string[] };
      expect(Object.keys(body).sort()).toEqual(['password', 'ttl', 'uris', 'username']);
      expect(body.ttl).toBe(TURN_TTL);
      expect(body.uris).toEqual(['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349']);

      const match = /^(\d+):(.+)$/.exec(body.username);
      expect(match).not.toBeNull();
      const expiry = Number(match![1]);
      expect(match![2]).toBe('alice');
      const nowS = Date.now() / 1000;
      expect(expiry).toBeGreaterThanOrEqual(Math.floor(nowS) + TURN_TTL - 5);
      expect(expiry).toBeLessThanOrEqual(Math.ceil(nowS) + TURN_TTL + 1);

      const expected = createHmac('sha1', TURN_SECRET).update(body.username).digest('base64');
      expect(body.password).toBe(expected);
      expect(srv.logText()).not.toContain(body.password);
      expect(srv.logText()).not.toContain(TURN_SECRET);
    });

    it('never outlive the token that obtained them: the TTL is at most its remaining lifetime (issue 13)', async () => {
      const tokenTtlS = 30; // well under TURN_TTL
      const token = await srv.token({ sub: 'brief' }, { ttlS: tokenTtlS });
      const tokenExpS = (
        JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number }
      ).exp;
      const res = await fetch(url(), { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { username: string; password: string; ttl: number };
      expect(body.ttl).toBeGreaterThan(0);
      expect(body.ttl).toBeLessThanOrEqual(tokenTtlS);
      const expiry = Number(body.username.split(':')[0]);
      expect(expiry).toBeLessThanOrEqual(tokenExpS);
      expect(body.password).toBe(createHmac('sha1', TURN_SECRET).update(body.username).digest('base64'));
      // Beside it, a long-lived token still gets the full TURN_TTL.
      const long = await fetch(url(), {
        headers: { authorization: `Bearer ${await srv.token({ sub: 'long' }, { ttlS: 3_600 })}` },
      });
      expect(((await long.json()) as { ttl: number }).ttl).toBe(TURN_TTL);
    });
  });

  it('answers an unknown path with 404 NOT_FOUND, another method with 405 METHOD_NOT_ALLOWED, and a CORS preflight with 204', async () => {
    const missing = await fetch(`${srv.httpUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('NOT_FOUND');

    const post = await fetch(`${srv.httpUrl}/api/station`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toContain('GET');
    expect(((await post.json()) as ErrorBody).error).toEqual({
      code: 'METHOD_NOT_ALLOWED',
      message: ERRORS.METHOD_NOT_ALLOWED.message,
    });

    const preflight = await fetch(`${srv.httpUrl}/api/turn-credentials`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.org',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');

    // A WebSocket upgrade on another path is refused with a status line and the catalogue's body.
    const elsewhere = await rawUpgrade(srv.port, {}, '/nope');
    expect(elsewhere.responseHead.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    elsewhere.destroy();
    // Every status the catalogue can answer with has a reason phrase for refused upgrades.
    for (const spec of Object.values(ERRORS) as ErrorSpec[]) {
      if (spec.httpStatus !== undefined)
        expect(STATUS_CODES[spec.httpStatus], String(spec.httpStatus)).toBeTruthy();
    }

    // A plain GET on /ws (no upgrade) is told to upgrade.
    const plain = await fetch(`${srv.httpUrl}/ws`);
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(((await plain.json()) as ErrorBody).error).toEqual({
      code: 'UPGRADE_REQUIRED',
      message: ERRORS.UPGRADE_REQUIRED.message,
    });
  });
});

describe('HTTP API without TURN configured', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ CORS_ORIGIN: 'https://app.example.org' });
  });
  afterAll(() => srv.close());

  it('answers /api/turn-credentials with 503 SERVICE_UNAVAILABLE for a valid token (401 still first)', async () => {
    const res = await fetch(`${srv.httpUrl}/api/turn-credentials`, {
      headers: { authorization: `Bearer ${await srv.token({ sub: 'alice' })}` },
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorBody).error.code).toBe('SERVICE_UNAVAILABLE');
    expect((await fetch(`${srv.httpUrl}/api/turn-credentials`)).status).toBe(401);
  });

  it('uses the configured CORS origin', async () => {
    const res = await fetch(`${srv.httpUrl}/api/station`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.org');
  });
});
