import { errors as joseErrors, importSPKI, jwtVerify, type JWTVerifyOptions } from 'jose';
import type { TokenFailure } from './token-failure.js';

/** The public key as jose imports it. */
type PublicKey = Awaited<ReturnType<typeof importSPKI>>;

/**
 * RS256 / ES256 verification on jose (WebCrypto). Loaded only by a node configured for one of
 * them (token-verifier.ts imports this module when it builds such a verifier). An HS256 node
 * (node:crypto, hs256.ts) does not need jose, whose loading took ~80 ms: such a node starts ~150 ms
 * sooner without it (docs/benchmarks.md, Round 2, fourteenth pass; test/lifecycle/lazy-modules.test.ts).
 */
export class JoseVerifier {
  readonly #key: PublicKey;
  readonly #options: JWTVerifyOptions;

  private constructor(key: PublicKey, options: JWTVerifyOptions) {
    this.#key = key;
    this.#options = options;
  }

  /** `pem`: an SPKI public key for `alg`; throws when it is not one. */
  static async create(pem: string, alg: 'RS256' | 'ES256', options: JWTVerifyOptions): Promise<JoseVerifier> {
    return new JoseVerifier(await importSPKI(pem, alg), options);
  }

  /** The claims set, or why the token was refused. */
  async verify(
    token: string,
    now: number,
  ): Promise<{ ok: true; payload: Record<string, unknown> } | { ok: false; reason: TokenFailure }> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { ...this.#options, currentDate: new Date(now) });
      return { ok: true, payload };
    } catch (err) {
      return { ok: false, reason: classify(err) };
    }
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
