/**
 * Builds one of the npm packages under packages/ from the sources where they live (src/ is not
 * moved: the repository's own imports keep working). `npm pack` runs it (prepack); so does
 * `npm run build -w @parley-rtc/<name>`.
 *
 *   protocol  src/protocol → packages/protocol/dist (ESM + .d.ts; depends on zod only)
 *   sdk       src/client   → packages/sdk/dist (ESM + .d.ts importing @parley-rtc/protocol and
 *             mediasoup-client), plus dist/parley.js (one ES module, everything bundled, for
 *             <script type="module">) and dist/parley.iife.js (a classic script: `window.Parley`)
 *   server    src/server, src/server-sdk, src/cli → packages/server/dist, the demo page in
 *             web/dist, and the mediasoup worker installer its postinstall runs
 *
 * Relative imports of src/protocol become imports of `@parley-rtc/protocol/<file>.js`, so the SDK
 * and the server share the protocol package instead of each carrying a copy.
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import { buildWeb } from './build-web.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const run = promisify(execFile);

export type PackageName = 'protocol' | 'sdk' | 'server';
export const PACKAGES: readonly PackageName[] = ['protocol', 'sdk', 'server'];

/** Compiles `include` (folders under src/) with tsc into `outDir`, laid out as under src/. */
async function compile(include: string[], outDir: string, dom: boolean): Promise<void> {
  const config = {
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: {
      rootDir: join(ROOT, 'src'),
      outDir,
      noEmit: false,
      sourceMap: false,
      declaration: true,
      typeRoots: [join(ROOT, 'node_modules/@types')],
      ...(dom ? { lib: ['ES2023', 'DOM', 'DOM.Iterable'] } : {}),
    },
    include: include.map((dir) => join(ROOT, 'src', dir)),
    exclude: [join(ROOT, 'src/**/tsconfig*.json')],
  };
  const scratch = await mkdtemp(join(tmpdir(), 'parley-build-'));
  try {
    const file = join(scratch, 'tsconfig.json');
    await writeFile(file, JSON.stringify(config));
    await run(process.execPath, [TSC, '-p', file], { cwd: ROOT }).catch(
      (err: Error & { stdout?: string }) => {
        throw new Error(`tsc failed for ${include.join(', ')}:\n${err.stdout ?? err.message}`);
      },
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `'../protocol/x.js'` (any depth) → `'@parley-rtc/protocol/x.js'`. */
export function rewriteProtocolImports(source: string): string {
  return source.replace(/(['"])(?:\.\.\/)+protocol\/([\w.-]+\.js)\1/g, '$1@parley-rtc/protocol/$2$1');
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

/** Copies `from` to `to`, rewriting protocol imports in .js and .d.ts files. */
async function copyRewritten(from: string, to: string): Promise<void> {
  for await (const file of walk(from)) {
    const target = join(to, relative(from, file));
    await mkdir(dirname(target), { recursive: true });
    const text = await readFile(file, 'utf8');
    await writeFile(
      target,
      file.endsWith('.js') || file.endsWith('.ts') ? rewriteProtocolImports(text) : text,
    );
  }
}

async function buildProtocol(pkg: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'parley-protocol-'));
  try {
    await compile(['protocol'], out, false);
    await cp(join(out, 'protocol'), join(pkg, 'dist'), { recursive: true });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function buildSdk(pkg: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'parley-sdk-'));
  try {
    await compile(['client'], out, true);
    await copyRewritten(join(out, 'client'), join(pkg, 'dist'));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  const bundle: BuildOptions = {
    entryPoints: [join(ROOT, 'src/client/index.ts')],
    bundle: true,
    minify: true,
    platform: 'browser',
    target: ['chrome111', 'firefox115', 'safari16'],
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none',
    logLevel: 'warning',
  };
  await build({ ...bundle, format: 'esm', outfile: join(pkg, 'dist/parley.js') });
  await build({ ...bundle, format: 'iife', globalName: 'Parley', outfile: join(pkg, 'dist/parley.iife.js') });
}

async function buildServer(pkg: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'parley-server-'));
  try {
    await compile(['server', 'server-sdk', 'cli'], out, false);
    for (const dir of ['server', 'server-sdk', 'cli']) {
      await copyRewritten(join(out, dir), join(pkg, 'dist', dir));
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  const main = join(pkg, 'dist/server/main.js');
  await writeFile(main, `#!/usr/bin/env node\n${await readFile(main, 'utf8')}`);
  await chmod(main, 0o755);
  await chmod(join(pkg, 'dist/cli/token.js'), 0o755);
  await buildWeb({ outdir: join(pkg, 'web/dist') });
  // The worker installer, as the repository's own postinstall runs it (postinstall.mjs calls it).
  await cp(join(ROOT, 'scripts/mediasoup'), join(pkg, 'scripts/mediasoup'), { recursive: true });
  await cp(join(ROOT, 'scripts/system-packages.mjs'), join(pkg, 'scripts/system-packages.mjs'));
}

export async function buildPackage(name: PackageName): Promise<string> {
  const pkg = join(ROOT, 'packages', name);
  await rm(join(pkg, 'dist'), { recursive: true, force: true });
  if (name === 'protocol') await buildProtocol(pkg);
  else if (name === 'sdk') await buildSdk(pkg);
  else {
    await rm(join(pkg, 'web'), { recursive: true, force: true });
    await rm(join(pkg, 'scripts'), { recursive: true, force: true });
    await buildServer(pkg);
  }
  return pkg;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !PACKAGES.includes(n as PackageName));
  if (names.length === 0 || unknown.length > 0) {
    process.stderr.write(`usage: tsx scripts/build-package.ts ${PACKAGES.join('|')} …\n`);
    process.exit(2);
  }
  for (const name of names as PackageName[]) {
    const pkg = await buildPackage(name);
    process.stdout.write(`built ${relative(ROOT, pkg)}\n`);
  }
}
