// Installs missing Debian/Ubuntu packages for Parley, for the two places that need some:
//   - `npm install` (scripts/mediasoup/ensure-worker.mjs): the toolchain and libraries to build the
//     mediasoup worker, only when no cached, configured or downloadable worker exists;
//   - `npm test` (scripts/test-prereqs.mjs): redis-server, coturn, chromium, iproute2, haproxy.
//
// As root it runs apt-get itself; otherwise with passwordless sudo (`sudo -n`). Without either, or
// with PARLEY_SYSTEM_PACKAGES=0, it installs nothing and the caller prints the exact command.
// Before installing it prints one line saying what and why.
//
// Plain Node ESM with builtins only: it runs at postinstall, before dependencies can be trusted.

/* global process */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Name of the opt-out variable: PARLEY_SYSTEM_PACKAGES=0 (or false/no/off). */
export const OPT_OUT_VAR = 'PARLEY_SYSTEM_PACKAGES';

const APT_LOCK_WAIT_S = 300; // another apt/dpkg (e.g. unattended-upgrades) may hold the lock

/** Directories searched for commands, beyond PATH (a non-root PATH often lacks the sbin ones). */
const EXTRA_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Full path of `cmd` on PATH or in the usual system directories, or null. */
export function findCommand(cmd) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_BIN_DIRS];
  for (const d of dirs) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** The exact command a person would type to install `packages` (with sudo unless root). */
export function installCommand(packages) {
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

/** True when PARLEY_SYSTEM_PACKAGES turns automatic installs off. */
export function optedOut() {
  return /^(0|false|no|off)$/i.test(process.env[OPT_OUT_VAR] ?? '');
}

/**
 * Installs `packages` with apt-get if this process may: returns `{ ok: true }` once they are
 * installed, or `{ ok: false, why }` when it did not try (no apt-get, no root or passwordless sudo,
 * opted out) or apt-get failed (its output's tail is printed).
 *
 * @param {string[]} packages Debian package names
 * @param {{ why: string, log: (line: string) => void, warn: (line: string) => void }} opts
 */
export function installPackages(packages, { why, log, warn }) {
  if (packages.length === 0) return { ok: true };
  if (optedOut()) return { ok: false, why: `${OPT_OUT_VAR}=${process.env[OPT_OUT_VAR]} is set` };
  if (process.platform !== 'linux' || !findCommand('apt-get') || !findCommand('dpkg-query')) {
    return { ok: false, why: 'apt-get is not available (not Debian or Ubuntu)' };
  }
  let prefix = [];
  if (process.getuid?.() !== 0) {
    const sudo = findCommand('sudo');
    if (!sudo || spawnSync(sudo, ['-n', 'true'], { stdio: 'ignore' }).status !== 0) {
      return { ok: false, why: 'not root, and sudo needs a password (or is not installed)' };
    }
    prefix = [sudo, '-n'];
  }
  log(
    `installing ${packages.join(' ')} with apt-get: ${why} ` +
      `(${OPT_OUT_VAR}=0 turns this off; then run: ${installCommand(packages)})`,
  );
  const t0 = Date.now();
  // env(1) rather than our environment: sudo drops most variables.
  const aptEnv = ['env', 'DEBIAN_FRONTEND=noninteractive', 'NEEDRESTART_MODE=a'];
  const steps = [
    ['apt-get', '-q', '-o', `DPkg::Lock::Timeout=${APT_LOCK_WAIT_S}`, 'update'],
    [
      'apt-get',
      'install',
      '-y',
      '-q',
      '--no-install-recommends',
      '-o',
      `DPkg::Lock::Timeout=${APT_LOCK_WAIT_S}`,
      ...packages,
    ],
  ];
  for (const step of steps) {
    const argv = [...prefix, ...aptEnv, ...step];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) {
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n');
      warn(`\`${step.slice(0, 2).join(' ')} …\` failed (exit ${r.status ?? r.signal}):`);
      for (const line of out.slice(-20)) warn(`  ${line}`);
      return { ok: false, why: `apt-get failed (exit ${r.status ?? r.signal})` };
    }
  }
  log(`installed ${packages.join(' ')} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { ok: true };
}
