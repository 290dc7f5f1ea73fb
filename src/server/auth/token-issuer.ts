import { createHmac, createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { defaults } from '../config/defaults.js';
import type { Claims } from './claims.js';

export interface IssueOptions {
  /** Lifetime in seconds. Default 3600. */
  ttlS?: number;
  issuer?: string;
  audience?: string;
}

/** Signs Parley tokens: used by the token CLI, the development demo and tests. */
export class TokenIssuer {
  readonly #key: KeyObject;
  readonly #alg: string;

  constructor(key: { secret: string } | { privateKeyPem: string; alg: 'RS256' | 'ES256' }) {
    if ('secret' in key) {
      this.#key = createSecretKey(Buffer.from(key.secret, 'utf8'));
      this.#alg = 'HS256';
    } else {
      this.#key = createPrivateKey(key.privateKeyPem);
      this.#alg = key.alg;
    }
  }

  /**
   * A key for another purpose, derived from the signing key (HMAC-SHA256 of `purpose`): whoever
   * can sign tokens can recompute it (after a restart, on another node), nobody else can. The
   * label is a fixed string chosen by the caller, never client input.
   */
  deriveKey(purpose: string): Buffer {
    const material =
      this.#key.type === 'secret' ? this.#key.export() : this.#key.export({ format: 'der', type: 'pkcs8' });
    return createHmac('sha256', material).update(`parley derived key: ${purpose}`).digest();
  }

  async issue(claims: Claims, opts: IssueOptions = {}): Promise<string> {
    const { sub, ...rest } = claims;
    let jwt = new SignJWT(rest)
      .setProtectedHeader({ alg: this.#alg, typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(`${opts.ttlS ?? defaults.issuedTokenTtlS}s`);
    if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
    if (opts.audience) jwt = jwt.setAudience(opts.audience);
    return jwt.sign(this.#key);
  }
}
