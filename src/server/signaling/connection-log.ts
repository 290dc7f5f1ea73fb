import type { Logger } from '../logger.js';

/**
 * The two lines SPEC §Logging asks for on every connection, "connection opened" and "connection
 * closed", at info, with the remote address. They are written through a child of the server's
 * logger whose redaction is off: every field is a string, number or null built by the server, under
 * a key (`conn`, `remote`, `userId`, `dialect`, `code`, `session`) that no redact path names, and
 * none is an object, so the `*.x` paths cannot match either. Redaction had nothing to censor here,
 * yet pino's redactor ran on each of them and was ~11 µs of a connect's ~12 µs line
 * (docs/benchmarks.md, Round 2, fifth pass); the lines' bytes are the same with it or without it
 * (test/unit/connection-log.test.ts). The parameters' types are what keeps it safe: no object, so
 * nothing a redact path could name, can be passed.
 */
export class ConnectionLog {
  readonly #log: Logger;

  constructor(log: Logger) {
    // pino's child options override the parent's redaction; level, stream and format are inherited.
    this.#log = log.child({}, { redact: { paths: [] } });
  }

  opened(conn: string, remote: string, userId: string | null, dialect: string | null): void {
    // No spread: no intermediate object per connect for the optional key.
    if (dialect !== null) this.#log.info({ conn, remote, userId, dialect }, 'connection opened');
    else this.#log.info({ conn, remote, userId }, 'connection opened');
  }

  closed(conn: string, remote: string, code: number, session: string | null): void {
    this.#log.info({ conn, remote, code, session }, 'connection closed');
  }
}
