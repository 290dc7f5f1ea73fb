import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Claims } from '../../src/server/auth/claims.js';
import { TestClient } from './client.js';
import { startServer, type TestServer } from './server.js';

/**
 * One in-process server for a describe block (started before its tests, closed after them) and
 * the clients its tests open (closed after each test). Call it in the describe's body; `server()`
 * and `connect()` are for use inside its tests and hooks.
 */
export function serverForSuite(env: Record<string, string> = {}) {
  let srv: TestServer | undefined;
  let open: TestClient[] = [];
  const closeClients = async () => {
    const closing = open;
    open = [];
    await Promise.all(closing.map((c) => c.close(1000)));
  };
  beforeAll(async () => {
    srv = await startServer(env);
  });
  afterEach(closeClients);
  afterAll(() => srv?.close());
  const server = (): TestServer => {
    if (!srv) throw new Error('the suite’s server is not started yet: use it inside a test or hook');
    return srv;
  };
  return {
    server,
    /** An authenticated client with these claims, closed after the test. */
    async connect(claims: Partial<Claims> & { sub: string }): Promise<TestClient> {
      const s = server();
      return adopt(await TestClient.connect(s.wsUrl, await s.token(claims)));
    },
    /** A client the test opened itself, closed after the test like the others. */
    adopt,
    /** Closes every client opened so far (as after each test). */
    closeClients,
  };
  function adopt(c: TestClient): TestClient {
    open.push(c);
    return c;
  }
}
