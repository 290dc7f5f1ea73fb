import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../src/server-sdk/index.js';
import type { WebhookEvent } from '../../src/protocol/index.js';
import { waitUntil } from './wait.js';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** Verified and parsed (null when verification failed). */
  event: WebhookEvent | null;
  status: number;
}

/**
 * A real webhook receiver on 127.0.0.1: verifies each POST with the server SDK and answers 200,
 * or what `respond` decides (e.g. 500 for a first attempt, or `'hang'`: never answer, so the
 * sender times out). `hold()` keeps responses back until `release()`.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Event ids of every request as it arrives, answered or not (attempts that hang included). */
  readonly arrivals: string[] = [];
  respond: (body: string, attempt: number) => number | 'hang' = () => 200;
  readonly #server: Server;
  readonly #secret: string;
  #held: (() => void)[] | null = null;
  url = '';

  private constructor(secret: string) {
    this.#secret = secret;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let event: WebhookEvent | null = null;
        try {
          event = verifyWebhook(body, req.headers, this.#secret);
        } catch {
          event = null;
        }
        this.arrivals.push(event?.id ?? '');
        const attempt = this.arrivals.filter((id) => event !== null && id === event.id).length;
        const status = event ? this.respond(body, attempt) : 401;
        if (status === 'hang') return; // the sender's timeout ends it; close() drops the connection
        const answer = () => {
          this.received.push({ headers: req.headers, body, event, status });
          res.writeHead(status).end();
        };
        if (this.#held) this.#held.push(answer);
        else answer();
      });
    });
  }

  static async start(secret: string): Promise<WebhookReceiver> {
    const r = new WebhookReceiver(secret);
    await new Promise<void>((resolve) => r.#server.listen(0, '127.0.0.1', resolve));
    r.url = `http://127.0.0.1:${(r.#server.address() as AddressInfo).port}/hook`;
    return r;
  }

  /** Events accepted (answered 2xx), in arrival order. */
  get events(): WebhookEvent[] {
    return this.received.filter((r) => r.event && r.status < 300).map((r) => r.event as WebhookEvent);
  }

  async waitFor(match: (e: WebhookEvent) => boolean, what: string, count = 1): Promise<WebhookEvent[]> {
    await waitUntil(() => this.events.filter(match).length >= count, what, 10_000);
    return this.events.filter(match);
  }

  hold(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const answer of held) answer();
  }

  close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
