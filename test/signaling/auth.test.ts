import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server.js';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';

describe('authentication on the upgrade', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ AUTH_TIMEOUT_MS: '400', JWT_ISSUER: 'parley-test', JWT_AUDIENCE: 'parley' });
  });
  afterAll(() => srv.close());

  it('accepts the token from Authorization: Bearer', async () => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'alice', name: 'Alice' }));
    expect(c.ws.protocol).toBe('');
    await c.close();
  });

  it('accepts the token from ?token=', async () => {
    const c = new TestClient(`${srv.wsUrl}?token=${await srv.token({ sub: 'bob' })}`);
    await c.opened;
    const welcome = await c.next('welcome');
    expect(welcome.payload.userId).toBe('bob');
    expect(welcome.payload.name).toBe('bob');
    await c.close();
  });

  it('accepts the token from Sec-WebSocket-Protocol and selects "parley", never the token', async () => {
    const token = await srv.token({ sub: 'carol', name: 'Carol' });
    const c = new TestClient(srv.wsUrl, ['parley', token]);
    await c.opened;
    expect(c.ws.protocol).toBe('parley');
    expect((await c.next('welcome')).payload.userId).toBe('carol');
    await c.close();
  });

  it('uses the first location present: a bad header is not rescued by a good query token', async () => {
    const good = await srv.token({ sub: 'alice' });
    const status = await upgradeStatus(`${srv.wsUrl}?token=${good}`, [], {
      headers: { authorization: 'Bearer not-a-jwt' },
    });
    expect(status).toBe(401);
  });

  const bad: [string, () => Promise<string>][] = [
    ['expired', () => srv.token({ sub: 'alice' }, { ttlS: -60 })],
    [
      'not yet valid (nbf in the future)',
      () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('alice')
          .setIssuer('parley-test')
          .setAudience('parley')
          .setNotBefore(Math.floor(Date.now() / 1000) + 600)
          .sign(new TextEncoder().encode(TEST_SECRET)),
    ],
    [
      'signed with another secret',
      () =>
        new TokenIssuer({ secret: 'another-secret-0123456789' }).issue(
          { sub: 'alice' },
          { issuer: 'parley-test', audience: 'parley' },
        ),
    ],
    ['wrong audience', () => srv.token({ sub: 'alice' }, { audience: 'someone-else' })],
    ['wrong issuer', () => srv.token({ sub: 'alice' }, { issuer: 'evil' })],
    [
      'alg none',
      () =>
        Promise.resolve(
          new UnsecuredJWT({ sub: 'alice', iss: 'parley-test', aud: 'parley' })
            .setExpirationTime('1h')
            .encode(),
        ),
    ],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await srv.token({ sub: 'alice' })).split('.');
        const forged = Buffer.from(
          JSON.stringify({ sub: 'admin', admin: true, iss: 'parley-test', aud: 'parley', exp: 9e9 }),
        ).toString('base64url');
        return `${h}.${forged}.${s}`;
      },
    ],
    ['without exp (it would never expire; ALLOW_TOKENS_WITHOUT_EXP is off)', () => signedWithoutExp()],
    ['garbage', () => Promise.resolve('garbage')],
    ['empty sub claim', () => srv.token({ sub: '' })],
  ];
  for (const [what, make] of bad) {
    it(`refuses a token that is ${what} with 401 before the upgrade (header, query and subprotocol)`, async () => {
      const token = await make();
      expect(await upgradeStatus(srv.wsUrl, [], { headers: { authorization: `Bearer ${token}` } })).toBe(401);
      expect(await upgradeStatus(`${srv.wsUrl}?token=${encodeURIComponent(token)}`)).toBe(401);
      if (/^[\w.-]+$/.test(token)) expect(await upgradeStatus(srv.wsUrl, ['parley', token])).toBe(401);
    });
  }

  it('never logs a token, even a refused one', async () => {
    const token = await srv.token({ sub: 'alice' }, { ttlS: -60 });
    await upgradeStatus(srv.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    const good = await srv.token({ sub: 'alice' });
    const c = await TestClient.connect(srv.wsUrl, good);
    await c.close();
    expect(srv.logText()).not.toContain(token.split('.')[2]);
    expect(srv.logText()).not.toContain(good.split('.')[2]);
    expect(srv.logs.some((l) => l.reason === 'expired')).toBe(true);
  });

  it('answers 404 for an upgrade on another path', async () => {
    expect(await upgradeStatus(srv.wsUrl.replace('/ws', '/other'))).toBe(404);
  });

  describe('in-band auth:request', () => {
    it('authenticates a connection that came without a token', async () => {
      const c = new TestClient(srv.wsUrl);
      await c.opened;
      const reply = await c.request('auth:request', {
        token: await srv.token({ sub: 'dave', name: 'Dave' }),
      });
      expect(reply).toMatchObject({ type: 'auth:response', payload: { userId: 'dave', name: 'Dave' } });
      expect((await c.next('welcome')).payload.userId).toBe('dave');
      const pong = await c.request('ping');
      expect(pong.type).toBe('pong');
      await c.close();
    });

    it('refuses everything but auth:request before authentication', async () => {
      const c = new TestClient(srv.wsUrl);
      await c.opened;
      const reply = await c.request('room:join', { roomId: 'lobby' });
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'UNAUTHORIZED' } });
      await c.close();
    });

    it('closes with 4401 when no auth:request arrives before the deadline', async () => {
      const c = new TestClient(srv.wsUrl);
      await c.opened;
      const t0 = Date.now();
      const { code } = await c.closed;
      expect(code).toBe(4401);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      expect(c.received.find((m) => m.type === 'welcome')).toBeUndefined();
    });

    it('closes with 4401 after a bad in-band token', async () => {
      const c = new TestClient(srv.wsUrl);
      await c.opened;
      const reply = await c.request('auth:request', { token: await srv.token({ sub: 'x' }, { ttlS: -60 }) });
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'UNAUTHORIZED' } });
      expect((await c.closed).code).toBe(4401);
    });

    it('lets a live connection refresh its token for the same user, not switch users', async () => {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'erin' }));
      const same = await c.request('auth:request', {
        token: await srv.token({ sub: 'erin', name: 'Erin 2' }),
      });
      expect(same).toMatchObject({ type: 'auth:response', payload: { userId: 'erin', name: 'Erin 2' } });
      const other = await c.request('auth:request', { token: await srv.token({ sub: 'mallory' }) });
      expect(other).toMatchObject({ type: 'error', payload: { code: 'FORBIDDEN' } });
      expect((await c.request('ping')).type).toBe('pong');
      await c.close();
    });
  });
});

/** A correctly signed token for `alice` that carries no `exp`. */
const signedWithoutExp = () =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setIssuer('parley-test')
    .setAudience('parley')
    .setIssuedAt()
    .sign(new TextEncoder().encode(TEST_SECRET));

describe('tokens without exp', () => {
  let strict: TestServer;
  let lenient: TestServer;
  beforeAll(async () => {
    const env = { JWT_ISSUER: 'parley-test', JWT_AUDIENCE: 'parley' };
    strict = await startServer(env);
    lenient = await startServer({ ...env, ALLOW_TOKENS_WITHOUT_EXP: 'true' });
  });
  afterAll(() => Promise.all([strict.close(), lenient.close()]));

  it('are refused by default, with the reason in the log only', async () => {
    const token = await signedWithoutExp();
    expect(await upgradeStatus(strict.wsUrl, [], { headers: { authorization: `Bearer ${token}` } })).toBe(
      401,
    );
    expect(strict.logs.some((l) => l.reason === 'no-expiry')).toBe(true);
    // A token with exp from the same issuer still works.
    const c = await TestClient.connect(strict.wsUrl, await strict.token({ sub: 'alice' }));
    await c.close();
  });

  it('are accepted when ALLOW_TOKENS_WITHOUT_EXP=true', async () => {
    const c = await TestClient.connect(lenient.wsUrl, await signedWithoutExp());
    await c.close();
  });
});

describe('asymmetric algorithms are pinned', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`${alg}: accepts a token signed with the matching private key, refuses HS256 signed with the public key`, async () => {
      const { publicKey, privateKey } =
        alg === 'RS256'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const srv = await startServer({ JWT_SECRET: '', JWT_ALG: alg, JWT_PUBLIC_KEY: publicPem });
      try {
        const good = await new TokenIssuer({ privateKeyPem: privatePem, alg }).issue({ sub: 'alice' });
        const c = await TestClient.connect(srv.wsUrl, good);
        await c.close();
        // Algorithm confusion: HS256 "signed" with the public key text as the HMAC secret.
        const confused = await new TokenIssuer({ secret: publicPem }).issue({ sub: 'alice' });
        expect(await upgradeStatus(srv.wsUrl, [], { headers: { authorization: `Bearer ${confused}` } })).toBe(
          401,
        );
      } finally {
        await srv.close();
      }
    });
  }
});
