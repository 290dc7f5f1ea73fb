import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../src/server/config/env.js';
import { StationManifest } from '../../src/server/config/manifest.js';
import { createServer, type ParleyServer } from '../../src/server/index.js';
import { createLogger } from '../../src/server/logger.js';
import { TokenIssuer, type IssueOptions } from '../../src/server/auth/token-issuer.js';
import type { Claims } from '../../src/server/auth/claims.js';
import type { Clock } from '../../src/server/time/clock.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghij';

export interface TestServer {
  server: ParleyServer;
  config: Config;
  port: number;
  /** ws://127.0.0.1:<port>/ws */
  wsUrl: string;
  /** http://127.0.0.1:<port> */
  httpUrl: string;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log text, for "never logged" assertions. */
  logText(): string;
  token(claims: Partial<Claims> & { sub: string }, opts?: IssueOptions): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real server on 127.0.0.1 and a free port, configured like production from an env map, with
 * logs captured at debug level so tests can assert what was (never) logged.
 */
export async function startServer(
  env: Record<string, string> = {},
  manifest: unknown = {},
  /**
   * `clock`: the server's time (a FakeClock drives token lifetimes, grace windows… without waiting).
   * `processMetrics`: publish the process metrics, as `npm start` does (off: tests run many servers).
   */
  opts: { clock?: Clock; processMetrics?: boolean } = {},
): Promise<TestServer> {
  // The SFU is off unless a test asks for workers: signaling tests stay light.
  const config = loadConfig({
    JWT_SECRET: TEST_SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    MEDIASOUP_WORKERS: '0',
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString();
      text += s;
      for (const line of s.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger(env.LOG_LEVEL ?? 'debug', sink);
  const server = await createServer({
    config,
    manifest: StationManifest.parse(manifest),
    log,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.processMetrics ? { processMetrics: true } : {}),
  });
  const address: AddressInfo = await server.listen();
  const issuer = new TokenIssuer({ secret: config.auth.secret ?? TEST_SECRET });
  return {
    server,
    config,
    port: address.port,
    wsUrl: `ws://127.0.0.1:${address.port}/ws`,
    httpUrl: `http://127.0.0.1:${address.port}`,
    logs,
    logText: () => text,
    token: (claims, opts) =>
      issuer.issue(claims, {
        ...(config.auth.issuer ? { issuer: config.auth.issuer } : {}),
        ...(config.auth.audience ? { audience: config.auth.audience } : {}),
        ...opts,
      }),
    close: () => server.shutdown(),
  };
}
