/**
 * What one "connection opened" line costs the event loop, in process, with each stdout destination
 * the server has had: pino's asynchronous sonic-boom as logger.ts configured it before (4 KB
 * batches, 250 ms flush), the LogStream that replaced it, and a sink that does nothing (the cost
 * of pino's serialisation alone). Each round times N `ConnectionLog.opened` calls per destination,
 * the destinations in a rotating order, with a pause between rounds so that their writes complete.
 * The fd is /dev/null: the kernel's share of a write is left out, only the main thread's is counted.
 *
 *   node --import tsx bench/log-line-cost.ts          (N=10000 ROUNDS=6 by default)
 */
import { openSync } from 'node:fs';
import { pino, type DestinationStream } from 'pino';
import { createLogger } from '../src/server/logger.js';
import { LogStream } from '../src/server/log-stream.js';
import { ConnectionLog } from '../src/server/signaling/connection-log.js';

const N = Number(process.env.N ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const PAUSE_MS = 50;

const fd = openSync('/dev/null', 'w');
const destinations: [string, DestinationStream][] = [
  ['no-op sink', { write: () => {} }],
  ['sonic-boom 4 KB', pino.destination({ dest: fd, sync: false, minLength: 4_096, periodicFlush: 250 })],
  ['LogStream', new LogStream({ fd })],
];
const logs = destinations.map(([name, dest]) => ({
  name,
  log: new ConnectionLog(createLogger('info', dest)),
}));
const perLineUs = new Map<string, number[]>(logs.map((l) => [l.name, []]));

for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < logs.length; k++) {
    const { name, log } = logs[(round + k) % logs.length];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) log.opened(`c${i}`, '203.0.113.9', 'alice', null);
    perLineUs.get(name)?.push(Number(process.hrtime.bigint() - t0) / 1_000 / N);
    await new Promise((r) => setTimeout(r, PAUSE_MS));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, us] of perLineUs) {
  const rounds = us.map((u) => u.toFixed(2)).join(' ');
  process.stderr.write(`${name.padEnd(16)} µs/line: median ${median(us).toFixed(2)}  rounds ${rounds}\n`);
}
