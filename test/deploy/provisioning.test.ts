/**
 * What `npm install` (scripts/mediasoup/ensure-worker.mjs) and `npm test` (scripts/test-prereqs.mjs)
 * do about system packages, run as the real scripts in child processes. Nothing here installs
 * anything: every case is one where apt-get must NOT run (worker already there or named by
 * MEDIASOUP_WORKER_BIN, PARLEY_SYSTEM_PACKAGES=0, no root and no sudo), and each checks that the
 * script said so and printed no "installing …" line. The case where apt-get does run was checked on
 * a fresh Debian 12 (docs/reliability.md, "First run on a fresh machine").
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SYSTEM_PACKAGES = join(ROOT, 'scripts/system-packages.mjs');
const ENSURE_WORKER = join(ROOT, 'scripts/mediasoup/ensure-worker.mjs');
const TEST_PREREQS = join(ROOT, 'scripts/test-prereqs.mjs');

const mediasoupDir = (() => {
  let dir = dirname(createRequire(join(ROOT, 'package.json')).resolve('mediasoup'));
  while (!existsSync(join(dir, 'worker'))) dir = dirname(dir);
  return dir;
})();
const WORKER = join(mediasoupDir, 'worker/out/Release/mediasoup-worker');

/**
 * Another user than root: `nobody` when the suite runs as root, else the user running it. It may not
 * be able to read the checkout (a clone in /root), so it runs a copy of system-packages.mjs (a
 * builtins-only module) from a directory of its own.
 */
const asNonRoot: SpawnSyncOptions =
  process.getuid?.() === 0 ? { uid: 65534, gid: 65534, cwd: tmpdir() } : { cwd: tmpdir() };
const SYSTEM_PACKAGES_COPY = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-provisioning-'));
  chmodSync(dir, 0o755);
  const copy = join(dir, 'system-packages.mjs');
  copyFileSync(SYSTEM_PACKAGES, copy);
  chmodSync(copy, 0o644);
  return copy;
})();

const baseEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
};

function run(args: string[], env: Record<string, string> = {}, opts: SpawnSyncOptions = {}) {
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    env: { ...baseEnv, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    ...opts,
  });
  return { status: r.status, out: `${String(r.stdout)}${String(r.stderr)}`, error: r.error };
}

/** Calls scripts/system-packages.mjs in a child process and returns what it returned and logged. */
function systemPackages(call: string, env: Record<string, string> = {}, opts: SpawnSyncOptions = {}) {
  const script = `
    import * as sp from ${JSON.stringify(SYSTEM_PACKAGES_COPY)};
    const logged = [];
    const log = (l) => logged.push(l);
    const result = await (${call});
    process.stdout.write(JSON.stringify({ result, logged }));`;
  const r = run(['--input-type=module', '-e', script], env, opts);
  expect(r.error).toBeUndefined();
  expect(r.status, r.out).toBe(0);
  return JSON.parse(r.out) as { result: unknown; logged: string[] };
}

afterAll(() => rmSync(dirname(SYSTEM_PACKAGES_COPY), { recursive: true, force: true }));

describe('system packages (scripts/system-packages.mjs)', () => {
  it.each(['0', 'false', 'no', 'off', 'OFF'])(
    'PARLEY_SYSTEM_PACKAGES=%s: apt-get is not run, and the reason says why',
    (value) => {
      const { result, logged } = systemPackages(
        `sp.installPackages(['redis-server'], { why: 'test', log, warn: log })`,
        { PARLEY_SYSTEM_PACKAGES: value },
        // Not as root: were the switch ignored, this would stop at "not root" rather than run apt-get.
        asNonRoot,
      );
      expect(result).toEqual({ ok: false, why: `PARLEY_SYSTEM_PACKAGES=${value} is set` });
      expect(logged).toEqual([]); // no "installing …" line: nothing was attempted
    },
  );

  it.each(['1', 'true', 'yes', ''])('PARLEY_SYSTEM_PACKAGES=%j does not opt out', (value) => {
    expect(systemPackages('sp.optedOut()', { PARLEY_SYSTEM_PACKAGES: value }).result).toBe(false);
  });

  it('nothing to install: nothing is run or logged, whoever asks', () => {
    expect(systemPackages(`sp.installPackages([], { why: 'test', log, warn: log })`, {}, asNonRoot)).toEqual({
      result: { ok: true },
      logged: [],
    });
  });

  it('without root or passwordless sudo: not installed, the reason, and the exact command with sudo', () => {
    const { result, logged } = systemPackages(
      `sp.installPackages(['redis-server', 'coturn'], { why: 'test', log, warn: log })`,
      {},
      asNonRoot,
    );
    expect(result).toEqual({ ok: false, why: 'not root, and sudo needs a password (or is not installed)' });
    expect(logged).toEqual([]);
    expect(systemPackages(`sp.installCommand(['redis-server', 'coturn'])`, {}, asNonRoot).result).toBe(
      'sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server coturn',
    );
  });

  it('as root the exact command has no sudo', () => {
    const expected =
      process.getuid?.() === 0
        ? 'apt-get update && apt-get install -y --no-install-recommends haproxy'
        : 'sudo apt-get update && sudo apt-get install -y --no-install-recommends haproxy';
    expect(systemPackages(`sp.installCommand(['haproxy'])`).result).toBe(expected);
  });

  it('finds commands in the sbin directories a non-root PATH lacks, and says null for none', () => {
    const { result } = systemPackages(
      `[sp.findCommand('sh'), sp.findCommand('parley-no-such-command')]`,
      { PATH: '/nonexistent' },
      asNonRoot,
    );
    expect(result).toEqual([expect.stringMatching(/^\/(usr\/)?(s)?bin\/sh$/), null]);
  });
});

describe('npm install: the mediasoup worker (scripts/mediasoup/ensure-worker.mjs)', () => {
  it('a worker already in place: nothing installed, no apt-get', () => {
    const r = run([ENSURE_WORKER]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/mediasoup 3\.19\.3: worker already installed at /);
    expect(r.out).not.toMatch(/installing|apt-get|building/);
  });

  it('MEDIASOUP_WORKER_BIN naming a file: used as is, nothing installed, no apt-get', () => {
    const r = run([ENSURE_WORKER], { MEDIASOUP_WORKER_BIN: WORKER });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(
      `MEDIASOUP_WORKER_BIN=${WORKER} exists; mediasoup will use it, nothing to install.`,
    );
    expect(r.out).not.toMatch(/installing|apt-get|building/);
  });

  it('MEDIASOUP_WORKER_BIN naming nothing: said so, then the default worker (here: in place)', () => {
    const r = run([ENSURE_WORKER], { MEDIASOUP_WORKER_BIN: '/nonexistent/mediasoup-worker' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(
      'MEDIASOUP_WORKER_BIN=/nonexistent/mediasoup-worker does not exist; ignoring it and installing the default worker.',
    );
    expect(r.out).toMatch(/worker already installed/);
  });
});

describe('npm test: its prerequisites (scripts/test-prereqs.mjs, the pretest step)', () => {
  it('everything present: silent and successful, even with automatic installs off', () => {
    const r = run([TEST_PREREQS], { PARLEY_SYSTEM_PACKAGES: '0' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toBe('');
  });

  it('a MEDIASOUP_WORKER_BIN that does not start fails at once with the command to run', () => {
    const r = run([TEST_PREREQS], { MEDIASOUP_WORKER_BIN: '/nonexistent/mediasoup-worker' });
    expect(r.status).toBe(1);
    expect(r.out).toContain(
      'the mediasoup worker /nonexistent/mediasoup-worker is missing; the SFU tests need it',
    );
    expect(r.out).toContain('node scripts/mediasoup/ensure-worker.mjs');
  });
});
