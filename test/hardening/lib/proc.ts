import { request } from 'node:http';
import { WebSocket } from 'ws';
import { TokenIssuer } from '../../../src/server/auth/token-issuer.js';
import { startNodeProcess, type NodeProcess } from '../../helpers/node-process.js';
import { TEST_SECRET } from '../../helpers/server.js';
import { isAlive, rssOf } from './stats.js';

const issuer = new TokenIssuer({ secret: TEST_SECRET });

export function tokenFor(sub: string, ttlS = 3_600): Promise<string> {
  return issuer.issue({ sub }, { ttlS });
}

/** A real server process plus what the hardening tests ask of it. */
export interface HardProc extends NodeProcess {
  pid: number;
  rss(): number;
  alive(): boolean;
  /** GET /health, from `localAddress` (default: the test's own, 127.0.0.1). */
  health(localAddress?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Log lines that mean the process hit something it did not expect. */
  fatalLines(): Record<string, unknown>[];
}

export async function startProc(env: Record<string, string>): Promise<HardProc> {
  const proc = await startNodeProcess(env);
  const pid = proc.child.pid!;
  return Object.assign(proc, {
    pid,
    rss: () => rssOf(pid),
    alive: () => isAlive(pid) && proc.child.exitCode === null,
    // On its own socket, closed after the answer: a kept-alive socket would count against the
    // test's address (MAX_CONNECTIONS_PER_IP counts an address's open HTTP sockets too).
    health: (localAddress?: string) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = request(
          `${proc.httpUrl}/health`,
          { agent: false, headers: { connection: 'close' }, ...(localAddress ? { localAddress } : {}) },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
            );
          },
        );
        req.once('error', reject);
        req.end();
      }),
    fatalLines: () =>
      proc
        .logs()
        .filter(
          (l) =>
            (l.level as number) >= 50 ||
            /unhandled|uncaught/i.test(String(l.msg)) ||
            l.msg === 'handler failed',
        ),
  });
}

/** Opens an authenticated WebSocket and resolves after `welcome`. */
export async function openClient(
  wsUrl: string,
  sub: string,
): Promise<{ ws: WebSocket; messages: { type: string; correlationId?: string; payload?: unknown }[] }> {
  const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${await tokenFor(sub)}` } });
  const messages: { type: string; correlationId?: string; payload?: unknown }[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { type: string };
      messages.push(m);
      if (m.type === 'welcome') resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return { ws, messages };
}
