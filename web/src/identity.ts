import { jwtExpiry, ParleyError } from '../../src/client/index.js';

/** Who this tab is: a demo identity minted by the server (development), or a pasted token. */
export interface Identity {
  mode: 'dev' | 'token';
  name: string;
  token: string;
  /** dev: the minted user id, so that a refreshed token keeps the same identity. */
  userId?: string;
  /**
   * dev: the secret the server returned with the id. A refresh for the id must present it (ids
   * are public: anyone sees them in presence), so it stays in this tab's storage and is never
   * shown or sent anywhere but /api/dev-token.
   */
  secret?: string;
}

// Per tab (sessionStorage): two tabs are two users, and a reload keeps yours.
const KEY = 'parley.demo.identity';

export function loadIdentity(): Identity | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const id = JSON.parse(raw) as Identity;
    if (id.mode === 'token' && isExpired(id.token)) return null;
    return id;
  } catch {
    return null;
  }
}

export function saveIdentity(id: Identity | null): void {
  try {
    if (id) sessionStorage.setItem(KEY, JSON.stringify(id));
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: the identity lives as long as the page
  }
}

function isExpired(token: string, marginS = 0): boolean {
  const exp = jwtExpiry(token);
  return exp !== null && exp - marginS <= Date.now() / 1000;
}

/**
 * `GET /api/dev-token`: a new demo user, or (with the id and secret of an earlier mint) a fresh
 * token for the same one. Resolves null when the server does not issue demo tokens (production:
 * 404), so the page can ask for a token instead.
 */
export async function mintDevToken(
  name: string,
  again?: { userId: string; secret: string },
): Promise<Identity | null> {
  const q = new URLSearchParams({ name });
  if (again) {
    q.set('id', again.userId);
    q.set('secret', again.secret);
  }
  const res = await fetch(`/api/dev-token?${q.toString()}`);
  if (res.status === 404) return null;
  const body = (await res.json()) as {
    token?: string;
    userId?: string;
    name?: string;
    secret?: string;
    error?: { code: string; message: string };
  };
  if (!res.ok || !body.token || !body.userId) {
    throw new ParleyError(
      res.status === 403 ? 'FORBIDDEN' : 'UNAUTHORIZED',
      body.error?.message ?? `HTTP ${res.status}`,
    );
  }
  return {
    mode: 'dev',
    name: body.name ?? name,
    token: body.token,
    userId: body.userId,
    ...(body.secret ? { secret: body.secret } : {}),
  };
}

/**
 * The SDK's token source: the current token, refreshed (same demo user) when it is about to
 * expire, so reconnecting after a long session still works.
 */
export function tokenSource(get: () => Identity, set: (id: Identity) => void): () => Promise<string> {
  return async () => {
    const id = get();
    if (id.mode === 'dev' && isExpired(id.token, 120)) {
      // Without the secret (an identity saved before the server asked for one) a refresh is
      // refused: sign in afresh as a new demo user of the same name.
      const fresh = await mintDevToken(
        id.name,
        id.userId && id.secret ? { userId: id.userId, secret: id.secret } : undefined,
      ).catch((err: unknown) => {
        if (ParleyError.from(err).code === 'FORBIDDEN') return mintDevToken(id.name);
        throw err;
      });
      if (fresh) {
        set(fresh);
        return fresh.token;
      }
    }
    return id.token;
  };
}
