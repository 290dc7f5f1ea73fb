/**
 * Builds the demo page and the browser SDK bundle with esbuild (no CDN, nothing fetched at run
 * time). `npm run build` runs it; the server serves the result at `/`.
 *
 *   web/dist/index.html                 the page, pointing at the hashed assets
 *   web/dist/assets/main-<hash>.js|css  the demo (immutable: cached for a year)
 *   web/dist/sdk/parley.js              the SDK as one ES module: import { ParleyClient } from '/sdk/parley.js'
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface BuildWebOptions {
  /** Output directory. Default web/dist. */
  outdir?: string;
  /** Default true. */
  minify?: boolean;
  /**
   * Write source maps (`linked`: a `.map` beside each bundle and a `sourceMappingURL` comment).
   * Default: not when NODE_ENV=production (the server will not serve them there anyway).
   */
  sourceMaps?: boolean;
}

export interface BuildWebResult {
  outdir: string;
  /** Output file → bytes. */
  files: Record<string, number>;
}

const common: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16'],
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
};

export async function buildWeb(options: BuildWebOptions = {}): Promise<BuildWebResult> {
  const outdir = resolve(options.outdir ?? join(ROOT, 'web/dist'));
  const minify = options.minify ?? true;
  const sourcemap = (options.sourceMaps ?? process.env.NODE_ENV !== 'production') ? 'linked' : false;
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });

  const [app, sdk] = await Promise.all([
    build({
      ...common,
      minify,
      sourcemap,
      entryPoints: [join(ROOT, 'web/src/main.ts')],
      outdir: join(outdir, 'assets'),
      entryNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
    }),
    build({
      ...common,
      minify,
      sourcemap,
      entryPoints: { parley: join(ROOT, 'src/client/index.ts') },
      outdir: join(outdir, 'sdk'),
    }),
  ]);

  const outputs = Object.keys(app.metafile?.outputs ?? {});
  const js = outputs.find((f) => f.endsWith('.js') && basename(f).startsWith('main-'));
  const css = outputs.find((f) => f.endsWith('.css') && basename(f).startsWith('main-'));
  if (!js || !css) throw new Error(`build-web: no main js/css among ${outputs.join(', ')}`);
  const template = await readFile(join(ROOT, 'web/index.html'), 'utf8');
  const html = template
    .replace('%APP_JS%', `/assets/${basename(js)}`)
    .replace('%APP_CSS%', `/assets/${basename(css)}`);
  await writeFile(join(outdir, 'index.html'), html);

  const files: Record<string, number> = { 'index.html': Buffer.byteLength(html) };
  for (const meta of [app.metafile, sdk.metafile] as Metafile[]) {
    for (const [file, info] of Object.entries(meta.outputs)) {
      files[relative(outdir, resolve(process.cwd(), file))] = info.bytes;
    }
  }
  return { outdir, files };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const { outdir, files } = await buildWeb();
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = Object.entries(files)
    .filter(([f]) => !f.endsWith('.map') && !f.endsWith('.LEGAL.txt'))
    .map(([f, n]) => `  ${f.padEnd(36)} ${kib(n)}`);
  process.stdout.write(
    `web: built ${relative(ROOT, outdir)} in ${Math.round(performance.now() - started)} ms\n${lines.join('\n')}\n`,
  );
}
