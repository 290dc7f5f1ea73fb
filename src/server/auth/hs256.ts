import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HS256 JWT verification on node:crypto's HMAC, with the same checks, in the same order, and the
 * same outcomes as jose's `jwtVerify` with the options the token verifier gives it (jose 6;
 * test/unit/hs256.test.ts runs both over the same tokens). jose reaches HMAC through WebCrypto,
 * a promise and a job per token: ~45 µs against ~5 µs here, which set the connect rate
 * (docs/benchmarks.md). RS256/ES256 stay on jose.
 */

export interface Hs256Options {
  /** Seconds of leeway for `exp` and `nbf`. */
  clockToleranceS: number;
  /** false: a token without `exp` is refused (`no-expiry`). */
  requireExp: boolean;
  issuer?: string;
  audience?: string;
}

/** Why a token failed, in the token verifier's terms; `ok` carries the claims set. */
export type Hs256Result =
  | { ok: true; payload: Record<string, unknown> }
  | {
      ok: false;
      reason:
        | 'expired'
        | 'no-expiry'
        | 'not-yet-valid'
        | 'bad-signature'
        | 'bad-algorithm'
        | 'bad-claims'
        | 'malformed';
    };

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const MALFORMED = { ok: false, reason: 'malformed' } as const;
/** jose decodes the header and the claims set as strict UTF-8. */
const decoder = new TextDecoder('utf-8', { fatal: true });

export class Hs256Verifier {
  readonly #secret: Buffer;
  readonly #opts: Hs256Options;
  /** The last header segment that passed {@link headerOutcome}, and whether its payload is base64url. */
  #lastHeader: string | null = null;
  #lastB64 = true;

  constructor(secret: Buffer, opts: Hs256Options) {
    this.#secret = secret;
    this.#opts = opts;
  }

  /** `nowMs`: the time to check `exp` and `nbf` against (wall clock, ms). */
  verify(token: string, nowMs: number): Hs256Result {
    const parts = token.split('.');
    if (parts.length !== 3) return MALFORMED;
    const [h, p, s] = parts as [string, string, string];
    let b64: boolean;
    if (h === this.#lastHeader) b64 = this.#lastB64;
    else {
      const checked = headerOutcome(h);
      if (typeof checked !== 'boolean') return checked;
      b64 = checked;
      // An issuer signs every token with the same header: its checks are a function of the
      // segment alone, so the last accepted one is remembered (a connect skips a base64 decode,
      // a UTF-8 decode and a JSON.parse; docs/benchmarks.md, Round 2, eighth pass).
      this.#lastHeader = h;
      this.#lastB64 = b64;
    }
    // jose signs an ASCII-only payload segment (one UTF-8 byte per character iff all ASCII).
    if (Buffer.byteLength(p, 'utf8') !== p.length) return MALFORMED;
    const given = base64url(s);
    if (given === null) return MALFORMED;
    const expected = createHmac('sha256', this.#secret).update(`${h}.${p}`, 'latin1').digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'bad-signature' };
    if (!b64) return MALFORMED; // a JWT must not use an unencoded payload
    const payload = jsonObject(p);
    if (payload === null) return MALFORMED;
    return this.#claims(payload, nowMs);
  }

  /** The claim checks of jose's validateClaimsSet, in its order. */
  #claims(payload: Record<string, unknown>, nowMs: number): Hs256Result {
    const { issuer, audience, clockToleranceS: tolerance, requireExp } = this.#opts;
    // jose checks presence over [required..., aud, iss] reversed: iss, then aud, then exp.
    if (issuer !== undefined && !Object.hasOwn(payload, 'iss')) return BAD_CLAIMS;
    if (audience !== undefined && !Object.hasOwn(payload, 'aud')) return BAD_CLAIMS;
    if (requireExp && !Object.hasOwn(payload, 'exp')) return { ok: false, reason: 'no-expiry' };
    if (issuer !== undefined && payload.iss !== issuer) return BAD_CLAIMS;
    if (audience !== undefined && !audienceMatches(payload.aud, audience)) return BAD_CLAIMS;
    const now = Math.floor(nowMs / 1000);
    if (payload.iat !== undefined && typeof payload.iat !== 'number') return BAD_CLAIMS;
    if (payload.nbf !== undefined) {
      if (typeof payload.nbf !== 'number' || payload.nbf > now + tolerance)
        return { ok: false, reason: 'not-yet-valid' };
    }
    if (payload.exp !== undefined) {
      if (typeof payload.exp !== 'number') return BAD_CLAIMS;
      if (payload.exp <= now - tolerance) return { ok: false, reason: 'expired' };
    }
    return { ok: true, payload };
  }
}

const BAD_CLAIMS = { ok: false, reason: 'bad-claims' } as const;
const BAD_ALGORITHM = { ok: false, reason: 'bad-algorithm' } as const;

/**
 * The header's checks, in jose's order: a JSON object, its `crit` rules, a non-empty `alg`, and
 * that `alg` is HS256 (pinned: whatever the header says, only HS256 is verified; no `none`, no
 * RS/HS confusion). Returns whether the payload is base64url-encoded, or the refusal.
 */
function headerOutcome(segment: string): boolean | typeof MALFORMED | typeof BAD_ALGORITHM {
  const header = jsonObject(segment);
  if (header === null) return MALFORMED;
  const b64 = payloadEncoded(header);
  if (b64 === null) return MALFORMED;
  if (typeof header.alg !== 'string' || header.alg.length === 0) return MALFORMED;
  if (header.alg !== 'HS256') return BAD_ALGORITHM;
  return b64;
}

/**
 * The `crit` rules of a JWS header as jose applies them: `b64` is the one extension understood;
 * anything else, or a malformed list, is refused (null). Returns whether the payload is base64url.
 */
function payloadEncoded(header: Record<string, unknown>): boolean | null {
  const crit = header.crit;
  if (crit === undefined) return true;
  if (!Array.isArray(crit) || crit.length === 0) return null;
  for (const c of crit as unknown[]) {
    if (typeof c !== 'string' || c.length === 0 || c !== 'b64') return null;
    if (!Object.hasOwn(header, c) || header[c] === undefined) return null;
  }
  return typeof header.b64 === 'boolean' ? header.b64 : null;
}

function audienceMatches(aud: unknown, expected: string): boolean {
  if (typeof aud === 'string') return aud === expected;
  if (Array.isArray(aud)) return aud.includes(expected);
  return false;
}

/**
 * Decodes base64url the way jose does on Node 20 (`atob`'s forgiving base64): ASCII whitespace is
 * ignored and `=` padding accepted; `+`, `/` and any other character refuse the segment (null).
 */
function base64url(segment: string): Buffer | null {
  let s = segment;
  if (!BASE64URL.test(s)) {
    if (s.includes('+') || s.includes('/')) return null;
    s = s.replace(/[\t\n\f\r ]/g, '');
    if (s.length % 4 === 0) s = s.replace(/={1,2}$/, '');
    if (!BASE64URL.test(s)) return null;
  }
  if (s.length % 4 === 1) return null;
  return Buffer.from(s, 'base64url');
}

/** A base64url segment holding a JSON object (not an array, not null), or null. */
function jsonObject(segment: string): Record<string, unknown> | null {
  const bytes = base64url(segment);
  if (bytes === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}
