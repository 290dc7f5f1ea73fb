import { createHmac, createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto';
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
    const iat = Math.floor(Date.now() / 1000);
    // The claims set as jose's SignJWT built it: the claims, then sub, iat, exp, iss and aud.
    const payload: Record<string, unknown> = {
      ...rest,
      sub,
      iat,
      exp: iat + (opts.ttlS ?? defaults.issuedTokenTtlS),
      ...(opts.issuer ? { iss: opts.issuer } : {}),
      ...(opts.audience ? { aud: opts.audience } : {}),
    };
    if (this.#alg !== 'HS256') {
      // RS256 / ES256 (the token CLI with a private key) sign on jose, loaded only for them.
      const { SignJWT } = await import('jose');
      return new SignJWT(payload).setProtectedHeader({ alg: this.#alg, typ: 'JWT' }).sign(this.#key);
    }
    // HS256 on node:crypto: an HS256 node never loads jose (auth/jose-verifier.ts).
    const signingInput = `${HS256_HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const signature = createHmac('sha256', this.#key).update(signingInput).digest('base64url');
    return `${signingInput}.${signature}`;
  }
}

/** `{"alg":"HS256","typ":"JWT"}`, base64url: the protected header jose wrote. */
const HS256_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
