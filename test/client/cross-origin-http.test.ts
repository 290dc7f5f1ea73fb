import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devToken, IceServerProvider, type StationInfo } from '../../src/client/index.js';
import { startE2eServer, type E2eServer } from '../e2e/harness.js';

const APP_ORIGIN = 'http://127.0.0.1:5173';

interface DevTokenBody {
  token: string;
  userId: string;
  name: string;
  expiresAt: number;
  secret: string;
}

/**
 * A page on another origin imports /sdk/parley.js and signs in with /api/dev-token: the browser
 * shows it nothing (not even the status) unless every answer carries Access-Control-Allow-Origin.
 */
describe('cross-origin: /sdk/*, /api/dev-token and /ws answer with CORS on every status', () => {
  let srv: E2eServer;
  let prod: E2eServer;
  beforeAll(async () => {
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0', CORS_ORIGIN: APP_ORIGIN }, devTokens: true });
    prod = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0', CORS_ORIGIN: APP_ORIGIN } });
  });
  afterAll(async () => {
    await srv.close();
    await prod.close();
  });

  const get = (base: E2eServer, path: string, init: RequestInit = {}) =>
    fetch(`${base.httpUrl}${path}`, { ...init, headers: { origin: APP_ORIGIN, ...init.headers } });
  const acao = (res: Response) => res.headers.get('access-control-allow-origin');

  it('/sdk/parley.js: 200, 304 and HEAD carry it', async () => {
    const ok = await get(srv, '/sdk/parley.js');
    expect(ok.status).toBe(200);
    expect(acao(ok)).toBe(APP_ORIGIN);
    expect(await ok.text()).toMatch(/export\s*{[^}]*ParleyClient/);
    const etag = ok.headers.get('etag')!;
    const notModified = await get(srv, '/sdk/parley.js', { headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    expect(acao(notModified)).toBe(APP_ORIGIN);
    const head = await get(srv, '/sdk/parley.js', { method: 'HEAD' });
    expect([head.status, acao(head)]).toEqual([200, APP_ORIGIN]);
  });

  it('/sdk/*: 404, 405 and the preflight carry it too, with the usual error body', async () => {
    const missing = await get(srv, '/sdk/nope.js');
    expect([missing.status, acao(missing)]).toEqual([404, APP_ORIGIN]);
    expect(await missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const directory = await get(srv, '/sdk/');
    expect([directory.status, acao(directory)]).toEqual([404, APP_ORIGIN]);
    const post = await get(srv, '/sdk/parley.js', { method: 'POST', body: '{}' });
    expect([post.status, acao(post)]).toEqual([405, APP_ORIGIN]);
    const preflight = await get(srv, '/sdk/parley.js', { method: 'OPTIONS' });
    expect([preflight.status, acao(preflight)]).toEqual([204, APP_ORIGIN]);
  });

  it('/api/dev-token: the token JSON, its id parameter, and every refusal carry it', async () => {
    const first = await get(srv, '/api/dev-token?name=Alice');
    expect([first.status, acao(first)]).toEqual([200, APP_ORIGIN]);
    const body = (await first.json()) as DevTokenBody;
    expect(body).toMatchObject({ name: 'Alice', userId: expect.stringMatching(/^dev-alice-/) as unknown });
    expect(body.token.split('.')).toHaveLength(3);
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    // `id` with the first mint's `secret` mints again for the same development user; without it,
    // 403 (nobody becomes another demo user by their public id), with CORS as well.
    const again = (await (
      await get(srv, `/api/dev-token?name=Alice&id=${body.userId}&secret=${body.secret}`)
    ).json()) as DevTokenBody;
    expect(again.userId).toBe(body.userId);
    const stolen = await get(srv, `/api/dev-token?name=Alice&id=${body.userId}`);
    expect([stolen.status, acao(stolen)]).toEqual([403, APP_ORIGIN]);

    for (const [path, status, code] of [
      ['/api/dev-token', 400, 'INVALID_MESSAGE'], // no name
      ['/api/dev-token?name=Bob&id=alice', 400, 'INVALID_MESSAGE'], // not a dev- id
    ] as const) {
      const res = await get(srv, path);
      expect([res.status, acao(res)], path).toEqual([status, APP_ORIGIN]);
      expect(await res.json()).toMatchObject({ error: { code } });
    }
    const preflight = await get(srv, '/api/dev-token?name=A', { method: 'OPTIONS' });
    expect([preflight.status, acao(preflight)]).toEqual([204, APP_ORIGIN]);
  });

  it('/api/station and /api/turn-credentials: errors too (405, 401)', async () => {
    const post = await get(srv, '/api/station', { method: 'POST', body: '{}' });
    expect([post.status, acao(post)]).toEqual([405, APP_ORIGIN]);
    const turn = await get(srv, '/api/turn-credentials');
    expect([turn.status, acao(turn)]).toEqual([401, APP_ORIGIN]);
    const turnPost = await get(srv, '/api/turn-credentials', { method: 'POST', body: '{}' });
    expect([turnPost.status, acao(turnPost)]).toEqual([405, APP_ORIGIN]);
  });

  it('devToken(): one call mints a user, the next (a reconnect) mints for the same user; a refusal names the cause', async () => {
    const token = devToken(srv.httpUrl, 'Alice');
    const sub = (jwt: string) =>
      (JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { sub: string }).sub;
    const first = sub(await token());
    expect(first).toMatch(/^dev-alice-/);
    expect(sub(await token())).toBe(first);
    // Accepted URL forms work here too; reusing an id needs its secret.
    const minted = (await (await get(srv, '/api/dev-token?name=Carol')).json()) as DevTokenBody;
    const wsForm = `${srv.httpUrl.replace('http', 'ws')}/ws`;
    expect(sub(await devToken(wsForm, 'Carol', { id: minted.userId, secret: minted.secret })())).toBe(
      minted.userId,
    );
    await expect(devToken(wsForm, 'Mallory', { id: first })()).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      reason: expect.stringContaining('HTTP 403') as unknown,
    });
    await expect(devToken(srv.httpUrl, '')()).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      reason: expect.stringContaining('HTTP 400: name must be 1-64 characters') as unknown,
    });
  });

  it('/api/dev-token is 404 without development tokens (production), still with CORS', async () => {
    const res = await get(prod, '/api/dev-token?name=Alice');
    expect([res.status, acao(res)]).toEqual([404, APP_ORIGIN]);
  });

  it('/ws over plain HTTP: 426 with CORS, so the SDK can tell "endpoint here" from "wrong path"', async () => {
    const res = await get(srv, '/ws');
    expect([res.status, acao(res)]).toEqual([426, APP_ORIGIN]);
    expect(await res.json()).toMatchObject({ error: { code: 'UPGRADE_REQUIRED' } });
  });

  it('the demo page and its assets stay same-origin only', async () => {
    const page = await get(srv, '/');
    expect(page.status).toBe(200);
    expect(acao(page)).toBeNull();
  });
});

describe('a server without TURN: the station says so and the SDK does not ask', () => {
  let srv: E2eServer;
  beforeAll(async () => {
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' } });
  });
  afterAll(() => srv.close());

  it('station.turn is false, and iceServers come from STUN alone with no /api/turn-credentials request', async () => {
    const station = (await (await fetch(`${srv.httpUrl}/api/station`)).json()) as StationInfo;
    expect(station.turn).toBe(false);
    const requested: string[] = [];
    const provider = new IceServerProvider({
      baseUrl: srv.httpUrl,
      token: await srv.token('alice', 'Alice'),
      // The real fetch, recording where it goes.
      fetch: (input, init) => {
        requested.push(new URL(input instanceof Request ? input.url : input.toString()).pathname);
        return fetch(input, init);
      },
    });
    expect(await provider.get()).toEqual([{ urls: station.stunUrls }]);
    expect(await provider.get()).toEqual([{ urls: station.stunUrls }]);
    expect(requested).toEqual(['/api/station']);
  });
});
