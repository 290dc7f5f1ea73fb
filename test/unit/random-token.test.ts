import { describe, expect, it } from 'vitest';
import { randomToken, resetRandomTokenPoolForTesting } from '../../src/server/sessions/random-token.js';

describe('randomToken (pooled CSPRNG bytes)', () => {
  it('hands out base64url tokens of the asked size, never the same bytes twice, across refills', () => {
    resetRandomTokenPoolForTesting();
    const seen = new Set<string>();
    // 1,000 tokens of 32 bytes: the 4 KiB pool is refilled 7 times on the way.
    for (let i = 0; i < 1_000; i++) {
      const t = randomToken(32);
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(t, 'base64url')).toHaveLength(32);
      seen.add(t);
    }
    expect(seen.size).toBe(1_000);
    // Sizes that do not divide the pool, and one larger than it.
    for (const n of [1, 7, 100, 4_095, 5_000]) {
      const t = randomToken(n);
      expect(Buffer.from(t, 'base64url')).toHaveLength(n);
    }
  });

  it('is not all zeros (the pool is filled before use, also right after a reset)', () => {
    resetRandomTokenPoolForTesting();
    const bytes = Buffer.from(randomToken(64), 'base64url');
    expect(bytes.some((b) => b !== 0)).toBe(true);
    // Over 32,000 bytes every byte value turns up (a stuck or zeroed pool would not).
    const counts = new Set<number>();
    for (let i = 0; i < 1_000; i++) for (const b of Buffer.from(randomToken(32), 'base64url')) counts.add(b);
    expect(counts.size).toBe(256);
  });
});
