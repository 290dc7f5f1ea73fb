import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the CSPRNG at a time: one `randomFillSync` per 128 resume tokens. */
const POOL_BYTES = 4_096;

let pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/**
 * `bytes` fresh bytes from the CSPRNG, base64url-encoded: a secret (resume tokens). The bytes come
 * from a pooled buffer that is refilled once used up, as Node's own `randomUUID` does: every byte
 * is handed out once, never twice. `randomBytes(32)` per connection was one `randomFillSync` call
 * (and a Buffer) per connect, 2.4 % of a connect ramp's CPU (docs/benchmarks.md).
 */
export function randomToken(bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.alloc(bytes)).toString('base64url');
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const token = pool.toString('base64url', used, used + bytes);
  // The bytes handed out are overwritten at once: no secret stays in the pool after use.
  pool.fill(0, used, used + bytes);
  used += bytes;
  return token;
}

/** Replaces the pool (tests: a refill after exactly the pool's worth of tokens). */
export function resetRandomTokenPoolForTesting(): void {
  pool = Buffer.allocUnsafeSlow(POOL_BYTES);
  used = POOL_BYTES;
}
