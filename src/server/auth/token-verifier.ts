import { readFileSync } from 'node:fs';
import { createSecretKey } from 'node:crypto';
import { errors as joseErrors, importSPKI, jwtVerify } from 'jose';
import type { AuthConfig } from '../config/env.js';
import { ConfigError } from '../config/env.js';
import { systemClock, type Clock } from '../time/clock.js';
import { Claims, identityFromClaims, type Identity } from './claims.js';
import { Hs256Verifier } from './hs256.js';
import { sha256 } from './sha256.js';

/** Why a token was refused. Goes to logs only; clients get a generic 401 / 4401. */
/** A key jose accepts for verification (a KeyObject for HS256, a CryptoKey from importSPKI). */
type VerifyKey = Exclude<Parameters<typeof jwtVerify>[1], (...args: never[]) => unknown>;

export type TokenFailure =
  'expired' | 'no-expiry' | 'not-yet-valid' | 'bad-signature' | 'bad-algorithm' | 'bad-claims' | 'malformed';

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: TokenFailure };

/**
 * Verifies JWTs with the algorithm pinned by configuration: the token's `alg` header is never
 * trusted to pick the key type, so `alg: none` and HS/RS confusion fail. HS256 runs on node:crypto
 * ({@link Hs256Verifier}, the same checks as jose's); RS256/ES256 on jose.
 */
export class TokenVerifier {
  readonly #key: VerifyKey;
  readonly #options: Parameters<typeof jwtVerify>[2];
  readonly #hs256: Hs256Verifier | null;
  readonly #clock: Clock;

  private constructor(key: VerifyKey, config: AuthConfig, clock: Clock, secret?: Buffer) {
    this.#key = key;
    this.#clock = clock;
    this.#hs256 = secret
      ? new Hs256Verifier(secret, {
          clockToleranceS: config.clockToleranceS,
          requireExp: !config.allowTokensWithoutExp,
          ...(config.issuer ? { issuer: config.issuer } : {}),
          ...(config.audience ? { audience: config.audience } : {}),
        })
      : null;
    this.#options = {
      algorithms: [config.alg],
      clockTolerance: config.clockToleranceS,
      // A token without exp would be a permanent credential (ALLOW_TOKENS_WITHOUT_EXP opts in).
      ...(config.allowTokensWithoutExp ? {} : { requiredClaims: ['exp'] }),
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    };
  }

  /** `clock`: the time `exp` and `nbf` are checked against (default the system clock). */
  static async create(config: AuthConfig, clock: Clock = systemClock): Promise<TokenVerifier> {
    if (config.alg === 'HS256') {
      if (!config.secret) throw new ConfigError('JWT_SECRET: missing');
      const secret = Buffer.from(config.secret, 'utf8');
      return new TokenVerifier(createSecretKey(secret), config, clock, secret);
    }
    const pem = resolvePem(config.publicKey ?? '');
    try {
      return new TokenVerifier(await importSPKI(pem, config.alg), config, clock);
    } catch (err) {
      throw new ConfigError(
        `JWT_PUBLIC_KEY: not a valid ${config.alg} SPKI public key (${(err as Error).message})`,
      );
    }
  }

  /**
   * HS256 answers synchronously (node:crypto), so a caller on a hot path (the upgrade) can go on
   * in the same turn; RS256/ES256 (jose, WebCrypto) answer with a promise. `await` takes either.
   */
  verify(token: string): VerifyResult | Promise<VerifyResult> {
    if (this.#hs256) {
      const checked = this.#hs256.verify(token, this.#clock.now());
      return checked.ok ? this.#identity(token, checked.payload) : checked;
    }
    return this.#verifyWithJose(token);
  }

  async #verifyWithJose(token: string): Promise<VerifyResult> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        ...this.#options,
        currentDate: new Date(this.#clock.now()),
      });
      return this.#identity(token, payload);
    } catch (err) {
      return { ok: false, reason: classify(err) };
    }
  }

  #identity(token: string, payload: Record<string, unknown>): VerifyResult {
    const claims = Claims.safeParse(payload);
    if (!claims.success) return { ok: false, reason: 'bad-claims' };
    // The first 24 bytes in base64url: the same 32 characters as the digest's first 32, as a string
    // of its own (a slice would keep the whole 43-character digest alive with every identity).
    const tokenId = sha256(token).toString('base64url', 0, 24);
    const exp = typeof payload.exp === 'number' ? payload.exp : undefined;
    return { ok: true, identity: identityFromClaims(claims.data, exp, tokenId) };
  }
}

/** How a jose verification error maps to a {@link TokenFailure} (exported for the HS256 equivalence test). */
export function classify(err: unknown): TokenFailure {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'exp' && err.reason === 'missing') return 'no-expiry';
    return err.claim === 'nbf' ? 'not-yet-valid' : 'bad-claims';
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'bad-algorithm';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad-signature';
  return 'malformed';
}

/** JWT_PUBLIC_KEY may hold the PEM itself or a path to a PEM file. */
function resolvePem(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `JWT_PUBLIC_KEY: neither a PEM key nor a readable file (${(err as Error).message})`,
    );
  }
}
