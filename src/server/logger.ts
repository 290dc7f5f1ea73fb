import { pino, type DestinationStream, type Logger } from 'pino';
import { LogStream } from './log-stream.js';

export type { Logger };

/**
 * Structured JSON logs. Redaction is a second line of defence: code never passes tokens, TURN
 * secrets or SDP bodies to the logger in the first place, and a test asserts over captured logs.
 *
 * Without a `destination`, lines go to stdout through a `LogStream` (log-stream.ts): asynchronous,
 * because a synchronous write per line blocked the event loop whenever the log pipe was full
 * (pino's `atomic-sleep`, 4.6 % of the server's CPU in a connect ramp, docs/benchmarks.md); in
 * batches of about 4 KB, or every 250 ms when fewer lines come, so that a busy server writes once
 * per ~20 lines and wakes the log reader as seldom; and flushed synchronously on `exit`, so a line
 * logged just before `process.exit` (fatal start-up errors) is not lost.
 *
 * Not pino's own asynchronous destination (sonic-boom 4.2.1; 5.0.2 has the same code): its
 * `write()` takes `Buffer.byteLength` of everything gathered so far on every line (a cons-string
 * of up to 16 KiB that V8 flattens and scans again each time), so one "connection opened" line
 * cost 3.0–4.5 µs, against 0.54 µs into a sink that does nothing and ~1 µs with a batcher that
 * counts each line's bytes once. The server writes a line per connect and per close (issue #14).
 * `LogStream` also bounds what it holds when the reader stalls, and says how many lines it dropped.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'parley' },
      redact: {
        paths: [
          'token',
          '*.token',
          'resumeToken',
          '*.resumeToken',
          'sdp',
          '*.sdp',
          'secret',
          '*.secret',
          'password',
          '*.password',
          'authorization',
          '*.authorization',
          'headers.authorization',
          '*.headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination ??
      (level === 'silent' ? undefined : new LogStream({ fd: 1, droppedLine: droppedLinesNotice })),
  );
}

/**
 * Lines the logger's own stdout stream has dropped so far (a stalled or closed log reader;
 * log-stream.ts), for `/metrics`. 0 for a logger writing somewhere else.
 */
export function logLinesDropped(log: Logger): number {
  const stream: unknown = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return stream instanceof LogStream ? stream.droppedLines : 0;
}

/** Where lines were dropped (a stalled log reader), a line as this logger would write it at warn. */
const droppedLinesNotice = (dropped: number, timeMs: number): string =>
  `{"level":40,"time":${timeMs},"svc":"parley","dropped":${dropped},"msg":"log lines dropped"}\n`;
