import { WebSocket } from 'ws';
import {
  SignalingClient,
  type SignalingClientOptions,
  type SignalingEvents,
} from '../../src/client/index.js';
import type { TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/** The SDK in Node: the `ws` package plays the browser's WebSocket. */
export const nodeWebSocket: SignalingClientOptions['webSocketFactory'] = (url, protocols) =>
  new WebSocket(url, protocols);

/** Every event a client emitted, in order, for assertions on what happened (and what did not). */
export function record<E extends keyof SignalingEvents>(client: SignalingClient, ...events: E[]) {
  const seen: { event: E; args: SignalingEvents[E] }[] = [];
  for (const event of events) client.on(event, (...args) => seen.push({ event, args }));
  return seen;
}

export function sdkClient(
  srv: Pick<TestServer, 'httpUrl'>,
  token: string,
  options: Partial<SignalingClientOptions> = {},
): SignalingClient {
  return new SignalingClient({ url: srv.httpUrl, token, webSocketFactory: nodeWebSocket, ...options });
}

type HasServer = Pick<TestServer, 'server'>;

/** The server-side connection of a session, to drop it the way a network failure would. */
export function serverConnectionOf(srv: HasServer, sessionId: string) {
  for (const conn of srv.server.internalsForTesting.gateway.connections()) {
    if (conn.session?.id === sessionId) return conn;
  }
  return null;
}

/** Kills the TCP connection of a session from the server side (no close frame: the client sees 1006). */
export async function dropFromServer(srv: HasServer, sessionId: string): Promise<void> {
  const conn = serverConnectionOf(srv, sessionId);
  if (!conn) throw new Error(`no server connection for session ${sessionId}`);
  conn.terminate();
  await waitUntil(() => serverConnectionOf(srv, sessionId) === null, 'the server to drop the connection');
}
