import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Development only: what proves that a browser is the one a demo user id was minted for. The first
 * `/api/dev-token` for a name returns a new id and its secret; a re-mint for that id
 * (`?id=…&secret=…`) must present the secret. The id is public (presence shows it to everyone),
 * the secret is only ever sent to the browser that got the id. Nothing is stored: the secret is an
 * HMAC of the id under a key derived from the development signing key, so it survives restarts.
 */
export class DevUserSecrets {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  secretFor(userId: string): string {
    return createHmac('sha256', this.#key).update(userId).digest('base64url');
  }

  /** Constant-time check of a presented secret. */
  verify(userId: string, presented: string): boolean {
    const expected = Buffer.from(this.secretFor(userId));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
