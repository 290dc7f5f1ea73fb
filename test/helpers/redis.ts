import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortInUseError, probeFreePort, startWithFreePort } from './ports.js';
import { sleep } from './wait.js';

export interface StartRedisOptions {
  /** A one-node Redis Cluster owning all 16384 slots (cross-slot scripts fail as on a real one). */
  cluster?: boolean;
}

export interface TestRedis {
  /** redis://127.0.0.1:<port>: for server processes (REDIS_URL takes only redis:// URLs) and proxies. */
  url: string;
  port: number;
  /** Its unix socket, private to this instance (ioredis: `{ path }`). */
  path: string;
  /** SIGTERM, and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** Stops, then starts a fresh (empty: no persistence) redis-server on the same port. */
  restart(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const START_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * A real redis-server of its own for a test file: 127.0.0.1 on a free port plus a unix socket, no
 * persistence, in a scratch directory. Call `stop()` in afterAll.
 *
 * Ports: redis-server cannot bind port 0 and report the port it got, so the TCP port is probed
 * first and the start retried on a fresh one when redis-server exits with "Address already in
 * use". Readiness is checked on the unix socket, which only this instance can own, so another
 * test's redis that won the race for the port is never taken for ours.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const path = join(dir, 'redis.sock');
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
    const p = await launch(port, path, dir, cluster);
    if (opts.cluster) await ownAllSlots(path);
    return p;
  };
  try {
    proc = await startWithFreePort(async (p) => {
      port = p;
      busPort = opts.cluster ? await probeFreePort() : 0;
      return start();
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const stop = async () => {
    const p = proc;
    proc = null;
    if (p) await terminate(p);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    path,
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

async function launch(port: number, path: string, dir: string, extra: string[]): Promise<ChildProcess> {
  // prettier-ignore
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--unixsocket', path,
    '--unixsocketperm', '700',
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
    if (early !== null) {
      const message = `redis-server on port ${port} ${early}: ${output.trim()}`;
      throw /already in use/i.test(output) ? new PortInUseError(message) : new Error(message);
    }
    if (await answersPing(path)) return proc;
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

function answersPing(path: string): Promise<boolean> {
  return command(path, 'PING', (r) => r.includes('\r\n')).then((r) => r.startsWith('+PONG'));
}

/** Assigns every slot to the node (a no-op error if it has them) and waits for cluster_state:ok. */
async function ownAllSlots(path: string): Promise<void> {
  await command(path, 'CLUSTER ADDSLOTSRANGE 0 16383', (r) => r.includes('\r\n'));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const info = await command(path, 'CLUSTER INFO', (r) => r.includes('cluster_known_nodes'));
    if (info.includes('cluster_state:ok')) return;
    await sleep(25);
  }
  throw new Error(`redis cluster node at ${path} did not reach cluster_state:ok`);
}

/** Sends one inline command on a fresh connection; resolves with what came back ('' on failure). */
function command(path: string, line: string, complete: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
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
