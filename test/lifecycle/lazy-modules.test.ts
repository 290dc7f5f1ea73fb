/**
 * A node loads only what its configuration uses: on the memory backend it never loads ioredis, and
 * with MEDIASOUP_WORKERS=0 (signaling only) it never loads mediasoup. Together they were ~6.4 MB of
 * heap that V8 marks on every major GC (docs/benchmarks.md, twelfth pass), so a static import that
 * brings either back must fail here. An HS256 node never loads jose (~80 ms of its start-up;
 * fourteenth pass): only RS256 / ES256 verify on it. The server runs as its own process with a
 * module hook that reports every package it resolves.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';

/** A `--import` that registers a resolve hook printing each bare specifier (a package) to stderr. */
const HOOKS = `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (!/^[./]|^node:|^file:|^data:/.test(specifier)) process.stderr.write('[resolve] ' + specifier + '\\n');
  return next(specifier, context);
}`)}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module'; register(${JSON.stringify(HOOKS)});`,
)}`;

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** Starts the server with `env`, waits for "listening", and returns the packages it resolved. */
async function packagesResolved(env: Record<string, string>): Promise<Set<string>> {
  const child = spawn(process.execPath, ['--import', REGISTER, '--import', 'tsx', 'src/server/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: '0',
      NODE_ENV: 'production',
      JWT_SECRET: 'lazy-modules-test-secret-0123456789abcdef',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"listening"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${err}`)));
  });
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  const packages = new Set<string>();
  for (const m of err.matchAll(/^\[resolve\] (\S+)$/gm)) packages.add(m[1]);
  return packages;
}

const loads = (packages: Set<string>, name: string) =>
  [...packages].some((p) => p === name || p.startsWith(`${name}/`));

describe('modules a node loads', () => {
  it('a signaling-only node on the memory backend loads neither mediasoup nor ioredis', async () => {
    const packages = await packagesResolved({ MEDIASOUP_WORKERS: '0' });
    // The hook works: the packages every node needs were seen.
    expect(loads(packages, 'ws')).toBe(true);
    expect(loads(packages, 'pino')).toBe(true);
    expect(loads(packages, 'mediasoup')).toBe(false);
    expect(loads(packages, 'ioredis')).toBe(false);
  }, 60_000);

  it('an HS256 node loads no jose, in production and in development (its dev token issuer signs on node:crypto)', async () => {
    expect(loads(await packagesResolved({ MEDIASOUP_WORKERS: '0' }), 'jose')).toBe(false);
    const dev = await packagesResolved({ MEDIASOUP_WORKERS: '0', NODE_ENV: 'development' });
    expect(loads(dev, 'ws')).toBe(true);
    expect(loads(dev, 'jose')).toBe(false);
  }, 60_000);

  it('an RS256 node loads jose', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const packages = await packagesResolved({ MEDIASOUP_WORKERS: '0', JWT_SECRET: '', JWT_PUBLIC_KEY: pem });
    expect(loads(packages, 'jose')).toBe(true);
  }, 60_000);

  it('a node with a mediasoup worker loads mediasoup', async () => {
    const packages = await packagesResolved({ MEDIASOUP_WORKERS: '1' });
    expect(loads(packages, 'mediasoup')).toBe(true);
    expect(loads(packages, 'ioredis')).toBe(false);
  }, 60_000);
});
