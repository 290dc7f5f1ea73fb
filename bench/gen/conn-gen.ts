/**
 * Connection ramp generator (scenario 2), in its own process: opens `count` idle clients with a
 * bounded number of handshakes in flight, each from one of several 127.0.0.x source addresses
 * (ephemeral ports are per source address), and holds them until told to close.
 */
import type { WebSocket } from 'ws';
import { openMany } from '../lib/clients.js';
import { serve } from '../lib/ipc.js';
import type { Protocol } from '../lib/payloads.js';
import { round } from '../lib/stats.js';
import { tokensFor } from '../lib/tokens.js';

let sockets: WebSocket[] = [];
let ids: string[] = [];
let tokens: string[] = [];
let cfg: { protocol: Protocol; url: string; localAddresses: string[] } = {
  protocol: 'raw',
  url: '',
  localAddresses: [],
};

serve({
  async prepare(a: {
    protocol: Protocol;
    url: string;
    prefix: string;
    count: number;
    localAddresses: string[];
  }) {
    cfg = a;
    ids = Array.from({ length: a.count }, (_, i) => `${a.prefix}${i}`);
    tokens = a.protocol === 'parley' ? await tokensFor(ids) : [];
    return { prepared: ids.length };
  },

  async ramp(a: { from: number; count: number; concurrency: number }) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const opened = await openMany(a.count, a.concurrency, (i) => ({
      protocol: cfg.protocol,
      url: cfg.url,
      id: ids[a.from + i],
      token: tokens[a.from + i],
      localAddress: cfg.localAddresses[(a.from + i) % cfg.localAddresses.length],
    }));
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    sockets.push(...opened.sockets);
    return {
      opened: opened.sockets.length,
      failures: opened.failures,
      firstError: opened.firstError,
      ms: round(ms, 1),
      perSec: round((opened.sockets.length * 1_000) / ms, 0),
      holding: sockets.length,
      /** This generator's own CPU (user + system) over the ramp, µs. */
      cpuUs: cpu.user + cpu.system,
    };
  },

  /** Clean close (1000): a server ends such sessions at once (no resume grace window). */
  async closeClean() {
    const closed = sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.close(1000);
          setTimeout(resolve, 5_000).unref();
        }),
    );
    sockets = [];
    await Promise.all(closed);
    return null;
  },

  terminate() {
    for (const s of sockets) s.terminate();
    sockets = [];
    return null;
  },
});
