import { WebSocket, type ClientOptions } from 'ws';
import { benchUserName, type Protocol } from './payloads.js';

/**
 * Benchmark clients. Masking keys are all zero (`generateMask`), which `ws` recognises and skips
 * the XOR for: the frames stay valid WebSocket client frames (servers unmask as usual), and the
 * generator spends its CPU on sending and receiving rather than on masking.
 */
export const CLIENT_OPTS: ClientOptions = {
  perMessageDeflate: false,
  skipUTF8Validation: true,
  generateMask: (mask: Buffer) => {
    mask.fill(0);
  },
  handshakeTimeout: 30_000,
};

export interface OpenOptions {
  protocol: Protocol;
  /** ws://host:port/ws (raw, mandated, parley) or ws://host:port/peerjs (peerjs) */
  url: string;
  id: string;
  /** Parley: the JWT. */
  token?: string;
  localAddress?: string;
}

/**
 * Opens one client and resolves when the server says it is ready: Parley's `welcome` (after
 * authentication on the upgrade), PeerJS's `OPEN`, or the raw and mandated servers' open handshake.
 */
export function openClient(o: OpenOptions): Promise<WebSocket> {
  const opts: ClientOptions = { ...CLIENT_OPTS, ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
  let url = o.url;
  if (o.protocol === 'raw') url = `${o.url}?id=${encodeURIComponent(o.id)}`;
  else if (o.protocol === 'mandated')
    url = `${o.url}?id=${encodeURIComponent(o.id)}&name=${encodeURIComponent(benchUserName(o.id))}`;
  else if (o.protocol === 'peerjs') url = `${o.url}?key=peerjs&id=${encodeURIComponent(o.id)}&token=t${o.id}`;
  else opts.headers = { authorization: `Bearer ${o.token ?? ''}` };
  const ws = new WebSocket(url, opts);
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(err);
    };
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    if (o.protocol === 'raw' || o.protocol === 'mandated') {
      ws.once('open', () => {
        ws.off('error', fail);
        ws.on('error', () => undefined);
        resolve(ws);
      });
      return;
    }
    ws.once('message', (data: Buffer) => {
      ws.off('error', fail);
      ws.on('error', () => undefined);
      const text = data.toString();
      const ok = o.protocol === 'peerjs' ? text.includes('"OPEN"') : text.includes('"welcome"');
      if (ok) resolve(ws);
      else fail(new Error(`unexpected first message: ${text.slice(0, 200)}`));
    });
  });
}

/** Opens `n` clients with at most `concurrency` handshakes in flight. */
export async function openMany(
  n: number,
  concurrency: number,
  make: (i: number) => OpenOptions,
): Promise<{ sockets: WebSocket[]; failures: number; firstError: string | null }> {
  const sockets: WebSocket[] = new Array<WebSocket>(n);
  let next = 0;
  let failures = 0;
  let firstError: string | null = null;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        sockets[i] = await openClient(make(i));
      } catch (err) {
        failures++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { sockets: sockets.filter(Boolean), failures, firstError };
}
