import type { IncomingMessage } from 'node:http';
import { CALLS_V0_SUBPROTOCOL, SUBPROTOCOL } from '../../protocol/index.js';

export type TokenSource = 'header' | 'query' | 'subprotocol' | 'legacy-subprotocol';

/** The subprotocols the server selects: Parley's, and the calls-service adapter's (docs/migration.md). */
export const KNOWN_SUBPROTOCOLS: readonly string[] = [SUBPROTOCOL, CALLS_V0_SUBPROTOCOL];

export interface ExtractOptions {
  /**
   * LEGACY_TOKEN_SUBPROTOCOL: a request offering exactly one subprotocol, shaped like a JWT and
   * none of ours, is taken as the earlier PTT server's token-only subprotocol.
   */
  legacySubprotocol?: boolean;
}

/**
 * Finds the JWT on an upgrade request, in the SPEC's order: `Authorization: Bearer`, then
 * `?token=`, then the `Sec-WebSocket-Protocol` entry next to `parley` (or `parley.v0-calls`), then
 * (only with `legacySubprotocol`) a token offered alone. The first location that is present wins,
 * even if its token turns out invalid: a bad header is not rescued by a query token.
 */
export function extractToken(
  req: IncomingMessage,
  /** The request's URL; null when it has no query (nothing to look for there). */
  url: URL | null,
  opts: ExtractOptions = {},
): { token: string; source: TokenSource } | null {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return { token: match?.[1] ?? '', source: 'header' };
  }
  const query = url?.searchParams.get('token') ?? null;
  if (query !== null) return { token: query, source: 'query' };
  const protocols = parseSubprotocols(req.headers['sec-websocket-protocol']);
  if (protocols.some((p) => KNOWN_SUBPROTOCOLS.includes(p))) {
    const token = protocols.find((p) => !KNOWN_SUBPROTOCOLS.includes(p));
    if (token !== undefined) return { token, source: 'subprotocol' };
    return null;
  }
  const legacy = opts.legacySubprotocol ? legacyToken(protocols) : null;
  return legacy === null ? null : { token: legacy, source: 'legacy-subprotocol' };
}

/**
 * The subprotocol to select: the first of ours the client offered; else, with `legacySubprotocol`,
 * the token offered alone (as the earlier PTT server did; this echoes the token); else none.
 */
export function selectSubprotocol(offered: Iterable<string>, opts: ExtractOptions = {}): string | false {
  const list = [...offered];
  const ours = list.find((p) => KNOWN_SUBPROTOCOLS.includes(p));
  if (ours !== undefined) return ours;
  return (opts.legacySubprotocol ? legacyToken(list) : null) ?? false;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function legacyToken(protocols: readonly string[]): string | null {
  return protocols.length === 1 && JWT_SHAPE.test(protocols[0]) ? protocols[0] : null;
}

export function parseSubprotocols(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const value = Array.isArray(header) ? header.join(',') : header;
  return value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
