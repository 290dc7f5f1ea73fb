import { ParleyError } from './errors.js';

/** The URL forms `url` options accept, as the docs list them. */
export const ACCEPTED_URL_FORMS = [
  'https://host[:port]  (the server origin: signaling at /ws)',
  'https://host/prefix  (behind a proxy path: signaling at /prefix/ws)',
  'wss://host[:port]    (same as https://host)',
  'wss://host/ws        (the signaling endpoint itself; any other ws path is taken as given)',
  'http:// and ws:// alike, and a path relative to the page (e.g. /prefix)',
] as const;

export interface ServerUrls {
  /** The signaling endpoint, e.g. `wss://voice.example.com/ws`. */
  ws: string;
  /** The HTTP base of the API, e.g. `https://voice.example.com` (no trailing slash). */
  http: string;
}

/**
 * Normalises every accepted form of a server URL (see {@link ACCEPTED_URL_FORMS}) into the
 * signaling endpoint and the HTTP base. Anything else throws INVALID_URL naming the forms.
 *
 * - `http://host`, `http://host/`, `ws://host`, `ws://host/` → `ws://host/ws`
 * - `http://host/ws`, `ws://host/ws/` → `ws://host/ws` (never `/ws/ws`)
 * - `https://host/prefix` → `wss://host/prefix/ws`; `wss://host/custom` stays as given
 */
export function serverUrls(input: string): ServerUrls {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(input.trim(), base);
  } catch {
    throw invalid(input, 'it is not a URL');
  }
  const scheme = url.protocol;
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(scheme)) {
    throw invalid(input, `the scheme ${scheme} is not http(s) or ws(s)`);
  }
  const secure = scheme === 'https:' || scheme === 'wss:';
  const path = url.pathname.replace(/\/+$/, '');
  const explicitEndpoint = (scheme === 'ws:' || scheme === 'wss:') && path !== '';
  const wsPath = path.endsWith('/ws') || explicitEndpoint ? path : `${path}/ws`;
  const ws = new URL(url.toString());
  ws.protocol = secure ? 'wss:' : 'ws:';
  ws.pathname = wsPath;
  ws.hash = '';
  if (scheme === 'http:' || scheme === 'https:') ws.search = '';
  const httpPath = wsPath.endsWith('/ws') ? wsPath.slice(0, -3) : '';
  return { ws: ws.toString(), http: `${secure ? 'https:' : 'http:'}//${url.host}${httpPath}` };
}

function invalid(input: string, why: string): ParleyError {
  return new ParleyError(
    'INVALID_URL',
    `cannot connect to "${input.slice(0, 200)}": ${why}. Accepted: ${ACCEPTED_URL_FORMS.join('; ')}`,
    { details: { url: input.slice(0, 200), accepted: [...ACCEPTED_URL_FORMS] } },
  );
}
