import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTurnCredentials, ParleyError } from '../../src/client/index.js';
import { ERRORS, errorBody } from '../../src/protocol/errors.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('one error shape, built by the server and parsed by the SDK', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ LOG_LEVEL: 'warn' }); // no TURN_SECRET: /api/turn-credentials is 503
  });
  afterAll(() => srv.close());

  it('an `error` payload becomes a ParleyError with its code, message as reason, and details', () => {
    const err = ParleyError.fromBody(
      errorBody('INVALID_MESSAGE', 'payload.roomId: required', { path: 'payload.roomId' }),
    );
    expect(err).toMatchObject({
      code: 'INVALID_MESSAGE',
      reason: 'payload.roomId: required',
      details: { path: 'payload.roomId' },
      retryable: false,
    });
    expect(ParleyError.fromBody(errorBody('RATE_LIMITED'))).toMatchObject({
      reason: ERRORS.RATE_LIMITED.message,
      details: undefined,
      retryable: true,
    });
  });

  it('an HTTP error body from the real server becomes a ParleyError with the same code and message', async () => {
    const token = await srv.token({ sub: 'turn-less' });
    const err = await fetchTurnCredentials(srv.httpUrl, token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParleyError);
    expect(err).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      reason: 'TURN is not configured on this server',
      details: { status: 503 },
      retryable: true,
    });
  });
});
