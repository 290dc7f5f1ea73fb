import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/server/logger.js';

/** A real logger at `level` whose JSON lines are kept, parsed, in `lines` (for asserting on logs). */
export function captureLogs(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger(level, sink), lines };
}
