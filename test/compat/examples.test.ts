import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** The runnable examples of docs/migration.md, run as they are documented, against real servers. */
describe('compat: the migration guide’s examples run', () => {
  let standard: TestServer;
  let legacy: TestServer;
  beforeAll(async () => {
    assertLoopbackOnly();
    standard = await startServer(
      // CALL_POLICY=any: the calls-service example's users share no room, as in that service (docs/migration.md).
      { MEDIASOUP_WORKERS: '1', CALL_POLICY: 'any' },
      { signaling: { url: 'ws://127.0.0.1:9/ws' } },
    );
    legacy = await startServer({ IN_BAND_AUTH: 'false', LEGACY_TOKEN_SUBPROTOCOL: 'true' });
  });
  afterAll(async () => {
    await standard.close();
    await legacy.close();
  });

  const example = async (name: string, srv: TestServer) => {
    const { stdout } = await run(process.execPath, [`examples/migration/${name}.mjs`], {
      cwd: ROOT,
      timeout: 15_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        PARLEY_URL: srv.wsUrl,
        PARLEY_TOKEN: await srv.token({ sub: `${name}-alice`, name: 'Alice' }),
        PARLEY_TOKEN_2: await srv.token({ sub: `${name}-bob`, name: 'Bob' }),
      },
    });
    return stdout;
  };

  it('ptt-server.mjs', async () => {
    const out = await example('ptt-server', legacy);
    expect(out).toMatch(/no token\s+"Unexpected server response: 401"/);
    expect(out).toMatch(/subprotocol selected\s+"<the token>"/);
    expect(out).toMatch(/pong\s+\{"type":"pong","id":"1"\}/);
    expect(out).toMatch(/ptt:start →\s+"ptt:granted"/);
  });
  it('skeleton.mjs', async () => {
    const out = await example('skeleton', standard);
    expect(out).toMatch(/station\s+\{"name":"Parley","signaling":\{"url":"ws:\/\/127.0.0.1:9\/ws"\}\}/);
    expect(out).toMatch(/pong\s+\{"type":"pong","timestamp":"number","serverTime":"number"\}/);
    expect(out).toMatch(/invalid JSON →\s+"INVALID_MESSAGE"/);
    expect(out).toMatch(/unknown type →\s+"UNKNOWN_TYPE"/);
  });
  it('calls-service.mjs', async () => {
    const out = await example('calls-service', standard);
    expect(out).toMatch(/bob got\s+\{"type":"call-offer","from":true\}/);
    expect(out).toMatch(/call-error\s+\{"callId":"c2","error":"recipient_offline"\}/);
  });
  it('adr-003.mjs', async () => {
    const out = await example('adr-003', standard);
    expect(out).toMatch(/auth:response\s+\{"userId":"adr-003-alice","name":"Alice"\}/);
    expect(out).toMatch(/codecs\s+\[.*"audio\/opus"/);
    expect(out).toMatch(/send transport\s+\[.*"iceParameters"/);
  });
});
