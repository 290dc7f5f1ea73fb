/**
 * The token issuer signs HS256 on node:crypto (an HS256 node never loads jose): its tokens must be
 * the very tokens jose's SignJWT wrote (same header, same claims in the same order, same
 * signature), and verify with jose and with Parley's own verifier; RS256 and ES256 still sign on
 * jose (the token CLI with a private key).
 */
import { createSecretKey, generateKeyPairSync } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { TokenIssuer, type IssueOptions } from '../../src/server/auth/token-issuer.js';
import { TokenVerifier } from '../../src/server/auth/token-verifier.js';
import type { AuthConfig } from '../../src/server/config/env.js';

const SECRET = 'token-issuer-test-secret-0123456789abcdef';

function auth(over: Partial<AuthConfig>): AuthConfig {
  return {
    alg: 'HS256',
    secret: SECRET,
    clockToleranceS: 5,
    allowTokensWithoutExp: false,
    inBandAuth: true,
    legacyTokenSubprotocol: false,
    ...over,
  } as AuthConfig;
}

describe('TokenIssuer', () => {
  const cases: { claims: { sub: string } & Record<string, unknown>; opts: IssueOptions }[] = [
    { claims: { sub: 'alice' }, opts: {} },
    { claims: { sub: 'bob', name: 'Bob ✓', rooms: ['a', 'b'], canPublish: false }, opts: { ttlS: 60 } },
    {
      claims: { sub: 'carol', pttPriority: 3, admin: true },
      opts: { ttlS: 5, issuer: 'https://issuer.example', audience: 'parley' },
    },
  ];

  it.each(cases)('HS256: the token jose wrote, byte for byte ($claims.sub)', async ({ claims, opts }) => {
    const before = Math.floor(Date.now() / 1000);
    const token = await new TokenIssuer({ secret: SECRET }).issue(claims, opts);
    const after = Math.floor(Date.now() / 1000);
    const key = createSecretKey(Buffer.from(SECRET));
    const { payload, protectedHeader } = await jwtVerify(token, key, { algorithms: ['HS256'] });
    expect(protectedHeader).toEqual({ alg: 'HS256', typ: 'JWT' });
    const iat = payload.iat as number;
    // Issued now: between the seconds read before and after.
    expect(iat).toBeGreaterThanOrEqual(before);
    expect(iat).toBeLessThanOrEqual(after);
    expect(payload.exp).toBe(iat + (opts.ttlS ?? 3600));
    // jose's SignJWT with the same claims and times: the same three parts.
    const { sub, ...rest } = claims;
    let jose = new SignJWT(rest)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + (opts.ttlS ?? 3600));
    if (opts.issuer) jose = jose.setIssuer(opts.issuer);
    if (opts.audience) jose = jose.setAudience(opts.audience);
    expect(token).toBe(await jose.sign(key));
    // And Parley's verifier takes it, with its claims.
    const verifier = await TokenVerifier.create(auth({ issuer: opts.issuer, audience: opts.audience }));
    expect(await verifier.verify(token)).toMatchObject({ ok: true, identity: { userId: sub } });
  });

  it('a token signed with another secret is refused', async () => {
    const token = await new TokenIssuer({ secret: `${SECRET}-other` }).issue({ sub: 'mallory' });
    const verifier = await TokenVerifier.create(auth({}));
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it.each(['RS256', 'ES256'] as const)('%s signs on jose and verifies with the public key', async (alg) => {
    const { privateKey, publicKey } =
      alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issuer = new TokenIssuer({
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      alg,
    });
    const token = await issuer.issue({ sub: 'dave', name: 'Dave' }, { ttlS: 120 });
    expect(decodeProtectedHeader(token)).toEqual({ alg, typ: 'JWT' });
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const verifier = await TokenVerifier.create(auth({ alg, secret: undefined, publicKey: pem }));
    expect(await verifier.verify(token)).toMatchObject({
      ok: true,
      identity: { userId: 'dave', name: 'Dave' },
    });
    // The algorithm is pinned: the same token offered to an HS256 verifier is refused.
    expect(await (await TokenVerifier.create(auth({}))).verify(token)).toEqual({
      ok: false,
      reason: 'bad-algorithm',
    });
  });
});
