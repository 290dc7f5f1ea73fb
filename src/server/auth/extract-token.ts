import type { IncomingMessage } from 'node:http';
import { SUBPROTOCOL } from '../../protocol/index.js';

export type TokenSource = 'header' | 'query' | 'subprotocol';

/**
 * Finds the JWT on an upgrade request, in the SPEC's order: `Authorization: Bearer`, then
 * `?token=`, then the `Sec-WebSocket-Protocol` entry next to `parley`. The first location that is
 * present wins, even if its token turns out invalid: a bad header is not rescued by a query token.
 */
export function extractToken(req: IncomingMessage, url: URL): { token: string; source: TokenSource } | null {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return { token: match?.[1] ?? '', source: 'header' };
  }
  const query = url.searchParams.get('token');
  if (query !== null) return { token: query, source: 'query' };
  const protocols = parseSubprotocols(req.headers['sec-websocket-protocol']);
  if (protocols.includes(SUBPROTOCOL)) {
    const token = protocols.find((p) => p !== SUBPROTOCOL);
    if (token !== undefined) return { token, source: 'subprotocol' };
  }
  return null;
}

export function parseSubprotocols(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const value = Array.isArray(header) ? header.join(',') : header;
  return value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
