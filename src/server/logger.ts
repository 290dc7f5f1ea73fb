import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Redaction is a second line of defence: code never passes tokens, TURN
 * secrets or SDP bodies to the logger in the first place, and a test asserts over captured logs.
 *
 * Without a `destination`, lines go to stdout asynchronously: a synchronous write per line blocked
 * the event loop whenever the log pipe was full (pino's `atomic-sleep`, 4.6 % of the server's CPU in
 * a connect ramp, docs/benchmarks.md). Lines are written in batches of about 4 KB, or every
 * 250 ms when fewer come (pino's own recipe for asynchronous logging): a busy server then writes
 * once per ~20 lines instead of once per line, and wakes the log reader as seldom. pino flushes
 * what is still buffered on `exit`, so a line logged just before `process.exit` (fatal start-up
 * errors) is not lost.
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
      (level === 'silent'
        ? undefined
        : pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES, periodicFlush: FLUSH_MS })),
  );
}

/** Bytes gathered before a write (under sonic-boom's maxWrite). */
const BATCH_BYTES = 4_096;
/** The longest a line waits in the batch. */
const FLUSH_MS = 250;
