import type { IncomingMessage } from 'node:http';

/**
 * The client's address: the socket's, or, behind a trusted proxy (`TRUST_PROXY`), the last
 * X-Forwarded-For hop: the address that proxy saw and appended (HAProxy's `option forwardfor`,
 * nginx's `$proxy_add_x_forwarded_for`). Earlier hops come from the client and can be made up, so
 * they never count (per-address limits, logs).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',');
    const last = hops[hops.length - 1]?.trim();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}
