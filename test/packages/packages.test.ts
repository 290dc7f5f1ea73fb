import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const run = promisify(execFile);
const npm = (args: string[], cwd: string) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    maxBuffer: 32 * 1024 * 1024,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });

/** What the server needs and a browser app must never install. */
const SERVER_DEPENDENCIES = ['mediasoup', 'ioredis', 'pino', 'prom-client', 'ws', 'jose'];
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

interface PackResult {
  name: string;
  filename: string;
  size: number;
  files: { path: string }[];
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * A package-lock for `deps` (name → tarball path) whose registry packages are copied from the
 * repository's own lock, where `npm install` put them (same versions, same integrity), so that
 * `npm ci --offline` installs from the npm cache alone, with no registry metadata.
 */
async function scratchLock(deps: Record<string, string>): Promise<object> {
  const rootLock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages: Record<string, LockEntry> = {
    '': {
      name: 'scratch',
      dependencies: Object.fromEntries(Object.keys(deps).map((n) => [n, `file:${deps[n]}`])),
    },
  };
  const resolveFrom = (from: string, name: string): string | null => {
    for (let dir = from; ; dir = dir.replace(/\/?node_modules\/(@[^/]+\/)?[^/]+$/, '')) {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (rootLock.packages[key]) return key;
      if (!dir) return null;
    }
  };
  const visit = (from: string, entryDeps: Record<string, string>) => {
    for (const name of Object.keys(entryDeps)) {
      if (name.startsWith('@parley-rtc/')) continue;
      const key = resolveFrom(from, name);
      if (!key)
        throw new Error(`${name} (needed by ${from || 'the scratch project'}) is not in package-lock.json`);
      if (packages[key]) continue;
      const entry: LockEntry = { ...rootLock.packages[key] };
      for (const flag of ['dev', 'devOptional', 'peer']) delete entry[flag];
      packages[key] = entry;
      visit(key, { ...entry.dependencies, ...entry.optionalDependencies });
    }
  };
  for (const [name, tarball] of Object.entries(deps)) {
    const manifest = JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'])).stdout) as {
      version: string;
      dependencies?: Record<string, string>;
    };
    const key = `node_modules/${name}`;
    packages[key] = {
      version: manifest.version,
      resolved: `file:${tarball}`,
      dependencies: manifest.dependencies ?? {},
    };
    visit(key, manifest.dependencies ?? {});
  }
  return { name: 'scratch', lockfileVersion: 3, requires: true, packages };
}

async function installedPackages(dir: string): Promise<{ name: string; scripts: Record<string, string> }[]> {
  const found: { name: string; scripts: Record<string, string> }[] = [];
  const walk = async (modules: string) => {
    let entries: string[];
    try {
      entries = await readdir(modules);
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.startsWith('.')) continue;
      const dirs = entry.startsWith('@')
        ? (await readdir(join(modules, entry))).map((e) => join(modules, entry, e))
        : [join(modules, entry)];
      for (const d of dirs) {
        const pkg = JSON.parse(await readFile(join(d, 'package.json'), 'utf8')) as {
          name: string;
          scripts?: Record<string, string>;
        };
        found.push({ name: pkg.name, scripts: pkg.scripts ?? {} });
        await walk(join(d, 'node_modules'));
      }
    }
  };
  await walk(join(dir, 'node_modules'));
  return found;
}

describe('the npm packages: packed, installed into a fresh project offline, type-checked and bundled', () => {
  let work: string;
  const packed: Record<string, PackResult> = {};
  const tarball = (name: string) => join(work, 'packs', packed[name].filename);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'parley-packages-'));
    await mkdir(join(work, 'packs'));
    // prepack builds each package from src/ (scripts/build-package.ts).
    const { stdout } = await npm(
      [
        'pack',
        '--json',
        '--workspace=packages/protocol',
        '--workspace=packages/sdk',
        '--workspace=packages/server',
        `--pack-destination=${join(work, 'packs')}`,
      ],
      ROOT,
    );
    const json = stdout.slice(stdout.indexOf('[\n'));
    for (const result of JSON.parse(json) as PackResult[]) packed[result.name] = result;
  }, 300_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('each package holds only its build (a files whitelist): no sources, tests, bench, scripts or CI', () => {
    expect(Object.keys(packed).sort()).toEqual([
      '@parley-rtc/protocol',
      '@parley-rtc/sdk',
      '@parley-rtc/server',
    ]);
    for (const [name, result] of Object.entries(packed)) {
      const paths = result.files.map((f) => f.path);
      expect(paths, name).toContain('package.json');
      for (const path of paths) {
        expect(path, name).not.toMatch(/^(src|test|bench|\.ci|docs|examples|node_modules)\//);
        if (path.endsWith('.ts')) expect(path, name).toMatch(/\.d\.ts$/);
      }
    }
    const sdk = packed['@parley-rtc/sdk'].files.map((f) => f.path);
    expect(sdk).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/parley.js', 'dist/parley.iife.js']),
    );
    expect(sdk.every((p) => p === 'package.json' || p === 'README.md' || p.startsWith('dist/'))).toBe(true);
    const server = packed['@parley-rtc/server'].files.map((f) => f.path);
    expect(server).toEqual(
      expect.arrayContaining([
        'dist/server/main.js',
        'dist/cli/token.js',
        'web/dist/index.html',
        'web/dist/sdk/parley.js',
        'scripts/mediasoup/ensure-worker.mjs',
        'postinstall.mjs',
      ]),
    );
    // Small: the SDK is its ESM build plus two bundles; the protocol is schemas and types.
    expect(packed['@parley-rtc/sdk'].size).toBeLessThan(400 * 1024);
    expect(packed['@parley-rtc/protocol'].size).toBeLessThan(100 * 1024);
  });

  it('the SDK installs with no server dependency and no install script anywhere in its tree', async () => {
    const app = join(work, 'app');
    await mkdir(app);
    const deps = {
      '@parley-rtc/sdk': tarball('@parley-rtc/sdk'),
      '@parley-rtc/protocol': tarball('@parley-rtc/protocol'),
    };
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(Object.entries(deps).map(([n, t]) => [n, `file:${t}`])),
      }),
    );
    await writeFile(join(app, 'package-lock.json'), JSON.stringify(await scratchLock(deps)));
    await npm(['ci', '--offline'], app);

    const installed = await installedPackages(app);
    const names = installed.map((p) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(['@parley-rtc/sdk', '@parley-rtc/protocol', 'mediasoup-client']),
    );
    for (const dep of SERVER_DEPENDENCIES) expect(names, dep).not.toContain(dep);
    for (const pkg of installed) {
      for (const script of INSTALL_SCRIPTS)
        expect(pkg.scripts[script], `${pkg.name} ${script}`).toBeUndefined();
    }
    const sdkManifest = JSON.parse(
      await readFile(join(app, 'node_modules/@parley-rtc/sdk/package.json'), 'utf8'),
    ) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(sdkManifest.dependencies).sort()).toEqual([
      '@parley-rtc/protocol',
      'mediasoup-client',
    ]);

    // The installed SDK's ESM build imports the protocol package, not a copy of its own.
    const built = await readFile(join(app, 'node_modules/@parley-rtc/sdk/dist/close-reason.js'), 'utf8');
    expect(built).toContain("from '@parley-rtc/protocol/close-codes.js'");
    await expect(stat(join(app, 'node_modules/@parley-rtc/sdk/dist/protocol'))).rejects.toThrow();
  });

  it('the Start here example type-checks against the installed SDK (tsc --strict), and a wrong call does not', async () => {
    const app = join(work, 'app');
    await cp(join(ROOT, 'examples/start-here/app.ts'), join(app, 'app.ts'));
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        verbatimModuleSyntax: true,
      },
      files: ['app.ts'],
    };
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app }).catch(
      (err: Error & { stdout?: string }) => {
        throw new Error(`tsc failed:\n${err.stdout ?? err.message}`);
      },
    );

    // Proof that the types are checked: a misspelt option and a wrong argument type fail.
    await writeFile(
      join(app, 'wrong.ts'),
      "import { ParleyClient } from '@parley-rtc/sdk';\nawait ParleyClient.connect({ url: 3000, tokn: 'x' });\n",
    );
    await writeFile(join(app, 'tsconfig.wrong.json'), JSON.stringify({ ...tsconfig, files: ['wrong.ts'] }));
    const wrong = await run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], { cwd: app }).then(
      () => '',
      (err: Error & { stdout?: string }) => err.stdout ?? err.message,
    );
    expect(wrong).toMatch(/wrong\.ts\(2,\d+\): error TS2\d{3}/);
  }, 180_000);

  it('esbuild bundles the example for the browser from the installed packages, without Zod', async () => {
    const app = join(work, 'app');
    const result = await build({
      absWorkingDir: app,
      entryPoints: ['app.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.includes('node_modules/@parley-rtc/sdk/dist/'))).toBe(true);
    expect(inputs.some((i) => i.includes('node_modules/mediasoup-client/'))).toBe(true);
    expect(inputs.filter((i) => i.includes('node_modules/zod/'))).toEqual([]);
    expect(result.outputFiles[0].text).toContain('/api/dev-token');
  });

  it('the SDK bundles in the package load as a module and as a classic script', async () => {
    const dir = join(work, 'app/node_modules/@parley-rtc/sdk/dist');
    const esm = await readFile(join(dir, 'parley.js'), 'utf8');
    expect(/export\s*{[^}]*ParleyClient/.test(esm)).toBe(true);
    expect(/^import /m.test(esm)).toBe(false); // self-contained: loads from a <script type="module"> as is
    const iife = await readFile(join(dir, 'parley.iife.js'), 'utf8');
    expect(iife.slice(0, 40)).toMatch(/^(?:"use strict";)?var Parley\s*=/);
  });

  it('the protocol installs on its own and validates messages in Node', async () => {
    const app = join(work, 'protocol-app');
    await mkdir(app);
    const deps = { '@parley-rtc/protocol': tarball('@parley-rtc/protocol') };
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        type: 'module',
        dependencies: { '@parley-rtc/protocol': `file:${deps['@parley-rtc/protocol']}` },
      }),
    );
    await writeFile(join(app, 'package-lock.json'), JSON.stringify(await scratchLock(deps)));
    await npm(['ci', '--offline'], app);
    const script = [
      "import { ClientMessage, ERRORS } from '@parley-rtc/protocol';",
      "const ok = ClientMessage.safeParse({ type: 'room:join', payload: { roomId: 'dispatch' }, timestamp: 1 });",
      "const bad = ClientMessage.safeParse({ type: 'room:join', payload: {}, timestamp: 1 });",
      'console.log(JSON.stringify({ ok: ok.success, bad: bad.success, status: ERRORS.ROOM_NOT_FOUND.httpStatus }));',
    ].join('\n');
    await writeFile(join(app, 'check.mjs'), script);
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ ok: true, bad: false, status: 404 });
  });

  it('the server package exports @parley-rtc/server/server-sdk: verifyWebhook and the admin client load in Node', async () => {
    const files = packed['@parley-rtc/server'].files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/server-sdk/index.js', 'dist/server-sdk/index.d.ts']));
    // Next to the protocol installed above. Unpacked rather than installed: its install would build
    // mediasoup's worker, and the server SDK needs nothing but the protocol and node:crypto.
    const app = join(work, 'protocol-app');
    const server = join(app, 'node_modules/@parley-rtc/server');
    await mkdir(server, { recursive: true });
    await run('tar', ['-xzf', tarball('@parley-rtc/server'), '-C', server, '--strip-components=1']);
    const script = [
      "import { createHmac } from 'node:crypto';",
      "import { ADMIN_API, ParleyAdmin, verifyWebhook } from '@parley-rtc/server/server-sdk';",
      "const body = JSON.stringify({ id: 'e1', event: 'node.up', createdAt: 1, node: 'n', address: 'a', startedAt: 1 });",
      'const t = Math.floor(Date.now() / 1000);',
      "const sig = `t=${t},v1=${createHmac('sha256', 'the-secret').update(`${t}.${body}`).digest('hex')}`;",
      "const event = verifyWebhook(body, { 'parley-signature': sig }, 'the-secret');",
      'let refused = null;',
      "try { verifyWebhook(body, { 'parley-signature': sig }, 'another-secret'); } catch (err) { refused = err.reason; }",
      "const admin = new ParleyAdmin({ baseUrl: 'http://127.0.0.1:9', credential: 'k' });",
      'console.log(JSON.stringify({ event: event.id, refused, listRooms: typeof admin.listRooms, ops: Object.keys(ADMIN_API) }));',
    ].join('\n');
    await writeFile(join(app, 'server-sdk.mjs'), script);
    const { stdout } = await run(process.execPath, ['server-sdk.mjs'], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({
      event: 'e1',
      refused: 'bad-signature',
      listRooms: 'function',
      ops: expect.arrayContaining([
        'listRooms',
        'removeParticipant',
        'muteParticipant',
        'mintToken',
      ]) as string[],
    });
  });

  it('the server package carries the worker installer as its postinstall; the SDK has none', async () => {
    const read = async (name: string) =>
      JSON.parse((await run('tar', ['-xzOf', tarball(name), 'package/package.json'])).stdout) as {
        scripts?: Record<string, string>;
        dependencies?: Record<string, string>;
      };
    const server = await read('@parley-rtc/server');
    expect(server.scripts?.postinstall).toBe('node postinstall.mjs');
    expect(Object.keys(server.dependencies ?? {})).toEqual(expect.arrayContaining(SERVER_DEPENDENCIES));
    const sdk = await read('@parley-rtc/sdk');
    for (const script of INSTALL_SCRIPTS) expect(sdk.scripts?.[script]).toBeUndefined();
  });
});
