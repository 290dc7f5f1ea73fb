import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function token(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
  });
}

describe('npm run token', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ JWT_ISSUER: 'parley-cli', JWT_AUDIENCE: 'parley' });
  });
  afterAll(() => srv.close());

  it('mints a token the server accepts, with the grants asked for', async () => {
    const { stdout } = await token(
      ['--sub', 'alice', '--name', 'Alice', '--rooms', 'dispatch,lobby', '--ttl', '600', '--priority', '7'],
      { JWT_SECRET: TEST_SECRET, JWT_ISSUER: 'parley-cli', JWT_AUDIENCE: 'parley' },
    );
    const jwt = stdout.trim();
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({
      sub: 'alice',
      name: 'Alice',
      rooms: ['dispatch', 'lobby'],
      pttPriority: 7,
      iss: 'parley-cli',
      aud: 'parley',
    });
    expect(claims.exp! - claims.iat!).toBe(600);
    const c = await TestClient.connect(srv.wsUrl, jwt);
    expect(await c.request('room:join', { roomId: 'other' })).toMatchObject({
      payload: { code: 'FORBIDDEN' },
    });
    await c.close();
  });

  it('explains what is wrong instead of minting a bad token', async () => {
    await expect(token(['--name', 'NoSub'], { JWT_SECRET: TEST_SECRET })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--sub is required') as string,
    });
    await expect(token(['--sub', 'a', '--ttl', 'soon'], { JWT_SECRET: TEST_SECRET })).rejects.toMatchObject({
      stderr: expect.stringContaining('--ttl') as string,
    });
    await expect(
      token(['--sub', 'a'], { PARLEY_DEV_SECRET_FILE: '/nonexistent/dev-secret' }),
    ).rejects.toMatchObject({ stderr: expect.stringContaining('JWT_SECRET is not set') as string });
  });
});
