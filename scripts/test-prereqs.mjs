#!/usr/bin/env node
// `npm test`'s pretest: the programs the test suite runs for real, installed if missing.
// Silent when everything is present (the usual case); otherwise one line says what it installs and
// why, as root or with passwordless sudo (scripts/system-packages.mjs). When it cannot install, it
// fails at once with the exact command to run: tests are never skipped for want of a program.

/* global process, console */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findCommand, installCommand, installPackages, OPT_OUT_VAR } from './system-packages.mjs';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Debian 12 packages, the command each provides, and which tests need it. */
const TEST_PREREQUISITES = [
  { cmd: 'redis-server', pkg: 'redis-server', for: 'state and cluster tests (each starts its own)' },
  { cmd: 'turnserver', pkg: 'coturn', for: 'the TURN relay end-to-end test' },
  { cmd: 'chromium', pkg: 'chromium', for: 'browser end-to-end tests (playwright-core drives it)' },
  { cmd: 'ip', pkg: 'iproute2', for: 'the loopback-only network namespace (scripts/in-loopback-netns.sh)' },
  { cmd: 'unshare', pkg: 'util-linux', for: 'the loopback-only network namespace' },
  { cmd: 'haproxy', pkg: 'haproxy', for: 'the load-balancer tests (deploy/haproxy.cfg)' },
  {
    cmd: 'ffprobe',
    pkg: 'ffmpeg',
    for: 'the PTT recording tests (ffprobe/ffmpeg check and decode the Ogg Opus files)',
  },
];

const log = (msg) => console.log(`[parley:pretest] ${msg}`);
const warn = (msg) => console.error(`[parley:pretest] ${msg}`);

function missing() {
  return TEST_PREREQUISITES.filter((p) => !findCommand(p.cmd));
}

function main() {
  let absent = missing();
  if (absent.length > 0) {
    const pkgs = [...new Set(absent.map((p) => p.pkg))];
    const result = installPackages(pkgs, {
      why: `the tests run them for real: ${absent.map((p) => `${p.cmd} for ${p.for}`).join('; ')}`,
      log,
      warn,
    });
    absent = missing();
    if (absent.length > 0) {
      warn(
        [
          `missing programs the tests need: ${absent.map((p) => `${p.cmd} (${p.for})`).join(', ')}.`,
          result.ok ? '' : `Not installed automatically: ${result.why}.`,
          'Install them, then run npm test again:',
          '',
          `    ${installCommand([...new Set(absent.map((p) => p.pkg))])}`,
          '',
          `(${OPT_OUT_VAR}=0 stops npm test from running apt-get itself.)`,
        ]
          .filter((l, i) => l !== '' || i > 1)
          .join('\n'),
      );
      return 1;
    }
  }
  return checkWorker();
}

/**
 * The SFU tests need mediasoup's worker, which `npm install` provides. An install that skipped it
 * (PARLEY_SKIP_MEDIASOUP_WORKER, --ignore-scripts) would fail dozens of tests one by one; say so once.
 */
function checkWorker() {
  const custom = process.env.MEDIASOUP_WORKER_BIN;
  let bin = custom;
  if (!bin) {
    let pkgDir;
    try {
      const require = createRequire(path.join(PROJECT, 'package.json'));
      pkgDir = path.dirname(require.resolve('mediasoup'));
      while (!fs.existsSync(path.join(pkgDir, 'worker'))) {
        const up = path.dirname(pkgDir);
        if (up === pkgDir) throw new Error('mediasoup package root not found');
        pkgDir = up;
      }
    } catch {
      warn('mediasoup is not installed: run `npm install` first.');
      return 1;
    }
    bin = path.join(pkgDir, 'worker', 'out', 'Release', 'mediasoup-worker');
  }
  // Run without MEDIASOUP_VERSION, a working worker exits with 41 at once.
  const r = spawnSync(bin, [], { env: {}, stdio: 'ignore', timeout: 10_000 });
  if (r.status === 41) return 0;
  warn(
    `the mediasoup worker ${bin} ${r.error ? 'is missing' : 'does not start'}; the SFU tests need it. Run:\n\n` +
      '    node scripts/mediasoup/ensure-worker.mjs\n\n' +
      '(it uses the cache, the prebuilt download, or builds one; see scripts/mediasoup/README.md).',
  );
  return 1;
}

process.exit(main());
