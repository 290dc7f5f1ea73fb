import { serverUrls } from './server-url.js';

// Handler properties are declared through a method ("bivariant") so that both the DOM's WebSocket
// and the `ws` package's are assignable to WebSocketLike without casts.
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'] | null;

/** The slice of the WebSocket API the SDK uses: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected (`parley`). */
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

/** Opens a socket; the SDK passes `['parley', token]` as subprotocols. */
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export const WS_OPEN = 1;

export function defaultWebSocketFactory(): WebSocketFactory {
  const Ctor = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike })
    .WebSocket;
  if (!Ctor) {
    throw new TypeError(
      'No global WebSocket: pass `webSocketFactory` (in Node: (url, p) => new WebSocket(url, p) from the "ws" package)',
    );
  }
  return (url, protocols) => new Ctor(url, protocols);
}

export type { TokenSource } from './token.js';

/**
 * Reads `exp` (seconds) from a JWT without verifying it: only to fail fast with a clear error
 * instead of retrying forever with a token the server will refuse (a browser cannot see the 401).
 */
export function jwtExpiry(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '='))) as { exp?: unknown };
    return typeof json.exp === 'number' ? json.exp : null;
  } catch {
    return null;
  }
}

/** The signaling endpoint of any accepted server URL form (see server-url.ts). */
export function toWebSocketUrl(base: string): string {
  return serverUrls(base).ws;
}

/** `ws(s)://host/ws` → `http(s)://host` (the HTTP API's base). */
export function toHttpBase(wsUrl: string): string {
  return serverUrls(wsUrl).http;
}
