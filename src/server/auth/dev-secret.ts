import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';

/**
 * Development only: the JWT secret used when JWT_SECRET is unset outside production. Generated on
 * first use and kept in a local file (mode 0600) so that `npm run token` and the demo page sign
 * tokens the running server accepts. Never used when NODE_ENV=production.
 */
export function devSecretPath(): string {
  return resolve(process.env.PARLEY_DEV_SECRET_FILE ?? '.parley/dev-secret');
}

export function readDevSecret(): string | null {
  try {
    const secret = readFileSync(devSecretPath(), 'utf8').trim();
    return secret.length >= 32 ? secret : null;
  } catch {
    return null;
  }
}

export function getOrCreateDevSecret(): { secret: string; created: boolean; path: string } {
  const path = devSecretPath();
  const existing = readDevSecret();
  if (existing) return { secret: existing, created: false, path };
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, secret + '\n', { mode: 0o600 });
  return { secret, created: true, path };
}
