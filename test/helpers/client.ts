import { WebSocket, type ClientOptions } from 'ws';
import type { ServerMessage, ServerMessageOf, ServerMessageType } from '../../src/protocol/index.js';
import { sleep } from './wait.js';

let seq = 0;

/**
 * A raw protocol client for tests: records everything the server sends and lets a test wait for a
 * message by type or correlationId. Deliberately not the SDK: tests here check the wire.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];

  constructor(url: string, protocols?: string[], options?: ClientOptions) {
    this.ws = new WebSocket(url, protocols ?? [], options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })),
      );
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as ServerMessage;
      this.received.push(msg);
      const i = this.#waiters.findIndex((w) => w.match(msg));
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(msg);
    });
  }

  /** Connects with the token as `Authorization: Bearer` and waits for `welcome`. */
  static async connect(url: string, token: string): Promise<TestClient> {
    const c = new TestClient(url, [], { headers: { authorization: `Bearer ${token}` } });
    await c.opened;
    await c.next('welcome');
    return c;
  }

  /** Waits for the next message of `type` (or one already received and not yet consumed). */
  next<T extends ServerMessageType>(type: T, timeoutMs = 3_000): Promise<ServerMessageOf<T>> {
    return this.waitFor((m) => m.type === type, timeoutMs, type) as Promise<ServerMessageOf<T>>;
  }

  waitFor(match: (m: ServerMessage) => boolean, timeoutMs = 3_000, what = 'message'): Promise<ServerMessage> {
    const i = this.received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.received.map((m) => m.type))}`),
        );
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (m: ServerMessage) => {
          clearTimeout(timer);
          // consumed: remove from received
          const j = this.received.indexOf(m);
          if (j >= 0) this.received.splice(j, 1);
          resolve(m);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  send(type: string, payload?: unknown, correlationId?: string): void {
    this.ws.send(JSON.stringify({ type, payload, timestamp: Date.now(), correlationId }));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Sends a request and resolves with the reply (success or `error`) that carries its correlationId. */
  request(type: string, payload?: unknown, timeoutMs = 3_000): Promise<ServerMessage> {
    const correlationId = `c${++seq}`;
    const reply = this.waitFor((m) => m.correlationId === correlationId, timeoutMs, `reply to ${type}`);
    this.send(type, payload, correlationId);
    return reply;
  }

  /** Asserts nothing matching arrives within `ms`. */
  async expectNothing(match: (m: ServerMessage) => boolean, ms = 300): Promise<void> {
    await sleep(ms); // the window in which nothing may arrive
    const found = this.received.find(match);
    if (found) throw new Error(`unexpected message ${JSON.stringify(found)}`);
  }

  close(code?: number): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(code);
    return this.closed;
  }
}

/** Opens an upgrade and resolves with the HTTP status when the server refuses it. */
export async function upgradeStatus(
  url: string,
  protocols?: string[],
  options?: ClientOptions,
): Promise<number> {
  const c = new TestClient(url, protocols, options);
  try {
    await c.opened;
    c.ws.terminate();
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1;
  }
}

/** What `connectAs` needs of a test server (test/helpers/server.ts's TestServer has it). */
export interface TokenServer {
  wsUrl: string;
  token(claims: { sub: string } & Record<string, unknown>): Promise<string>;
}

/**
 * Connects a TestClient as `sub`, named `SUB` in capitals unless `claims` says otherwise, and adds
 * it to `clients` so the test's afterAll can close it.
 */
export async function connectAs(
  srv: TokenServer,
  clients: TestClient[],
  sub: string,
  claims: Record<string, unknown> = {},
): Promise<TestClient> {
  const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub.toUpperCase(), ...claims }));
  clients.push(c);
  return c;
}
