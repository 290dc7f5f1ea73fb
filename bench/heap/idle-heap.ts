/**
 * Heap per idle connection, by kind of object: a server under test (the raw `ws` floor, this
 * checkout's Parley and, with BENCH_PARLEY_BASELINE, another checkout's) takes a V8 heap snapshot
 * with no connection open (after a warm-up whose clients closed cleanly) and another with N idle
 * authenticated connections (the connections scenario's tokens and settings, two generator
 * processes); V8 runs a full GC before each snapshot. Prints the heap per connection and the kinds
 * of object that grew, per connection, largest first.
 *
 *   sh scripts/in-loopback-netns.sh tsx bench/heap/idle-heap.ts [connections=5000] [top=30]
 *   BENCH_PARLEY_BASELINE=/work/main sh scripts/in-loopback-netns.sh tsx bench/heap/idle-heap.ts
 *
 * Not part of `npm run bench` (a snapshot of 5,000 connections is ~100 MB to write and parse).
 * The servers run from their `tsc` output as in `npm run bench` (BENCH_SERVERS=source: tsx).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenProc } from '../lib/ipc.js';
import type { Protocol } from '../lib/payloads.js';
import {
  parleyBaselineRoot,
  serveCompiled,
  startParley,
  startServerProc,
  type ServerProc,
} from '../lib/servers.js';
import { sleep } from '../lib/stats.js';
import { diffTallies, tallySnapshot } from './snapshot-diff.js';

const N = Number(process.argv[2] ?? 5_000);
const TOP = Number(process.argv[3] ?? 30);
const GENS = 2;
const WARMUP = 200;

/** Sends SIGHUP (--heapsnapshot-signal) and waits until the new snapshot file is complete. */
async function snapshot(server: ServerProc, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  server.child.kill('SIGHUP');
  for (let i = 0; i < 600; i++) {
    await sleep(250);
    const fresh = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!fresh) continue;
    const path = join(dir, fresh);
    let size = -1;
    for (;;) {
      await sleep(500);
      const now = statSync(path).size;
      if (now === size && now > 0) return path;
      size = now;
    }
  }
  throw new Error(`${server.name}: no heap snapshot`);
}

async function measure(name: string, protocol: Protocol, start: (flags: string[]) => Promise<ServerProc>) {
  const dir = mkdtempSync(join(tmpdir(), `idle-heap-${name}-`));
  const server = await start([`--heapsnapshot-signal=SIGHUP`, `--diagnostic-dir=${dir}`]);
  const gens = Array.from(
    { length: GENS },
    (_, g) => new GenProc(`heap-gen-${name}-${g}`, 'bench/gen/conn-gen.ts'),
  );
  try {
    const perGen = Math.ceil((N + WARMUP) / GENS);
    await Promise.all(
      gens.map((g, gi) =>
        g.request(
          'prepare',
          {
            protocol,
            url: server.url(protocol === 'peerjs' ? '/peerjs' : '/ws'),
            prefix: `${name}-g${gi}-`,
            count: perGen,
            localAddresses: [2, 3, 4, 5].map((k) => `127.0.0.${k + gi * 4}`),
          },
          { timeoutMs: 120_000 },
        ),
      ),
    );
    await Promise.all(gens.map((g) => g.request('ramp', { from: 0, count: WARMUP / GENS, concurrency: 50 })));
    await Promise.all(gens.map((g) => g.request('closeClean')));
    await sleep(500);
    const s0 = await snapshot(server, dir);
    const ramps = await Promise.all(
      gens.map((g) =>
        g.request<{ opened: number }>(
          'ramp',
          { from: WARMUP / GENS, count: N / GENS, concurrency: 50 },
          { timeoutMs: 180_000 },
        ),
      ),
    );
    const opened = ramps.reduce((n, r) => n + r.opened, 0);
    await sleep(1_000);
    const s1 = await snapshot(server, dir);
    const a = tallySnapshot(s0);
    const b = tallySnapshot(s1);
    const perConn = (b.totalBytes - a.totalBytes) / opened;
    process.stdout.write(
      `\n${name}: ${opened} idle connections, heap ${a.totalBytes} → ${b.totalBytes} B = ${perConn.toFixed(0)} B per connection\n`,
    );
    for (const d of diffTallies(a, b, opened).slice(0, TOP)) {
      process.stdout.write(
        `  ${d.bytesPerUnit.toFixed(1).padStart(8)} B  ${d.countPerUnit.toFixed(2).padStart(6)} ×  ${d.kind}\n`,
      );
    }
    return perConn;
  } finally {
    await server.stop({ kill: true });
    await Promise.all(gens.map((g) => g.request('terminate').catch(() => undefined)));
    await Promise.all(gens.map((g) => g.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

serveCompiled(process.env.BENCH_SERVERS !== 'source');
const env = { MAX_CONNECTIONS_PER_IP: '0', MAX_CONNECTIONS: '0', MEDIASOUP_WORKERS: '0' };
const which = (process.env.IDLE_HEAP_SERVERS ?? 'raw,parley,baseline').split(',');
const results: Record<string, number> = {};
if (which.includes('raw'))
  results.raw = await measure('raw', 'raw', (nodeFlags) =>
    startServerProc('raw-heap', 'bench/baselines/raw-relay.ts', { nodeFlags }),
  );
if (which.includes('parley'))
  results.parley = await measure('parley', 'parley', (nodeFlags) =>
    startParley('parley-heap', env, { nodeFlags }),
  );
const baseline = parleyBaselineRoot();
if (baseline && which.includes('baseline'))
  results.baseline = await measure('parley-baseline', 'parley', (nodeFlags) =>
    startParley('parley-heap-baseline', env, { nodeFlags, root: baseline }),
  );
process.stdout.write(`\n${JSON.stringify({ connections: N, heapBytesPerConnection: results })}\n`);
