import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  ParleyClient,
  ParleyError,
  SignalingClient,
  devToken,
  type SignalingClientOptions,
} from '../../src/client/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { probeFreePort } from '../helpers/ports.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { nodeWebSocket } from './helpers.js';

/**
 * A browser's WebSocket as far as errors go: it never says why an open failed (no HTTP status, no
 * ECONNREFUSED), so the SDK has to find out over HTTP (connect-diagnosis.ts).
 */
const browserLikeWebSocket: SignalingClientOptions['webSocketFactory'] = (url, protocols) => {
  const ws = new WebSocket(url, protocols);
  ws.on('error', () => undefined);
  const silent = {
    get readyState() {
      return ws.readyState;
    },
    get protocol() {
      return ws.protocol;
    },
    send: (data: string) => ws.send(data),
    close: (code?: number, reason?: string) => ws.close(code, reason),
    onopen: null as ((e: unknown) => void) | null,
    onmessage: null as ((e: { data: unknown }) => void) | null,
    onclose: null as ((e: { code: number; reason: string }) => void) | null,
    onerror: null as ((e: unknown) => void) | null,
  };
  ws.on('open', () => silent.onopen?.({}));
  ws.on('message', (data: Buffer) => silent.onmessage?.({ data: data.toString() }));
  ws.on('close', (code: number, reason: Buffer) => silent.onclose?.({ code, reason: reason.toString() }));
  ws.on('error', () => silent.onerror?.({})); // no message: what a browser gives
  return silent;
};

async function failure(promise: Promise<unknown>): Promise<ParleyError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParleyError);
  return err as ParleyError;
}

describe('connection failures name their cause', () => {
  let srv: TestServer;
  let strict: TestServer;
  let deadPort: number;
  const clients: { close(): void }[] = [];
  const client = (options: Partial<SignalingClientOptions> & { token: SignalingClientOptions['token'] }) => {
    const c = new SignalingClient({
      url: srv.httpUrl,
      webSocketFactory: nodeWebSocket,
      reconnectPolicy: { nextRetryDelayInMs: () => null },
      ...options,
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    srv = await startServer({ LOG_LEVEL: 'warn' });
    strict = await startServer({ LOG_LEVEL: 'warn', IN_BAND_AUTH: 'false' });
    deadPort = await probeFreePort(); // nothing listens there
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await srv.close();
    await strict.close();
  });

  /** After each refusal, a good client still connects and joins: nothing else broke. */
  async function serverStillServes(): Promise<void> {
    const ok = client({ token: await srv.token({ sub: 'ok', name: 'Ok' }) });
    await expect(ok.connect()).resolves.toMatchObject({ userId: 'ok' });
    await expect(ok.request('room:join', { roomId: 'after' })).resolves.toMatchObject({ type: 'room:state' });
  }

  for (const [label, factory] of [
    ['node ws', nodeWebSocket],
    ['browser-like', browserLikeWebSocket],
  ] as const) {
    describe(label, () => {
      it('a refused token is UNAUTHORIZED (close 4401 after an in-band auth:request)', async () => {
        const forged = await new TokenIssuer({ secret: 'not-the-secret-0123456789abcdef' }).issue({
          sub: 'mallory',
          name: 'M',
        });
        const err = await failure(client({ token: forged, webSocketFactory: factory }).connect());
        expect(err.code).toBe('UNAUTHORIZED');
        expect(err.reason).toMatch(/refused the token/);
        expect(err.details).toMatchObject({ closeCode: 4401 });
        expect(err.retryable).toBe(false);
        await serverStillServes();
      });

      it('an unreachable server is CONNECTION_FAILED, naming the URL it tried', async () => {
        const url = `http://127.0.0.1:${deadPort}`;
        const err = await failure(client({ url, token: 'x.y.z', webSocketFactory: factory }).connect());
        expect(err.code).toBe('CONNECTION_FAILED');
        expect(err.reason).toContain(`127.0.0.1:${deadPort}`);
        expect(err.details?.tried).toEqual(expect.arrayContaining([`ws://127.0.0.1:${deadPort}/ws`]));
      });

      it('a wrong path on a live server is NOT_FOUND, naming the path and the server', async () => {
        const url = `${srv.httpUrl}/voice`;
        const err = await failure(
          client({
            url,
            token: await srv.token({ sub: 'a', name: 'A' }),
            webSocketFactory: factory,
          }).connect(),
        );
        expect(err.code).toBe('NOT_FOUND');
        expect(err.reason).toContain('/voice/ws');
        expect(err.reason).toContain(srv.httpUrl);
        expect(err.details?.url).toBe(`${srv.wsUrl.replace('/ws', '/voice/ws')}`);
        await serverStillServes();
      });
    });
  }

  it('IN_BAND_AUTH=false: in-band says to put the token on the upgrade; auth: "subprotocol" connects', async () => {
    const token = await strict.token({ sub: 'bob', name: 'Bob' });
    const err = await failure(client({ url: strict.httpUrl, token }).connect());
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.reason).toMatch(/auth: 'subprotocol'/);
    const ok = client({ url: strict.httpUrl, token, auth: 'subprotocol' });
    await expect(ok.connect()).resolves.toMatchObject({ userId: 'bob' });
  });

  it('a token of the wrong shape is INVALID_TOKEN at once, and its content is never echoed', async () => {
    const empty = await failure(client({ token: '  ' }).connect());
    expect(empty).toMatchObject({ code: 'INVALID_TOKEN', retryable: false });
    const object = await failure(client({ token: () => ({ jwt: 'secret-value' }) as never }).connect());
    expect(object.code).toBe('INVALID_TOKEN');
    expect(object.reason).toMatch(/\{token: JWT\}; got object/);
    expect(object.message).not.toContain('secret-value');
    const badJson = await failure(client({ token: '{"token": ' }).connect());
    expect(badJson.code).toBe('INVALID_TOKEN');
    // A token function that throws is not a shape problem: it says what failed.
    const thrown = await failure(
      client({
        token: () => {
          throw new Error('backend down');
        },
      }).connect(),
    );
    expect(thrown).toMatchObject({
      code: 'UNAUTHORIZED',
      reason: 'the token function failed (Error: backend down)',
    });
    await serverStillServes();
  });

  it('the token option takes /api/dev-token JSON as it comes: an object, or its text', async () => {
    const jwt = await srv.token({ sub: 'dev-carol', name: 'Carol' });
    const json = { token: jwt, userId: 'dev-carol', name: 'Carol', expiresAt: Date.now() + 60_000 };
    await expect(client({ token: () => Promise.resolve(json) }).connect()).resolves.toMatchObject({
      userId: 'dev-carol',
    });
    await expect(client({ token: JSON.stringify(json) }).connect()).resolves.toMatchObject({
      userId: 'dev-carol',
    });
  });

  it('an invalid URL throws INVALID_URL listing the accepted forms; nothing is opened', () => {
    for (const url of ['ftp://voice.example.com', 'http://', '::']) {
      let thrown: unknown;
      try {
        new ParleyClient({ url, token: 'x.y.z', webSocketFactory: nodeWebSocket });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ParleyError);
      expect(thrown).toMatchObject({ code: 'INVALID_URL' });
      expect((thrown as ParleyError).reason).toMatch(/Accepted: https:\/\/host/);
    }
  });

  it('devToken() against a server without /api/dev-token is NOT_FOUND saying it is development only', async () => {
    // startServer sets JWT_SECRET: no development issuer, so the route answers 404 as production does.
    const err = await failure(devToken(srv.httpUrl, 'Dana')());
    expect(err.code).toBe('NOT_FOUND');
    expect(err.reason).toMatch(/development server/);
  });
});
