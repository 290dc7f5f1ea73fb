import { createHmac } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { Hs256Verifier, type Hs256Options } from '../../src/server/auth/hs256.js';
import { classify } from '../../src/server/auth/jose-verifier.js';
import { TokenVerifier } from '../../src/server/auth/token-verifier.js';
import type { AuthConfig } from '../../src/server/config/env.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The HS256 fast path (node:crypto HMAC) against jose's jwtVerify with the options the token
 * verifier used to give it: over a corpus of well-formed, tampered and hand-built tokens and
 * every configuration that changes a check, both must accept the same tokens with the same claims
 * and refuse the others for the same reason.
 */

const SECRET = 'test-secret-of-at-least-32-characters!';
const KEY = new TextEncoder().encode(SECRET);
const clock = new FakeClock(Date.UTC(2026, 5, 1, 12, 0, 0));
const NOW = Math.floor(clock.now() / 1000);

const b64 = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const sign = (input: string, secret = SECRET): string =>
  createHmac('sha256', secret).update(input).digest('base64url');
/** A token from raw header and payload segments, signed over exactly what it carries. */
const raw = (h: string, p: string, secret = SECRET): string => `${h}.${p}.${sign(`${h}.${p}`, secret)}`;
const hand = (header: unknown, payload: unknown, secret = SECRET): string =>
  raw(b64(header), b64(payload), secret);

async function josed(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(KEY);
}

/** Claims sets that exercise every check: presence, types, edges of exp/nbf with and without leeway. */
function claimSets(): Record<string, unknown>[] {
  const sets: Record<string, unknown>[] = [
    { sub: 'alice', exp: NOW + 3600 },
    { sub: 'alice' },
    { sub: 'alice', exp: 'soon' },
    { sub: 'alice', exp: null },
    { sub: 'alice', exp: NOW + 60, iat: 'yesterday' },
    { sub: 'alice', exp: NOW + 60, iat: NOW - 10 },
    { sub: 'alice', exp: NOW + 60, nbf: 'later' },
    { sub: 'alice', exp: NOW + 60, iss: 'parley-test', aud: 'parley' },
    { sub: 'alice', exp: NOW + 60, iss: 'other', aud: 'parley' },
    { sub: 'alice', exp: NOW + 60, iss: 'parley-test', aud: ['x', 'parley'] },
    { sub: 'alice', exp: NOW + 60, iss: 'parley-test', aud: ['x'] },
    { sub: 'alice', exp: NOW + 60, iss: 'parley-test', aud: 7 },
    { sub: 'alice', exp: NOW + 60, iss: ['parley-test'], aud: 'parley' },
    { sub: 'alice', exp: NOW + 60, aud: 'parley' },
    { sub: 'alice', exp: NOW + 60, iss: 'parley-test' },
    { exp: NOW + 60 },
    { sub: 'alice', exp: NOW + 60, name: 'Alice', rooms: ['a', 'b'], admin: true },
  ];
  // exp and nbf around now, either side of a 30 s tolerance.
  for (const d of [-31, -30, -29, -1, 0, 1, 29, 30, 31, 0.5, -0.5]) {
    sets.push({ sub: 'alice', exp: NOW + d, iss: 'parley-test', aud: 'parley' });
    sets.push({ sub: 'alice', exp: NOW + 3600, nbf: NOW + d, iss: 'parley-test', aud: 'parley' });
  }
  return sets;
}

/** Tokens that are not a plain signed JWS: headers, crit, encodings, signatures, shapes. */
function handBuilt(): string[] {
  const ok = { sub: 'alice', exp: NOW + 60, iss: 'parley-test', aud: 'parley' };
  const good = hand({ alg: 'HS256', typ: 'JWT' }, ok);
  const [h, p, s] = good.split('.') as [string, string, string];
  return [
    good,
    hand({ alg: 'none' }, ok),
    `${b64({ alg: 'none' })}.${b64(ok)}.`,
    hand({ alg: 'RS256' }, ok),
    hand({ alg: 'HS512' }, ok),
    hand({ alg: 'hs256' }, ok),
    hand({ alg: '' }, ok),
    hand({ typ: 'JWT' }, ok),
    hand({ alg: 7 }, ok),
    hand({ alg: 'HS256', crit: ['b64'], b64: true }, ok),
    hand({ alg: 'HS256', crit: ['b64', 'b64'], b64: true }, ok),
    hand({ alg: 'HS256', crit: ['b64'], b64: 'yes' }, ok),
    hand({ alg: 'HS256', crit: ['b64'] }, ok),
    hand({ alg: 'HS256', crit: ['exp'], exp: 1 }, ok),
    hand({ alg: 'HS256', crit: [] }, ok),
    hand({ alg: 'HS256', crit: 'b64', b64: true }, ok),
    hand({ alg: 'RS256', crit: ['zzz'] }, ok),
    raw(b64({ alg: 'HS256', crit: ['b64'], b64: false }), JSON.stringify(ok).replace(/[{}"]/g, '')),
    raw(b64({ alg: 'HS256', crit: ['b64'], b64: false }), 'plain'),
    hand({ alg: 'HS256' }, ok, 'another-secret-of-at-least-32-chars'),
    hand({ alg: 'HS256' }, [ok]),
    hand({ alg: 'HS256' }, 'a string'),
    hand({ alg: 'HS256' }, null),
    hand({ alg: 'HS256' }, 42),
    hand([{ alg: 'HS256' }], ok),
    raw(b64({ alg: 'HS256' }), b64('{"sub":"alice",')),
    raw(b64('{"alg":"HS256"'), b64(ok)),
    raw(b64({ alg: 'HS256' }), Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url')),
    raw(Buffer.from([0xc3, 0x28]).toString('base64url'), b64(ok)),
    // Encodings: padding, whitespace, the base64 (not base64url) alphabet, a lone character.
    raw(`${h}=`, p),
    raw(`${h}==`, p),
    raw(`${h} `, p),
    raw(h, `${p}\n`),
    raw(h.replace(/-/g, '+').replace(/_/g, '/'), p),
    raw(`${h}A`, p),
    raw(h, `${p}é`),
    `${h}.${p}.${s}=`,
    `${h}.${p}.${s}==`,
    `${h}.${p}.${s} `,
    `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}`,
    `${h}.${p}.${s}A`,
    `${h}.${p}.${s.slice(0, -1)}`,
    `${h}.${p}.${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`,
    `${h}.${p}.`,
    `${h}.${p}.${s}.`,
    `${h}.${p}`,
    `${h}..${s}`,
    `.${p}.${s}`,
    '',
    '..',
    'not-a-jwt',
    `${h}.${p}.${s}é`,
    // A payload changed after signing keeps the old signature.
    `${h}.${b64({ ...ok, sub: 'mallory' })}.${s}`,
    `${b64({ alg: 'HS256', kid: 'x' })}.${p}.${s}`,
  ];
}

interface Outcome {
  ok: boolean;
  reason?: string;
  payload?: unknown;
}

async function viaJose(token: string, opts: Hs256Options): Promise<Outcome> {
  try {
    const { payload } = await jwtVerify(token, KEY, {
      algorithms: ['HS256'],
      clockTolerance: opts.clockToleranceS,
      ...(opts.requireExp ? { requiredClaims: ['exp'] } : {}),
      ...(opts.issuer ? { issuer: opts.issuer } : {}),
      ...(opts.audience ? { audience: opts.audience } : {}),
      currentDate: new Date(clock.now()),
    });
    return { ok: true, payload };
  } catch (err) {
    return { ok: false, reason: classify(err) };
  }
}

/**
 * `shared`: one verifier for a whole sequence of tokens, as the server has. It remembers the last
 * header it accepted, so a header followed by a different one (good or bad) is exercised too.
 */
function viaNode(token: string, opts: Hs256Options, shared?: Hs256Verifier): Outcome {
  const r = (shared ?? new Hs256Verifier(Buffer.from(SECRET), opts)).verify(token, clock.now());
  return r.ok ? { ok: true, payload: r.payload } : { ok: false, reason: r.reason };
}

const CONFIGS: Hs256Options[] = [
  { clockToleranceS: 0, requireExp: true },
  { clockToleranceS: 30, requireExp: true, issuer: 'parley-test', audience: 'parley' },
  { clockToleranceS: 0, requireExp: false, issuer: 'parley-test' },
  { clockToleranceS: 5, requireExp: false, audience: 'parley' },
];

describe('HS256 on node:crypto: the same verdicts as jose', () => {
  it('over signed claim sets, hand-built tokens and every configuration', async () => {
    const tokens = [...handBuilt()];
    for (const claims of claimSets()) {
      tokens.push(await josed(claims));
      tokens.push(await josed(claims, { typ: 'JWT', kid: 'k1' }));
    }
    const seen = new Map<string, number>();
    for (const opts of CONFIGS) {
      const shared = new Hs256Verifier(Buffer.from(SECRET), opts);
      // Forwards, then backwards: each header follows a different one both ways.
      const wants = new Map<string, Outcome>();
      for (const token of tokens) {
        const want = await viaJose(token, opts);
        wants.set(token, want);
        expect({ token, opts, got: viaNode(token, opts) }).toEqual({ token, opts, got: want });
        expect({ token, opts, got: viaNode(token, opts, shared) }).toEqual({ token, opts, got: want });
        const key = want.ok ? 'ok' : want.reason!;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      for (const token of [...tokens].reverse()) {
        expect({ token, opts, got: viaNode(token, opts, shared) }).toEqual({
          token,
          opts,
          got: wants.get(token),
        });
      }
    }
    // The corpus reaches every verdict, so a check that always passed would show here.
    expect([...seen.keys()].sort()).toEqual(
      [
        'bad-algorithm',
        'bad-claims',
        'bad-signature',
        'expired',
        'malformed',
        'no-expiry',
        'not-yet-valid',
        'ok',
      ].sort(),
    );
  });

  it('over generated tokens: random claims, one flipped character', async () => {
    // A fixed-seed generator: the same cases every run.
    let seed = 14;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const values = (): unknown[] => [NOW + rnd(120) - 60, String(NOW), null, true, [NOW], NOW + rnd(7) - 3];
    const opts = CONFIGS[1];
    const shared = new Hs256Verifier(Buffer.from(SECRET), opts);
    for (let i = 0; i < 300; i++) {
      const claims: Record<string, unknown> = { sub: `u${i}` };
      for (const name of ['exp', 'nbf', 'iat', 'iss', 'aud']) {
        if (rnd(3) === 0) continue;
        const pool =
          name === 'iss'
            ? ['parley-test', 'x', 3]
            : name === 'aud'
              ? ['parley', ['parley', 'y'], ['y'], {}]
              : values();
        claims[name] = pool[rnd(pool.length)];
      }
      let token = hand({ alg: 'HS256' }, claims);
      if (rnd(4) === 0) {
        const at = rnd(token.length);
        const chars = 'Aa0-_.=+ ';
        token = token.slice(0, at) + chars[rnd(chars.length)] + token.slice(at + 1);
      }
      const want = await viaJose(token, opts);
      expect({ token, got: viaNode(token, opts) }).toEqual({ token, got: want });
      expect({ token, got: viaNode(token, opts, shared) }).toEqual({ token, got: want });
    }
  });
});

describe('TokenVerifier on HS256', () => {
  const config: AuthConfig = {
    alg: 'HS256',
    secret: SECRET,
    publicKey: undefined,
    clockToleranceS: 0,
    allowTokensWithoutExp: false,
    issuer: 'parley-test',
    audience: 'parley',
    inBandAuth: true,
    legacyTokenSubprotocol: false,
    expiringLeadMs: 60_000,
  };

  it('gives the identity of a good token and checks its time on the injected clock', async () => {
    const fake = new FakeClock(clock.now());
    const verifier = await TokenVerifier.create(config, fake);
    const token = await josed({
      sub: 'alice',
      name: 'Alice',
      exp: NOW + 10,
      iss: 'parley-test',
      aud: 'parley',
    });
    const first = await verifier.verify(token);
    expect(first.ok && first.identity.userId).toBe('alice');
    expect(first.ok && first.identity.name).toBe('Alice');
    await fake.advance(10_000);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses claims the protocol does not accept (no sub) as bad-claims', async () => {
    const verifier = await TokenVerifier.create(config, clock);
    const token = await josed({ exp: NOW + 10, iss: 'parley-test', aud: 'parley' });
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: 'bad-claims' });
  });
});
