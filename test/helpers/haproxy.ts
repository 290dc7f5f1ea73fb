import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PortInUseError, startWithFreePort } from './ports.js';
import { sleep } from './wait.js';

export const HAPROXY_CFG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));

/** Debian installs it in /usr/sbin, which a non-root PATH may lack. */
export function haproxyBin(): string {
  if (process.env.HAPROXY_BIN) return process.env.HAPROXY_BIN;
  for (const p of ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy']) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return 'haproxy';
}

/**
 * deploy/haproxy.cfg with only what a test must change: the `bind` line (127.0.0.1 and a free
 * port) and each `server <name> <host>:<port>` address. Everything else (timeouts, health checks,
 * retries, forwardfor) is the file as shipped. Fails if the file no longer has those lines.
 */
export function renderHaproxyConfig(text: string, bindPort: number, servers: Record<string, number>): string {
  let out = text.replace(
    /^(\s*)bind :\d+\s*$/m,
    (_m, indent: string) => `${indent}bind 127.0.0.1:${bindPort}`,
  );
  if (out === text) throw new Error('deploy/haproxy.cfg: no `bind :<port>` line to template');
  for (const [name, port] of Object.entries(servers)) {
    const re = new RegExp(`^(\\s*server ${name}) \\S+:\\d+`, 'm');
    if (!re.test(out)) throw new Error(`deploy/haproxy.cfg: no \`server ${name} <host>:<port>\` line`);
    out = out.replace(re, `$1 127.0.0.1:${port}`);
  }
  return out;
}

export interface TestHaproxy {
  port: number;
  httpUrl: string;
  /** Output lines (logs, warnings) with the time each arrived (performance.now()). */
  lines(): { at: number; text: string }[];
  /** Resolves with the arrival time of the first line after `since` saying the server went `state`. */
  waitForServer(server: string, state: 'UP' | 'DOWN', since: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** HAProxy (the Debian package) in the foreground with the templated deploy/haproxy.cfg. */
export async function startHaproxy(servers: Record<string, number>): Promise<TestHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  const template = readFileSync(HAPROXY_CFG, 'utf8');
  const lines: { at: number; text: string }[] = [];
  let proc: ChildProcess | null = null;
  const port = await startWithFreePort(async (p) => {
    writeFileSync(cfg, renderHaproxyConfig(template, p, servers));
    lines.length = 0;
    proc = await launch(cfg, p, lines);
    return p;
  });
  return {
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    lines: () => lines,
    waitForServer: async (server, state, since, timeoutMs = 10_000) => {
      const re = new RegExp(`Server parley/${server} is ${state}\\b`);
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => l.at >= since && re.test(l.text));
        if (hit) return hit.at;
        if (performance.now() > deadline) {
          throw new Error(
            `haproxy never said ${server} is ${state}:\n${lines.map((l) => l.text).join('\n')}`,
          );
        }
        await sleep(10); // polling the captured output
      }
    },
    stop: async () => {
      const p = proc;
      if (p && p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(
  cfg: string,
  port: number,
  lines: { at: number; text: string }[],
): Promise<ChildProcess> {
  const proc = spawn(haproxyBin(), ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  const take = (d: Buffer) => {
    const at = performance.now();
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) lines.push({ at, text });
  };
  proc.stdout?.on('data', take);
  proc.stderr?.on('data', take);
  const exited = new Promise<string>((resolve) => {
    proc.once('error', (err) => resolve(err.message));
    proc.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  const deadline = performance.now() + 5_000;
  while (performance.now() < deadline) {
    const early = await Promise.race([exited, sleep(25).then(() => null)]);
    if (early !== null) {
      const output = lines.map((l) => l.text).join('\n');
      const message = `haproxy on port ${port} ${early}: ${output}`;
      throw /cannot bind socket/i.test(output) ? new PortInUseError(message) : new Error(message);
    }
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return proc;
  }
  proc.kill('SIGKILL');
  throw new Error(`haproxy on port ${port} did not pass /health through within 5 s`);
}
