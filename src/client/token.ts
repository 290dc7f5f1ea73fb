import { ParleyError } from './errors.js';
import { serverUrls } from './server-url.js';

/**
 * What a token option may give: the JWT itself, or an object carrying it as `token` (what
 * `GET /api/dev-token` answers, so `(await fetch(…)).json()` can be passed as is). A string that
 * is that JSON (`(await fetch(…)).text()`) is read the same way.
 */
export type TokenValue = string | { readonly token: string };

/** A token, or a function returning a fresh one (called on every (re)connect). */
export type TokenSource = TokenValue | (() => TokenValue | Promise<TokenValue>);

/**
 * Calls the source if it is a function and returns the JWT. A value of the wrong shape rejects with
 * INVALID_TOKEN; a function that throws rejects with its ParleyError as is (e.g. devToken's
 * CONNECTION_FAILED), or UNAUTHORIZED naming the failure, which a reconnect may retry.
 */
export async function resolveToken(source: TokenSource): Promise<string> {
  let value: unknown;
  try {
    value = typeof source === 'function' ? await source() : source;
  } catch (err) {
    if (err instanceof ParleyError) throw err;
    const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new ParleyError('UNAUTHORIZED', `the token function failed (${why})`, { cause: err });
  }
  return tokenFrom(value);
}

/** The JWT in a token value; INVALID_TOKEN (naming what was given, never its content) otherwise. */
export function tokenFrom(value: unknown): string {
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ParleyError('INVALID_TOKEN', 'the token is neither a JWT nor JSON with a "token" field');
      }
      return tokenFrom(parsed);
    }
    // Anything else goes to the server, which refuses what it cannot verify (UNAUTHORIZED).
    if (text !== '') return text;
    throw new ParleyError('INVALID_TOKEN', 'the token is empty');
  }
  if (typeof value === 'object' && value !== null && 'token' in value) {
    const inner = value.token;
    if (typeof inner === 'string') return tokenFrom(inner);
  }
  const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  throw new ParleyError('INVALID_TOKEN', `the token must be a JWT or {token: JWT}; got ${what}`);
}

export interface DevTokenOptions {
  /** Reuse this development user id (`dev-…`) instead of the one the first token was minted for. */
  id?: string;
  /** With `id`: the `secret` that id's first mint returned (the server re-mints an id only with it). */
  secret?: string;
  fetch?: typeof fetch;
}

/**
 * A token function for a development server's `GET /api/dev-token` (no JWT_SECRET, not
 * production): the first call mints a user for `name`; later calls (every reconnect) mint again
 * for the same user id, so a resume finds the same identity. Never use it in production: the
 * endpoint does not exist there (404).
 *
 * ```ts
 * const parley = await ParleyClient.connect({ url, token: devToken(url, 'Alice') });
 * ```
 */
export function devToken(
  serverUrl: string,
  name: string,
  options: DevTokenOptions = {},
): () => Promise<string> {
  let id = options.id;
  let secret = options.secret;
  return async () => {
    const url = new URL(`${serverUrls(serverUrl).http}/api/dev-token`);
    url.searchParams.set('name', name);
    if (id) url.searchParams.set('id', id);
    if (id && secret) url.searchParams.set('secret', secret);
    let res: Response;
    try {
      res = await (options.fetch ?? fetch)(url);
    } catch (err) {
      throw new ParleyError('CONNECTION_FAILED', `could not reach ${url.origin} for a development token`, {
        cause: err,
        details: { url: url.toString() },
      });
    }
    if (!res.ok) {
      const details = { url: url.toString(), status: res.status };
      if (res.status === 404) {
        throw new ParleyError(
          'NOT_FOUND',
          `${url.origin} has no /api/dev-token (it exists only on a development server: no JWT_SECRET, NODE_ENV not production)`,
          { details },
        );
      }
      const said = await res
        .json()
        .then((b: { error?: { message?: unknown } }) =>
          typeof b.error?.message === 'string' ? b.error.message : '',
        )
        .catch(() => '');
      throw new ParleyError(
        res.status >= 500 || res.status === 429 ? 'SERVICE_UNAVAILABLE' : 'UNAUTHORIZED',
        `${url.origin}/api/dev-token answered HTTP ${res.status}${said ? `: ${said}` : ''}`,
        { details },
      );
    }
    const body = (await res.json()) as { token?: unknown; userId?: unknown; secret?: unknown };
    const token = tokenFrom(body);
    if (typeof body.userId === 'string') id = body.userId;
    // A re-mint for the same id needs the secret its first mint returned (the server refuses
    // anyone else's id): kept in this closure only.
    if (typeof body.secret === 'string') secret = body.secret;
    return token;
  };
}
