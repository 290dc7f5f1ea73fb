import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Redaction is a second line of defence: code never passes tokens, TURN
 * secrets or SDP bodies to the logger in the first place, and a test asserts over captured logs.
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
    destination,
  );
}
