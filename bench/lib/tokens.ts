import type { Claims } from '../../src/server/auth/claims.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { benchUserName } from './payloads.js';
import { BENCH_SECRET } from './servers.js';

const issuer = new TokenIssuer({ secret: BENCH_SECRET });

/** HS256 tokens for bench users (signed before any timing starts). */
export function tokenFor(sub: string, extra: Omit<Partial<Claims>, 'sub'> = {}): Promise<string> {
  return issuer.issue({ sub, name: benchUserName(sub), ...extra }, { ttlS: 3_600 });
}

export async function tokensFor(subs: string[], extra: Omit<Partial<Claims>, 'sub'> = {}): Promise<string[]> {
  const out: string[] = [];
  for (const s of subs) out.push(await tokenFor(s, extra));
  return out;
}
