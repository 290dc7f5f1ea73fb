import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledScript } from './compiled.js';
import { sleep } from './stats.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BENCH_SECRET = 'bench-secret-0123456789-abcdefghijkl';

export interface ServerProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly host: string;
  /** ws://127.0.0.1:<port><path> */
  url(path?: string): string;
  /** Full GC in the server (SIGUSR2 handler preloaded from gc-on-signal.mjs), then a short pause. */
  gc(): Promise<void>;
  /** Last lines the process wrote to stderr (for failure messages). */
  stderr(): string;
  /** SIGTERM (SIGKILL with `kill`), resolves on exit; SIGKILL after the timeout. */
  stop(opts?: { kill?: boolean; timeoutMs?: number }): Promise<void>;
}

export interface StartOptions {
  /** Directory for a V8 CPU profile (--cpu-prof), written when the process exits. */
  cpuProfDir?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run the script from another checkout (BENCH_PARLEY_BASELINE: an A/B of two Parley versions). */
  root?: string;
  /** More Node flags for the server process (e.g. `--heapsnapshot-signal`). */
  nodeFlags?: string[];
  /**
   * Run the script's `tsc` output with plain `node` (compiled.ts), as `npm start` runs Parley,
   * rather than the TypeScript through tsx. Default: {@link serveCompiled}'s setting (off, except
   * in `npm run bench`).
   */
  compiled?: boolean;
}

let compiledByDefault = false;

/** Whether servers start from their `tsc` output unless told otherwise (`npm run bench`: yes). */
export function serveCompiled(on: boolean): void {
  compiledByDefault = on;
}

/**
 * Starts a server script (its `tsc` output, or the TypeScript through tsx) as its own process on
 * 127.0.0.1 and resolves once it prints a JSON line `{"msg":"listening","port":N}` (Parley's pino
 * line, and the same line from the baselines). stdout is drained continuously so a logging server
 * never blocks on a full pipe.
 */
export async function startServerProc(
  name: string,
  script: string,
  opts: StartOptions = {},
): Promise<ServerProc> {
  const execArgv = ['--expose-gc'];
  if (opts.cpuProfDir) {
    // One directory per server: the main thread and tsx's loader thread each write a profile.
    const dir = join(opts.cpuProfDir, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execArgv.push('--cpu-prof', '--cpu-prof-dir', dir);
  }
  // BENCH_PERF_MAP=1: a /tmp/perf-<pid>.map of JIT code, so `perf record -g -p <pid>` names JS functions.
  if (process.env.BENCH_PERF_MAP === '1') execArgv.push('--perf-basic-prof');
  execArgv.push(...(opts.nodeFlags ?? []));
  // BENCH_NODE_FLAGS='--flag …': Node flags for every server of the run alike (raw, PeerJS, Parley).
  execArgv.push(...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean));
  const root = opts.root ?? ROOT;
  const compiled = opts.compiled ?? compiledByDefault;
  if (!compiled) execArgv.push('--import', 'tsx');
  execArgv.push('--import', join(ROOT, 'bench/lib/gc-on-signal.mjs'));
  const entry = compiled ? compiledScript(root, script) : script;
  const child = spawn(process.execPath, [...execArgv, entry], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-8_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start: ${err}`)),
      opts.timeoutMs ?? 20_000,
    );
    const onData = (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'listening' && typeof j.port === 'number') {
            clearTimeout(timer);
            child.stdout?.off('data', onData);
            child.stdout?.on('data', () => undefined); // keep draining
            resolve(j.port);
            return;
          }
        } catch {
          // not JSON
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited during start (${code ?? signal}): ${err}`));
    });
  });
  const pid = child.pid ?? -1;
  return {
    name,
    child,
    pid,
    port,
    host: '127.0.0.1',
    url: (path = '/ws') => `ws://127.0.0.1:${port}${path}`,
    gc: async () => {
      child.kill('SIGUSR2');
      await sleep(300);
    },
    stderr: () => err,
    stop: async ({ kill = false, timeoutMs = 15_000 } = {}) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(kill ? 'SIGKILL' : 'SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * What the relay benchmarks measure is the relay path at full speed between users who share no
 * room: the relationship rule (CALL_POLICY) and the per-recipient budget, which a real pair of
 * users never gets near, are lifted (their cost per message, a Map lookup, is still paid). The
 * rate limiter (per user and per address) stays on, raised to a rate no run reaches (the default
 * 100/s would throttle a bench flow): every message still takes its bucket.
 */
export const RELAY_BENCH_ENV = {
  RATE_LIMIT_PER_SEC: '1000000',
  RATE_LIMIT_BURST: '1000000',
  CALL_POLICY: 'any',
  RELAY_BUDGET_BYTES_PER_SEC: String(1024 ** 3),
  RELAY_BUDGET_BURST_BYTES: String(1024 ** 3),
  RELAY_BUDGET_MESSAGES_PER_SEC: '10000000',
  RELAY_BUDGET_BURST_MESSAGES: '10000000',
} as const;

/** Parley's real entry point (src/server/main.ts) with bench defaults; env overrides them. */
export function startParley(
  name: string,
  env: Record<string, string>,
  opts: StartOptions = {},
): Promise<ServerProc> {
  return startServerProc(name, 'src/server/main.ts', {
    ...opts,
    env: {
      JWT_SECRET: BENCH_SECRET,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      MEDIASOUP_WORKERS: '0',
      ...env,
    },
  });
}

/**
 * A second Parley checkout to run beside this one (an A/B in one run, on the same machine load):
 * BENCH_PARLEY_BASELINE=<directory of the other checkout, with its node_modules>; null when unset.
 */
export function parleyBaselineRoot(): string | null {
  return process.env.BENCH_PARLEY_BASELINE || null;
}

/** The main-thread profile of a server started with cpuProfDir (the largest file in its directory). */
export function mainProfile(cpuProfDir: string, name: string): string | null {
  const dir = join(cpuProfDir, name);
  let best: { path: string; size: number } | null = null;
  try {
    for (const f of readdirSync(dir)) {
      const path = join(dir, f);
      const size = statSync(path).size;
      if (!best || size > best.size) best = { path, size };
    }
  } catch {
    return null;
  }
  return best?.path ?? null;
}
