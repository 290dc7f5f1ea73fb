import { readFileSync } from 'node:fs';
import { createHash, createSecretKey } from 'node:crypto';
import { errors as joseErrors, importSPKI, jwtVerify } from 'jose';
import type { AuthConfig } from '../config/env.js';
import { ConfigError } from '../config/env.js';
import { Claims, identityFromClaims, type Identity } from './claims.js';

/** Why a token was refused. Goes to logs only; clients get a generic 401 / 4401. */
/** A key jose accepts for verification (a KeyObject for HS256, a CryptoKey from importSPKI). */
type VerifyKey = Exclude<Parameters<typeof jwtVerify>[1], (...args: never[]) => unknown>;

export type TokenFailure =
  'expired' | 'no-expiry' | 'not-yet-valid' | 'bad-signature' | 'bad-algorithm' | 'bad-claims' | 'malformed';

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: TokenFailure };

/**
 * Verifies JWTs with the algorithm pinned by configuration: the token's `alg` header is never
 * trusted to pick the key type, so `alg: none` and HS/RS confusion fail.
 */
export class TokenVerifier {
  readonly #key: VerifyKey;
  readonly #options: Parameters<typeof jwtVerify>[2];

  private constructor(key: VerifyKey, config: AuthConfig) {
    this.#key = key;
    this.#options = {
      algorithms: [config.alg],
      clockTolerance: config.clockToleranceS,
      // A token without exp would be a permanent credential (ALLOW_TOKENS_WITHOUT_EXP opts in).
      ...(config.allowTokensWithoutExp ? {} : { requiredClaims: ['exp'] }),
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    };
  }

  static async create(config: AuthConfig): Promise<TokenVerifier> {
    if (config.alg === 'HS256') {
      if (!config.secret) throw new ConfigError('JWT_SECRET: missing');
      return new TokenVerifier(createSecretKey(Buffer.from(config.secret, 'utf8')), config);
    }
    const pem = resolvePem(config.publicKey ?? '');
    try {
      return new TokenVerifier(await importSPKI(pem, config.alg), config);
    } catch (err) {
      throw new ConfigError(
        `JWT_PUBLIC_KEY: not a valid ${config.alg} SPKI public key (${(err as Error).message})`,
      );
    }
  }

  async verify(token: string): Promise<VerifyResult> {
    try {
      const { payload } = await jwtVerify(token, this.#key, this.#options);
      const claims = Claims.safeParse(payload);
      if (!claims.success) return { ok: false, reason: 'bad-claims' };
      const tokenId = createHash('sha256').update(token).digest('base64url').slice(0, 32);
      return { ok: true, identity: { ...identityFromClaims(claims.data, payload.exp), tokenId } };
    } catch (err) {
      return { ok: false, reason: classify(err) };
    }
  }
}

function classify(err: unknown): TokenFailure {
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
