import { readFileSync } from 'node:fs';
import type { AuthConfig } from '../config/env.js';
import { ConfigError } from '../config/env.js';
import { systemClock, type Clock } from '../time/clock.js';
import { Claims, identityFromClaims, type Identity } from './claims.js';
import { Hs256Verifier } from './hs256.js';
import type { JoseVerifier } from './jose-verifier.js';
import { sha256 } from './sha256.js';
import type { TokenFailure } from './token-failure.js';

export type { TokenFailure };

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: TokenFailure };

/**
 * Verifies JWTs with the algorithm pinned by configuration: the token's `alg` header is never
 * trusted to pick the key type, so `alg: none` and HS/RS confusion fail. HS256 runs on node:crypto
 * ({@link Hs256Verifier}, the same checks as jose's); RS256/ES256 on jose ({@link JoseVerifier}),
 * which only a node configured for them loads.
 */
export class TokenVerifier {
  readonly #verifier: Hs256Verifier | JoseVerifier;
  readonly #clock: Clock;

  private constructor(verifier: Hs256Verifier | JoseVerifier, clock: Clock) {
    this.#verifier = verifier;
    this.#clock = clock;
  }

  /** `clock`: the time `exp` and `nbf` are checked against (default the system clock). */
  static async create(config: AuthConfig, clock: Clock = systemClock): Promise<TokenVerifier> {
    const claims = {
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    };
    if (config.alg === 'HS256') {
      if (!config.secret) throw new ConfigError('JWT_SECRET: missing');
      const hs256 = new Hs256Verifier(Buffer.from(config.secret, 'utf8'), {
        clockToleranceS: config.clockToleranceS,
        requireExp: !config.allowTokensWithoutExp,
        ...claims,
      });
      return new TokenVerifier(hs256, clock);
    }
    const pem = resolvePem(config.publicKey ?? '');
    const { JoseVerifier } = await import('./jose-verifier.js');
    try {
      const jose = await JoseVerifier.create(pem, config.alg, {
        algorithms: [config.alg],
        clockTolerance: config.clockToleranceS,
        // A token without exp would be a permanent credential (ALLOW_TOKENS_WITHOUT_EXP opts in).
        ...(config.allowTokensWithoutExp ? {} : { requiredClaims: ['exp'] }),
        ...claims,
      });
      return new TokenVerifier(jose, clock);
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
    const verifier = this.#verifier;
    if (verifier instanceof Hs256Verifier) {
      const checked = verifier.verify(token, this.#clock.now());
      return checked.ok ? this.#identity(token, checked.payload) : checked;
    }
    return verifier
      .verify(token, this.#clock.now())
      .then((checked) => (checked.ok ? this.#identity(token, checked.payload) : checked));
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
