import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartRedisOptions {
  /** A one-node Redis Cluster owning all 16384 slots (cross-slot scripts fail as on a real one). */
  cluster?: boolean;
}

export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** SIGTERM, and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** Stops, then starts a fresh (empty: no persistence) redis-server on the same port. */
  restart(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const START_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * A real redis-server of its own for a test file: 127.0.0.1 on a free port, no persistence, in a
 * scratch directory. Call `stop()` in afterAll.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  let port = 0;
  let busPort = 0;
  let proc: ChildProcess | null = null;
  const start = async () => {
    // A lone node learns its own address only from a peer; without announce-ip, CLUSTER SLOTS would
    // name no host and a client could never route.
    // prettier-ignore
    const cluster = opts.cluster
      ? ['--cluster-enabled', 'yes', '--cluster-port', String(busPort),
         '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1']
      : [];
    const p = await launch(port, dir, cluster);
    if (opts.cluster) await ownAllSlots(port);
    return p;
  };
  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    busPort = opts.cluster ? await freePort() : 0;
    try {
      proc = await start();
      break;
    } catch (err) {
      if (attempt >= 4) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const stop = async () => {
    const p = proc;
    proc = null;
    if (p) await terminate(p);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      mkdirSync(dir, { recursive: true }); // stop() may have removed it
      proc = await start();
    },
  };
}

async function launch(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  // prettier-ignore
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--dir', dir,
    '--loglevel', 'warning',
    ...extra,
  ];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<string>((resolve) => {
    proc.once('error', (err) => resolve(err.message));
    proc.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const early = await Promise.race([exited, sleep(25).then(() => null)]);
    if (early !== null) throw new Error(`redis-server on port ${port} ${early}: ${output.trim()}`);
    if (await answersPing(port)) return proc;
  }
  await terminate(proc);
  throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`);
}

function terminate(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

function answersPing(port: number): Promise<boolean> {
  return command(port, 'PING', (r) => r.includes('\r\n')).then((r) => r.startsWith('+PONG'));
}

/** Assigns every slot to the node (a no-op error if it has them) and waits for cluster_state:ok. */
async function ownAllSlots(port: number): Promise<void> {
  await command(port, 'CLUSTER ADDSLOTSRANGE 0 16383', (r) => r.includes('\r\n'));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const info = await command(port, 'CLUSTER INFO', (r) => r.includes('cluster_known_nodes'));
    if (info.includes('cluster_state:ok')) return;
    await sleep(25);
  }
  throw new Error(`redis cluster node on port ${port} did not reach cluster_state:ok`);
}

/** Sends one inline command on a fresh connection; resolves with what came back ('' on failure). */
function command(port: number, line: string, complete: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = () => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(500, done);
    socket.once('error', done);
    socket.once('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (complete(reply)) done();
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
