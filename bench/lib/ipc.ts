import { fork, type ChildProcess } from 'node:child_process';
import { ROOT } from './servers.js';

/**
 * Request/response over the Node IPC channel between the orchestrator and its load-generator
 * processes. A generator may emit events (e.g. `mark` at the start and end of a measurement window)
 * while a request runs; the orchestrator reacts to them at once (reads /proc of the server).
 */

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}
type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
interface EventMsg {
  event: string;
  data?: unknown;
}

export type EventHandler = (event: string, data: unknown) => void;

export class GenProc {
  readonly child: ChildProcess;
  readonly name: string;
  #seq = 0;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: EventHandler }
  >();
  #stderr = '';

  constructor(name: string, script: string, env: Record<string, string> = {}) {
    this.name = name;
    this.child = fork(script, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-8_000);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${name}] ${d.toString()}`);
    });
    this.child.on('message', (m: Reply | EventMsg) => {
      if ('event' in m) {
        for (const p of this.#pending.values()) p.onEvent?.(m.event, m.data);
        return;
      }
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
    this.child.once('exit', (code, signal) => {
      for (const p of this.#pending.values())
        p.reject(new Error(`${name} exited (${code ?? signal}) during a request: ${this.#stderr}`));
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  request<T>(
    cmd: string,
    args: unknown = {},
    opts: { timeoutMs?: number; onEvent?: EventHandler } = {},
  ): Promise<T> {
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out`));
      }, opts.timeoutMs ?? 60_000);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        onEvent: opts.onEvent,
      });
      const msg: Request = { id, cmd, args };
      this.child.send(msg);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  }
}

/** Generator side: serve commands from the orchestrator. */
export function serve(
  handlers: Record<string, (args: never, emit: (event: string, data?: unknown) => void) => unknown>,
): void {
  const emit = (event: string, data?: unknown) => process.send?.({ event, data } satisfies EventMsg);
  process.on('message', (m: Request) => {
    const h = handlers[m.cmd];
    if (!h) {
      process.send?.({ id: m.id, ok: false, error: `unknown command ${m.cmd}` } satisfies Reply);
      return;
    }
    Promise.resolve()
      .then(() => h(m.args as never, emit))
      .then(
        (result) => process.send?.({ id: m.id, ok: true, result } satisfies Reply),
        (err: unknown) =>
          process.send?.({
            id: m.id,
            ok: false,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          } satisfies Reply),
      );
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
}
