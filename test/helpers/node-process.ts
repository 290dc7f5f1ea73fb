import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET } from './server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  port: number;
  wsUrl: string;
  httpUrl: string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  stderr(): string;
  /** SIGKILL: the node dies without a word to anyone. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * A real Parley server process (the same entry point as `npm run dev`) on 127.0.0.1 and a free port,
 * resolved once it logs "listening".
 */
export async function startNodeProcess(
  env: Record<string, string>,
  timeoutMs = 45_000, // a hang detector: spawning through tsx is slow on a busy machine
): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      JWT_SECRET: TEST_SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      MEDIASOUP_WORKERS: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err || out}`)), timeoutMs);
    const check = () => {
      const line = logs().find((l) => l.msg === 'listening');
      if (line) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(line.port as number);
      }
    };
    child.stdout.on('data', check);
    child.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`server exited during start: ${err || out}`));
    });
  });
  return {
    child,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    logs,
    stderr: () => err,
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
