import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalingClient } from '../../src/client/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { record, sdkClient } from './helpers.js';

/**
 * The SDK's `getToken` option against a real server whose clock is fake: on `auth:expiring` the
 * client fetches a fresh token and sends it with `auth:request`, so the connection outlives the
 * token it opened with; a client without it is closed with 4401 at exp.
 */
describe('SignalingClient getToken: token refresh on a live connection', () => {
  let srv: TestServer;
  let clock: FakeClock;
  const clients: SignalingClient[] = [];
  beforeAll(async () => {
    clock = new FakeClock(Date.now());
    srv = await startServer({ LOG_LEVEL: 'warn', AUTH_EXPIRING_LEAD_MS: '30000' }, {}, { clock });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await srv.close();
  });

  it('answers auth:expiring with a fresh token from getToken and stays connected past the first token’s exp', async () => {
    const issued: string[] = [];
    const getToken = async () => {
      const t = await srv.token({ sub: 'fresh', name: 'Fresh' }, { ttlS: 3_600 });
      issued.push(t);
      return t;
    };
    const refreshing = sdkClient(srv, await srv.token({ sub: 'fresh', name: 'Fresh' }, { ttlS: 60 }), {
      getToken,
    });
    const plain = sdkClient(srv, await srv.token({ sub: 'plain' }, { ttlS: 60 }), {
      reconnectPolicy: { nextRetryDelayInMs: () => null },
    });
    clients.push(refreshing, plain);
    await Promise.all([refreshing.connect(), plain.connect()]);
    const seen = record(refreshing, 'auth:expiring', 'reconnecting', 'disconnected');
    const plainSeen = record(plain, 'auth:expiring', 'disconnected');

    await clock.advance(31_000); // 60 s tokens, 30 s lead
    await waitUntil(() => issued.length === 1, 'getToken is asked for a fresh token');
    expect((await refreshing.request('ping', {})).type).toBe('pong'); // after the auth:request, in order
    await waitUntil(() => plainSeen.length === 1, 'the plain client is warned too');
    expect(plainSeen.map((e) => e.event)).toEqual(['auth:expiring']);

    await clock.advance(60_000); // past the first tokens' exp and the clock tolerance
    await waitUntil(() => plainSeen.some((e) => e.event === 'disconnected'), 'the plain client is closed');
    expect((await refreshing.request('ping', {})).type).toBe('pong');
    expect(refreshing.state).toBe('connected');
    expect(seen.map((e) => e.event)).toEqual(['auth:expiring']); // never dropped, never reconnected
    expect(issued).toHaveLength(1);
  });
});
