import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: string, outputEncoding: 'buffer') => Buffer;

/** `crypto.hash` (Node ≥ 20.12); `engines` allows 20.11, which lacks it. */
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

/**
 * SHA-256 of a string's UTF-8 bytes. One call into OpenSSL where Node has `crypto.hash`: no `Hash`
 * stream object per digest (0.96 against 2.0–2.3 µs for `createHash().update().digest()` on a
 * 176-character token; docs/benchmarks.md, Round 2, eighth pass). Two run per connect: the token
 * id and the resume token's hash.
 */
export const sha256: (data: string) => Buffer = oneShot
  ? (data) => oneShot('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest();
