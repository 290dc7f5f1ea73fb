import { WebSocket, type ClientOptions } from 'ws';

/** A message as an earlier system's client reads it: any JSON object. */
export type WireMessage = Record<string, unknown> & {
  type: string;
  payload?: Record<string, unknown>;
  id?: unknown;
  correlationId?: string;
};

/**
 * A client the way the earlier systems' own checks were written: a bare `ws` socket, JSON in and
 * out, no Parley types (their wire is not Parley's: `id`, `call-*`).
 */
export class LegacyClient {
  readonly ws: WebSocket;
  readonly received: WireMessage[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { match: (m: WireMessage) => boolean; resolve: (m: WireMessage) => void }[] = [];

  constructor(url: string, protocols?: string | string[], options?: ClientOptions) {
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
      const msg = JSON.parse(data.toString('utf8')) as WireMessage;
      const i = this.#waiters.findIndex((w) => w.match(msg));
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(msg);
      else this.received.push(msg);
    });
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** The next message of `type` (or matching), already received or still to come. */
  next(match: string | ((m: WireMessage) => boolean), timeoutMs = 3_000): Promise<WireMessage> {
    const m = typeof match === 'string' ? (msg: WireMessage) => msg.type === match : match;
    const i = this.received.findIndex(m);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: m,
        resolve: (msg: WireMessage) => {
          clearTimeout(timer);
          resolve(msg);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${String(match)}; got ${JSON.stringify(this.received)}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  close(code = 1000): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(code);
    return this.closed;
  }
}

/** The HTTP status of a refused upgrade, 101 if it opened, or the client-side error's message. */
export async function upgradeOutcome(c: LegacyClient): Promise<number | string> {
  try {
    await c.opened;
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? (err as Error).message;
  } finally {
    c.ws.terminate();
  }
}
