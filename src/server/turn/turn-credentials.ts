import { createHmac } from 'node:crypto';
import type { TurnCredentials } from '../../protocol/index.js';

/**
 * TURN REST credentials, the scheme coturn checks in `use-auth-secret` mode:
 * username = "<expiry-unix-seconds>:<userId>", password = base64(HMAC-SHA1(secret, username)).
 */
export function turnCredentials(
  secret: string,
  userId: string,
  ttlS: number,
  uris: string[],
  nowMs = Date.now(),
): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlS;
  const username = `${expiry}:${userId}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, ttl: ttlS, uris };
}

/**
 * TURN credentials never outlive the token that obtained them (issue 13, low finding): TURN_TTL,
 * or the token's remaining lifetime (whole seconds, at least 1) when that is shorter.
 */
export function turnTtlFor(ttlS: number, tokenExpiresAt: number | null, nowMs: number): number {
  if (tokenExpiresAt === null) return ttlS;
  return Math.max(1, Math.min(ttlS, Math.floor((tokenExpiresAt - nowMs) / 1000)));
}
