import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DevUserSecrets } from '../auth/dev-user-secret.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import { defaults } from '../config/defaults.js';
import type { Config } from '../config/env.js';
import type { Logger } from '../logger.js';
import { sendError, sendJson } from './respond.js';

/** Demo tokens live one hour: long enough for a session, short enough not to matter if copied. */
export const DEV_TOKEN_TTL_S = defaults.devTokenTtlS;

/** Dev user ids have this shape, so a dev token can never be minted for a real (non-dev) user id. */
const DEV_ID = /^dev-[a-z0-9-]{1,48}$/;

/**
 * `GET /api/dev-token?name=Alice[&id=dev-alice-x1y2z3&secret=…]` →
 * `{token, userId, name, expiresAt, secret}`.
 *
 * Development only: it exists when the server runs with its generated development secret (no
 * JWT_SECRET, NODE_ENV not production), so that the demo page can sign in by name. Anywhere else
 * it answers 404 like any unknown path. `id` re-mints a token for the same demo user (reconnects),
 * and only with the `secret` that the first mint returned for that id (auth/dev-user-secret.ts):
 * user ids are public, so an id alone would let anyone become any demo user (issue 13).
 */
export function createDevTokenRoute(deps: { issuer: TokenIssuer | null; config: Config; log: Logger }) {
  const secrets = deps.issuer ? new DevUserSecrets(deps.issuer.deriveKey('dev-user-secret')) : null;
  return async function devToken(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { issuer, config } = deps;
    if (!issuer || !secrets || config.production) return sendError(res, 'NOT_FOUND');
    const name = (url.searchParams.get('name') ?? '').trim();
    if (name.length < 1 || name.length > 64) {
      return sendError(res, 'INVALID_MESSAGE', 'name must be 1-64 characters');
    }
    const requested = url.searchParams.get('id');
    if (requested !== null && !DEV_ID.test(requested)) {
      return sendError(res, 'INVALID_MESSAGE', 'id must be a dev user id (dev-…)');
    }
    if (requested !== null && !secrets.verify(requested, url.searchParams.get('secret') ?? '')) {
      deps.log.info({ userId: requested }, 'development token refused: wrong secret for the id');
      return sendError(
        res,
        'FORBIDDEN',
        'a re-mint for an id needs the secret its first mint returned; omit id for a new user',
      );
    }
    const userId = requested ?? `dev-${slug(name)}-${randomBytes(4).toString('hex')}`;
    const token = await issuer.issue(
      { sub: userId, name },
      {
        ttlS: DEV_TOKEN_TTL_S,
        ...(config.auth.issuer ? { issuer: config.auth.issuer } : {}),
        ...(config.auth.audience ? { audience: config.auth.audience } : {}),
      },
    );
    deps.log.info({ userId }, 'development token issued');
    sendJson(res, 200, {
      token,
      userId,
      name,
      expiresAt: Date.now() + DEV_TOKEN_TTL_S * 1000,
      secret: secrets.secretFor(userId),
    });
  };
}

function slug(name: string): string {
  const s = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  return s || 'user';
}
