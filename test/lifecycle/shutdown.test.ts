import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { TEST_SECRET } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Parsed JSON log lines written to stdout so far. */
  logs: () => Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: ChildProcess[] = [];

/** Starts the real entry point the way `npm run dev` does, with a clean environment. */
function startProcess(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': only then has everything the process wrote to stdout/stderr been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
  };
}

afterEach(() => {
  for (const child of running.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('graceful shutdown of the real process', () => {
  it('on SIGTERM: drains (503), tells clients server:shutdown, closes them with 1001, steps in order, exits 0', async () => {
    // Port 0: the kernel picks a free port at bind time, and the "listening" line reports it.
    const proc = startProcess({
      JWT_SECRET: TEST_SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      // close-websockets waits min(3 s, timeout/2) for clients to finish the close handshake.
      SHUTDOWN_TIMEOUT_MS: '4000',
    });
    await waitUntil(
      () => proc.logs().some((l) => l.msg === 'listening'),
      'the server logs "listening"',
      15_000,
      25,
    );
    const listening = proc.logs().find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ host: '127.0.0.1' });
    const port = listening!.port as number;
    expect(port).toBeGreaterThan(0);

    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const token = await new TokenIssuer({ secret: TEST_SECRET }).issue({ sub: 'alice' });
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws`, token);
    expect((await client.request('room:join', { roomId: 'lobby' })).type).toBe('room:state');
    // A client that never answers the close handshake keeps the drain open long enough to look at it.
    const stubborn = await rawUpgrade(port, { Authorization: `Bearer ${token}` });
    expect(stubborn.status).toBe(101);
    stubborn.stopReading();

    const events: string[] = [];
    client.ws.on('message', (d) =>
      events.push((JSON.parse((d as Buffer).toString()) as { type: string }).type),
    );
    client.ws.once('close', (c: number) => events.push(`close ${c}`));
    proc.child.kill('SIGTERM');

    const notice = await client.next('server:shutdown', 5_000);
    expect(notice.payload.reconnectInMs).toBeGreaterThan(0);
    expect(typeof notice.payload.reason).toBe('string');
    expect(notice.payload.resume).toBe(false); // alone, the session ends here: re-join, not resume
    const closed = await client.closed;
    expect(closed.code).toBe(1001);
    expect(events).toEqual(['server:shutdown', 'close 1001']);

    // Still draining (the stubborn client holds close-websockets): not ready, and no new upgrades.
    const health = await fetch(`${base}/health`, { headers: { connection: 'close' } });
    expect(health.status).toBe(503);
    expect(((await health.json()) as { status: string }).status).toBe('draining');
    expect(
      await upgradeStatus(`ws://127.0.0.1:${port}/ws`, [], { headers: { authorization: `Bearer ${token}` } }),
    ).toBe(503);

    // It exits on its own (SHUTDOWN_TIMEOUT_MS bounds the drain), with 0.
    const { code } = await proc.exited;
    expect(code).toBe(0);
    await stubborn.closed(2_000); // terminated once the wait ran out

    const steps = proc
      .logs()
      .filter((l) => l.msg === 'shutdown step done')
      .map((l) => l.step);
    expect(steps).toEqual([
      'drain',
      'stop-accepting',
      'hand-off-sessions', // a no-op on a single node: its sessions end with it
      'close-websockets',
      'await-resumes-elsewhere',
      'close-http',
      'end-sessions',
      'close-rooms',
      'close-floors',
      'finish-recordings', // recorded bursts are finalised before their media goes
      'close-media',
      'close-admin',
      'flush-webhooks',
      'leave-cluster',
      'close-state',
    ]);
    const msgs = proc.logs().map((l) => l.msg);
    expect(msgs.indexOf('shutting down')).toBeLessThan(msgs.indexOf('shutdown step done'));
    expect(msgs.at(-1)).toBe('shutdown complete');
    expect(proc.stdout()).not.toContain(token.split('.')[2]);
  });
});

describe('start-up failures exit non-zero and name the problem', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-startup-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const base = () => ({ JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', LOG_LEVEL: 'info' });

  it('an invalid PORT', async () => {
    const proc = startProcess({ ...base(), PORT: 'abc' });
    const { code } = await proc.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(proc.stderr()).toMatch(/PORT:/);
    expect(proc.stderr()).not.toContain(TEST_SECRET);
  });

  it('a manifest with an invalid field', async () => {
    const path = join(dir, 'invalid.json');
    await writeFile(
      path,
      JSON.stringify({ channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'radio', maxParticipants: 5 }] }),
    );
    const proc = startProcess({ ...base(), PORT: '0', PARLEY_MANIFEST: path });
    const { code } = await proc.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(proc.stderr()).toContain('channels[0].mode');
    expect(proc.stderr()).toContain(path);
    expect(proc.logs().some((l) => l.msg === 'listening')).toBe(false);
  });

  it('a manifest that is not JSON', async () => {
    const path = join(dir, 'corrupt.json');
    await writeFile(path, '{"channels": [');
    const proc = startProcess({ ...base(), PORT: '0', PARLEY_MANIFEST: path });
    const { code } = await proc.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(proc.stderr()).toContain(path);
    expect(proc.stderr()).toMatch(/not valid JSON/);
  });
});
