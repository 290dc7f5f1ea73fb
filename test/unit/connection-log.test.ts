import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { ConnectionLog } from '../../src/server/signaling/connection-log.js';

/** A real logger at `level` (the server's, redaction on) whose raw lines are kept as written. */
function rawLogger(level: string) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(line);
      cb();
    },
  });
  return { log: createLogger(level, sink), lines };
}

/** The line with its `time` value blanked (the one field that differs between two writes). */
const timeless = (line: string) => line.replace(/"time":\d+,/, '"time":0,');

// Values chosen to look like what the redact paths name, and to need JSON escaping.
const CASES: [string, string, string | null, string | null][] = [
  ['c1', '127.0.0.1', 'alice', null],
  ['c2', '::ffff:10.0.0.7', null, null],
  ['c3', '203.0.113.9', 'token', 'calls-v0'],
  ['c4', 'authorization', 'secret "quoted" \\ \n naïve ✓', 'password'],
];

describe('ConnectionLog', () => {
  it('writes "connection opened" and "connection closed" byte for byte as the redacting logger does', () => {
    const { log, lines } = rawLogger('info');
    const connLog = new ConnectionLog(log);
    for (const [conn, remote, userId, dialect] of CASES) {
      connLog.opened(conn, remote, userId, dialect);
      if (dialect !== null) log.info({ conn, remote, userId, dialect }, 'connection opened');
      else log.info({ conn, remote, userId }, 'connection opened');
      connLog.closed(conn, remote, 1006, userId);
      log.info({ conn, remote, code: 1006, session: userId }, 'connection closed');
    }
    expect(lines).toHaveLength(CASES.length * 4);
    for (let i = 0; i < lines.length; i += 2) expect(timeless(lines[i])).toBe(timeless(lines[i + 1]));
    // Same level and fields as SPEC §Logging asks: info, with the remote address.
    const first = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(first).toMatchObject({
      level: 30,
      svc: 'parley',
      conn: 'c1',
      remote: '127.0.0.1',
      msg: 'connection opened',
    });
    const withDialect = JSON.parse(lines[8]) as Record<string, unknown>;
    expect(withDialect).toMatchObject({ userId: 'token', dialect: 'calls-v0' });
  });

  it('leaves the server logger redacting everything else', () => {
    const { log, lines } = rawLogger('info');
    new ConnectionLog(log).opened('c1', '127.0.0.1', 'alice', null);
    log.info({ token: 'eyJhbGciOi.secret.sig', peer: { sdp: 'v=0 …' } }, 'something else');
    expect(lines).toHaveLength(2);
    const other = JSON.parse(lines[1]) as Record<string, unknown>;
    expect(other.token).toBe('[redacted]');
    expect(other.peer).toEqual({ sdp: '[redacted]' });
    expect(lines[1]).not.toContain('eyJhbGciOi');
  });

  it("follows the server logger's level", () => {
    const { log, lines } = rawLogger('warn');
    const connLog = new ConnectionLog(log);
    connLog.opened('c1', '127.0.0.1', 'alice', null);
    connLog.closed('c1', '127.0.0.1', 1000, null);
    expect(lines).toEqual([]);
  });
});
