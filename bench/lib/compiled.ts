/**
 * The servers the bench measures, compiled as `npm start` runs Parley (`tsc`, then plain `node`),
 * not through tsx. Under tsx a server's heap also holds tsx's loader and every module's source map
 * (Parley at rest: 36.6 MB of heap through tsx, 26.9 MB from `tsc` output), and esbuild's
 * `keepNames` wraps named functions; what users deploy has neither. (Side by side, the twelfth
 * pass found no difference in CPU per relayed message either way: docs/benchmarks.md.) Each
 * checkout (this one, BENCH_PARLEY_BASELINE's) is compiled once per bench run into its own
 * `.bench-build/` with its own TypeScript and its own `tsconfig.json`, entry points being Parley's
 * `src/server/main.ts` and the baselines of `bench/baselines/`. `BENCH_SERVERS=source` runs them
 * through tsx as before.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const BUILD_DIR = '.bench-build';

const built = new Set<string>();

/** The compiled file that runs `script` (a `.ts` path relative to `root`), compiling `root` first if needed. */
export function compiledScript(root: string, script: string): string {
  if (!built.has(root)) {
    compile(root);
    built.add(root);
  }
  const js = join(root, BUILD_DIR, script.replace(/\.ts$/, '.js'));
  if (!existsSync(js)) throw new Error(`${script} was not compiled into ${relative(root, js)}`);
  return js;
}

function compile(root: string): void {
  const out = join(root, BUILD_DIR);
  mkdirSync(out, { recursive: true });
  const baselines = join(root, 'bench', 'baselines');
  const entries = [
    'src/server/main.ts',
    ...(existsSync(baselines)
      ? readdirSync(baselines)
          .filter((f) => f.endsWith('.ts'))
          .map((f) => `bench/baselines/${f}`)
      : []),
  ];
  // The checkout's own compiler options (target, module, strictness), emitting JavaScript only:
  // the type check is `npm test`'s, not the bench's.
  const config = {
    extends: '../tsconfig.json',
    compilerOptions: {
      rootDir: '..',
      outDir: '.',
      noEmit: false,
      noCheck: true,
      declaration: false,
      sourceMap: true,
      incremental: true,
      tsBuildInfoFile: './tsbuildinfo.json',
    },
    files: entries.map((e) => `../${e}`),
    include: [],
  };
  const project = join(out, 'tsconfig.json');
  writeFileSync(project, `${JSON.stringify(config, null, 2)}\n`);
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `compiling ${root} for the bench failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`,
    );
  }
}
