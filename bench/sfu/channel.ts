/**
 * The whole-node SFU test, in its own process: Parley itself (createServer from src/server/index.ts,
 * two mediasoup workers, the default consumer budget) serving one PTT channel. Listeners arrive over
 * signaling from the generator process and Parley places them (recv transport on a worker under
 * budget, floor producer piped to it with pipeToRouter, CAPACITY_EXCEEDED when all are full).
 *
 * Their WebRtcTransports cannot complete ICE/DTLS here (1,600 WebRTC stacks do not fit on two
 * cores), so a mediasoup consumer on them sends nothing. For each listener Parley accepts, this
 * process therefore adds a "shadow" consumer of the same producer on the same router Parley chose:
 * an SRTP PlainTransport sending to the sink process. The shadows carry exactly the per-listener
 * send load (SRTP + one UDP send per packet) on the worker Parley picked, and let the sink measure
 * each listener's stream. (mediasoup's observer API; nothing in Parley is changed.)
 */
import { randomBytes } from 'node:crypto';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { loadConfig } from '../../src/server/config/env.js';
import { loadManifest } from '../../src/server/config/manifest.js';
import { createServer, type ParleyServer } from '../../src/server/index.js';
import { createLogger } from '../../src/server/logger.js';
import { serve } from '../lib/ipc.js';
import { BENCH_SECRET } from '../lib/servers.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80' as const;

let server: ParleyServer | null = null;
let sinkPorts: number[] = [];
let blackholePort = 0;
let sampleEvery = 1;
const pending: { router: types.Router; workerPid: number; producerId: string }[] = [];
let creating = false;
let created = 0;
let failed = 0;
let firstError: string | null = null;
/** ssrc → worker pid, for the sampled shadows (the ones the sink reads). */
const sampled = new Map<number, number>();
const byWorker = new Map<number, number>();

async function drain(): Promise<void> {
  if (creating) return;
  creating = true;
  while (pending.length > 0) {
    const job = pending.shift();
    if (!job) break;
    try {
      const transport = await job.router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: '127.0.0.1', portRange: { min: 20_000, max: 39_999 } },
        rtcpMux: true,
        comedia: false,
        enableSrtp: true,
        srtpCryptoSuite: SUITE,
      });
      const isSampled = created % sampleEvery === 0;
      await transport.connect({
        ip: '127.0.0.1',
        port: isSampled ? sinkPorts[created % sinkPorts.length] : blackholePort,
        srtpParameters: { cryptoSuite: SUITE, keyBase64: randomBytes(30).toString('base64') },
      });
      const consumer = await transport.consume({
        producerId: job.producerId,
        rtpCapabilities: job.router.rtpCapabilities,
      });
      const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0;
      if (isSampled) sampled.set(ssrc, job.workerPid);
      byWorker.set(job.workerPid, (byWorker.get(job.workerPid) ?? 0) + 1);
      created++;
    } catch (err) {
      failed++;
      firstError ??= (err as Error).message;
    }
  }
  creating = false;
}

/** The speaker's producer and the room's floor producer, to see where packets go missing. */
const producers = new Map<string, types.Producer>();

// Every consumer Parley creates on a listener's receive transport gets its shadow.
mediasoup.observer.on('newworker', (worker) => {
  worker.observer.on('newrouter', (router) => {
    router.observer.on('newtransport', (transport) => {
      transport.observer.on('newproducer', (producer) => {
        const app = producer.appData as { role?: string; userId?: string };
        // The first of each: pipeToRouter later creates copies (same appData) on other routers.
        const key = app.role === 'floor' ? 'floor' : app.userId === 'speaker' ? 'speaker' : null;
        if (key && !producers.has(key)) producers.set(key, producer);
      });
      if ((transport.appData as { direction?: string }).direction !== 'recv') return;
      transport.observer.on('newconsumer', (consumer) => {
        pending.push({ router, workerPid: worker.pid, producerId: consumer.producerId });
        void drain();
      });
    });
  });
});

serve({
  async start(a: { sinkPorts: number[]; blackholePort: number; sampleEvery: number; manifestPath: string }) {
    sinkPorts = a.sinkPorts;
    blackholePort = a.blackholePort;
    sampleEvery = a.sampleEvery;
    const config = loadConfig({
      JWT_SECRET: BENCH_SECRET,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      MEDIASOUP_WORKERS: '2',
      MAX_CONNECTIONS_PER_IP: '0',
      PARLEY_MANIFEST: a.manifestPath,
    });
    const manifest = await loadManifest(a.manifestPath);
    server = await createServer({ config, manifest, log: createLogger('warn') });
    const addr = await server.listen();
    const pool = server.internalsForTesting.pool;
    return { port: addr.port, workerPids: pool.workers().map((w) => w.pid), budget: pool.budget };
  },

  shadows() {
    return { created, failed, firstError, pending: pending.length, byWorker: Object.fromEntries(byWorker) };
  },

  sampled() {
    return [...sampled.entries()];
  },

  /** RTP packets received so far by the speaker's producer and by the floor producer. */
  async chain() {
    const out: Record<string, number> = {};
    for (const [k, p] of producers) {
      // An overloaded worker answers late: do not let a statistic hold the measurement up.
      const stats = await Promise.race([
        p.getStats(),
        new Promise<null>((r) => setTimeout(() => r(null), 3_000)),
      ]);
      out[k] = stats
        ? stats.reduce((n, st) => n + Number((st as { packetCount?: number }).packetCount ?? 0), 0)
        : Number.NaN;
    }
    return out;
  },

  mediaStats() {
    return server?.internalsForTesting.media.stats() ?? null;
  },

  async stop() {
    await server?.shutdown();
    server = null;
    return null;
  },
});
