#!/usr/bin/env node
// Make sure mediasoup's C++ worker binary exists at its default location,
// node_modules/mediasoup/worker/out/Release/mediasoup-worker, so the SFU can start with no
// environment variable at run time. Runs as the project's root `postinstall` (mediasoup's own
// postinstall is denied in package.json "allowScripts": it downloads from GitHub and otherwise
// falls back to a pip + meson-wrap build, which both fail on machines without GitHub/PyPI).
//
// Order (first that succeeds wins):
//   0. PARLEY_SKIP_MEDIASOUP_WORKER=1                 -> do nothing (installs that never run the SFU)
//   1. MEDIASOUP_WORKER_BIN names an existing file    -> do nothing (mediasoup uses it at run time)
//   2. the default binary is already there and runs   -> do nothing
//   3. the local cache has a build of this recipe     -> copy it into place
//   4. mediasoup's prebuilt worker from GitHub         -> same URL scheme as mediasoup's npm-scripts.mjs
//      (skipped with PARLEY_SKIP_WORKER_DOWNLOAD=1; 20 s to answer, 3 min to finish)
//   5. build from the sources in the npm package against system libraries (build-worker.sh),
//      store the result in the cache, copy it into place. Missing build packages are installed
//      first with apt-get, as root or with passwordless sudo (../system-packages.mjs; one line says
//      what and why; PARLEY_SYSTEM_PACKAGES=0 turns it off). When that is not possible it fails
//      with the exact apt-get line: without a worker the SFU cannot start.
//   Steps 0-4 never run apt.
//
// Cache: ${PARLEY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/parley}/mediasoup-worker-<version>-<hash>
// where <hash> covers build-worker.sh, the patches and the shims, so changing the recipe rebuilds.
// Safe to run concurrently: builds happen in private temp dirs and land with rename(2).
//
// Plain Node ESM with builtins only: it runs at postinstall, before anything else can be trusted.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { installCommand, installPackages, OPT_OUT_VAR } from '../system-packages.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROJECT = path.resolve(HERE, '..', '..');
const BUILD_SCRIPT = path.join(HERE, 'build-worker.sh');
const BIN_NAME = process.platform === 'win32' ? 'mediasoup-worker.exe' : 'mediasoup-worker';
const BUILDABLE_VERSIONS = /^3\.19\./; // see build-worker.sh / README.md
const DOWNLOAD_RESPONSE_TIMEOUT_MS = 20_000;
const DOWNLOAD_TOTAL_TIMEOUT_MS = 180_000;
const LOCK_STALE_MS = 30 * 60_000; // a build takes ~5 min on 2 cores
const TEMP_STALE_MS = 6 * 60 * 60_000;
const T0 = Date.now();

const log = (msg) => console.log(`[parley:mediasoup-worker] ${msg}`);
const warn = (msg) => console.error(`[parley:mediasoup-worker] ${msg}`);
const elapsed = () => `${((Date.now() - T0) / 1000).toFixed(1)}s`;
const envFlag = (name) => /^(1|true|yes)$/i.test(process.env[name] ?? '');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Debian 12 packages for the source build (installed by ../system-packages.mjs when missing; the
// Dockerfile lists the same ones).
const kernelMajor = process.platform === 'linux' ? Number(os.release().split('.')[0]) : 0;
const REQUIREMENTS = [
  { what: 'g++', cmd: 'g++', pkg: 'g++' },
  { what: 'meson', cmd: 'meson', pkg: 'meson' },
  { what: 'ninja', cmd: 'ninja', pkg: 'ninja-build' },
  { what: 'pkg-config', cmd: 'pkg-config', pkg: 'pkg-config' },
  { what: 'patch', cmd: 'patch', pkg: 'patch' },
  { what: 'flatc', cmd: 'flatc', pkg: 'flatbuffers-compiler' },
  { what: 'OpenSSL headers', pc: ['libssl', 'libcrypto'], pkg: 'libssl-dev' },
  { what: 'libuv headers', pc: ['libuv'], pkg: 'libuv1-dev' },
  { what: 'libsrtp2 headers', pc: ['libsrtp2'], pkg: 'libsrtp2-dev' },
  {
    what: 'abseil headers',
    pc: [
      'absl_flat_hash_map',
      'absl_flat_hash_set',
      'absl_btree',
      'absl_inlined_vector',
      'absl_strings',
      'absl_span',
    ],
    pkg: 'libabsl-dev',
  },
  { what: 'usrsctp headers', pc: ['usrsctp'], pkg: 'libusrsctp-dev' },
  // mediasoup only compiles io_uring support (and needs liburing) on Linux kernels >= 6.
  { what: 'liburing headers', pc: ['liburing'], pkg: 'liburing-dev', needed: kernelMajor >= 6 },
  { what: 'flatbuffers headers', pc: ['flatbuffers'], pkg: 'libflatbuffers-dev' },
];

main().then(
  (code) => process.exit(code),
  (err) => {
    warn(`failed: ${err?.stack ?? err}`);
    process.exit(1);
  },
);

async function main() {
  if (envFlag('PARLEY_SKIP_MEDIASOUP_WORKER')) {
    log(
      'PARLEY_SKIP_MEDIASOUP_WORKER is set: not installing mediasoup-worker (the SFU will not start without one).',
    );
    return 0;
  }

  const custom = process.env.MEDIASOUP_WORKER_BIN;
  if (custom) {
    if (isFile(custom)) {
      log(`MEDIASOUP_WORKER_BIN=${custom} exists; mediasoup will use it, nothing to install.`);
      return 0;
    }
    warn(`MEDIASOUP_WORKER_BIN=${custom} does not exist; ignoring it and installing the default worker.`);
  }

  const pkgDir = findMediasoup();
  if (!pkgDir) {
    warn('mediasoup is not installed (node_modules/mediasoup not found); nothing to do.');
    return 0;
  }
  const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  const dest = path.join(pkgDir, 'worker', 'out', 'Release', BIN_NAME);

  if (workerRuns(dest)) {
    log(`mediasoup ${version}: worker already installed at ${rel(dest)}`);
    return 0;
  }

  const cacheDir = getCacheDir();
  const hash = recipeHash();
  const cached = path.join(cacheDir, `mediasoup-worker-${version}-${hash}`);

  // 3. cache
  if (workerRuns(cached)) {
    installBinary(cached, dest);
    log(`mediasoup ${version}: installed worker from cache ${cached} (${elapsed()})`);
    return 0;
  }

  // 4. prebuilt download (what mediasoup's own postinstall would do)
  if (envFlag('PARLEY_SKIP_WORKER_DOWNLOAD')) {
    log('PARLEY_SKIP_WORKER_DOWNLOAD is set: not trying the prebuilt worker download.');
  } else if (await downloadPrebuilt(pkgDir, version, dest)) {
    log(`mediasoup ${version}: installed prebuilt worker at ${rel(dest)} (${elapsed()})`);
    return 0;
  }

  // 5. source build
  if (!BUILDABLE_VERSIONS.test(version) || process.platform !== 'linux') {
    warn(
      `cannot build mediasoup-worker ${version} on ${process.platform} from source: the recipe in ` +
        `scripts/mediasoup/ supports mediasoup 3.19.x on Linux (Debian 12) only. Pin mediasoup to 3.19.3, ` +
        'allow the prebuilt download, or point MEDIASOUP_WORKER_BIN at a worker binary ' +
        '(PARLEY_SKIP_MEDIASOUP_WORKER=1 skips this step for installs that do not run the SFU).',
    );
    return 1;
  }
  let missing = missingRequirements();
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((r) => r.pkg))];
    const installed = installPackages(pkgs, {
      why: `no cached or downloadable mediasoup worker, so it is built from source, which needs ${missing
        .map((r) => r.what)
        .join(', ')}`,
      log,
      warn,
    });
    missing = installed.ok ? missingRequirements() : missing;
    if (missing.length > 0) {
      warn(
        [
          `mediasoup ${version}: no cached or downloadable worker, and building one needs`,
          `missing system packages (${missing.map((r) => r.what).join(', ')}).`,
          installed.ok ? '' : `They were not installed automatically: ${installed.why}.`,
          'On Debian 12 / Ubuntu run:',
          '',
          `    ${installCommand([...new Set(missing.map((r) => r.pkg))])}`,
          '',
          'then `npm install` again, or `node scripts/mediasoup/ensure-worker.mjs`.',
          'Set PARLEY_SKIP_MEDIASOUP_WORKER=1 to install without a worker (the SFU will not start),',
          `or MEDIASOUP_WORKER_BIN to use your own (${OPT_OUT_VAR}=0: never run apt-get).`,
        ]
          .filter((l, i) => l !== '' || i > 2)
          .join('\n'),
      );
      return 1;
    }
  }

  fs.mkdirSync(cacheDir, { recursive: true });
  cleanStaleTemps(cacheDir);
  const lockPath = path.join(cacheDir, `.lock-mediasoup-worker-${version}-${hash}`);
  const ok = await withLock(lockPath, cached, () => build(pkgDir, version, cacheDir, cached));
  if (!ok) return 1;
  installBinary(cached, dest);
  log(`mediasoup ${version}: installed worker at ${rel(dest)} (cached as ${cached}; total ${elapsed()})`);
  return 0;
}

/** Build into a private temp dir inside the cache dir, then rename(2) the binary into the cache. */
async function build(pkgDir, version, cacheDir, cached) {
  const work = fs.mkdtempSync(path.join(cacheDir, `.build-${version}-`));
  log(`mediasoup ${version}: building the worker from source (about 5 min on 2 cores); logs in ${work}/logs`);
  const jobs =
    process.env.PARLEY_WORKER_BUILD_JOBS ||
    process.env.JOBS ||
    String(os.availableParallelism?.() ?? os.cpus().length);
  const code = await new Promise((resolve) => {
    const child = spawn('bash', [BUILD_SCRIPT, pkgDir, work], {
      stdio: 'inherit',
      env: { ...process.env, JOBS: jobs },
    });
    child.on('error', (err) => {
      warn(`cannot run ${BUILD_SCRIPT}: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (c, signal) => resolve(signal ? 1 : c));
  });
  const built = path.join(work, 'mediasoup-worker');
  if (code !== 0 || !workerRuns(built)) {
    // Keep the logs for inspection, drop the (large) sources and objects.
    for (const d of ['src', 'build']) fs.rmSync(path.join(work, d), { recursive: true, force: true });
    warn(`mediasoup-worker build failed after ${elapsed()}; logs kept in ${work}/logs`);
    return false;
  }
  fs.chmodSync(built, 0o755);
  fs.renameSync(built, cached); // atomic: concurrent installs never see a partial file
  fs.rmSync(work, { recursive: true, force: true });
  log(`build finished in ${elapsed()}`);
  return true;
}

/**
 * A cross-process lock so that two concurrent installs do not both spend 5 minutes building:
 * the second one waits for the first one's result. Correctness does not depend on it (each build
 * is private and lands atomically); a stale or foreign lock is eventually ignored.
 */
async function withLock(lockPath, cached, fn) {
  const waitStart = Date.now();
  let announced = false;
  for (;;) {
    let fd;
    try {
      fd = fs.openSync(lockPath, 'wx');
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (lockIsStale(lockPath)) {
        fs.rmSync(lockPath, { force: true });
        continue;
      }
      if (!announced) {
        log('another install is building the same worker; waiting for it');
        announced = true;
      }
      await sleep(2000);
      if (workerRuns(cached)) return true;
      if (Date.now() - waitStart > LOCK_STALE_MS) {
        warn('gave up waiting for the other build; building here too');
        return fn();
      }
      continue;
    }
    fs.writeSync(fd, JSON.stringify({ pid: process.pid, host: os.hostname(), time: Date.now() }));
    fs.closeSync(fd);
    try {
      if (workerRuns(cached)) return true; // finished by someone else just before we got the lock
      return await fn();
    } finally {
      fs.rmSync(lockPath, { force: true });
    }
  }
}

function lockIsStale(lockPath) {
  let st;
  try {
    st = fs.statSync(lockPath);
  } catch {
    return false; // vanished: the loop retries
  }
  if (Date.now() - st.mtimeMs > LOCK_STALE_MS) return true;
  try {
    const { pid, host } = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
    if (host !== os.hostname()) return false;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return err.code === 'ESRCH'; // same host and the owner is gone
  }
}

/** Remove build dirs left behind by killed installs (never younger than a few hours). */
function cleanStaleTemps(cacheDir) {
  for (const name of fs.readdirSync(cacheDir)) {
    if (!name.startsWith('.build-')) continue;
    const p = path.join(cacheDir, name);
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > TEMP_STALE_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* raced with another cleaner */
    }
  }
}

/**
 * Same source as mediasoup's npm-scripts.mjs downloadPrebuiltWorker():
 * <repo>/releases/download/<version>/mediasoup-worker-<version>-<platform>-<arch>[-kernel<N>].tgz,
 * base overridable with MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL. mediasoup's function is not
 * exported (the module runs a task on import) and needs node-fetch + tar, so this is a minimal
 * builtins-only reimplementation: fetch, gunzip, read the one file out of the tar, check it runs.
 */
async function downloadPrebuilt(pkgDir, version, dest) {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const repo = String(pkg.repository?.url ?? 'https://github.com/versatica/mediasoup')
    .replace(/^git\+/, '')
    .replace(/\.git$/, '');
  const base = process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL || `${repo}/releases/download`;
  let name = `mediasoup-worker-${version}-${process.platform}-${process.arch}`;
  if (process.platform === 'linux') name += `-kernel${kernelMajor}`;
  const url = `${base}/${version}/${name}.tgz`;
  log(`trying the prebuilt worker: ${url}`);

  const ctrl = new AbortController();
  let timer = setTimeout(
    () => ctrl.abort(new Error(`no response within ${DOWNLOAD_RESPONSE_TIMEOUT_MS / 1000}s`)),
    DOWNLOAD_RESPONSE_TIMEOUT_MS,
  );
  let tgz;
  try {
    const res = await fetch(url, { signal: ctrl.signal });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    clearTimeout(timer);
    timer = setTimeout(
      () => ctrl.abort(new Error(`download not finished within ${DOWNLOAD_TOTAL_TIMEOUT_MS / 1000}s`)),
      DOWNLOAD_TOTAL_TIMEOUT_MS,
    );
    tgz = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    const cause = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(err);
    log(`prebuilt worker not available (${cause}) after ${elapsed()}`);
    return false;
  } finally {
    clearTimeout(timer);
  }

  let binary;
  try {
    binary = extractFromTar(zlib.gunzipSync(tgz), BIN_NAME);
    if (!binary) throw new Error(`${BIN_NAME} not found in the archive`);
  } catch (err) {
    log(`prebuilt worker archive unusable: ${err.message}`);
    return false;
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.download-${process.pid}`;
  fs.writeFileSync(tmp, binary, { mode: 0o755 });
  if (!workerRuns(tmp)) {
    // e.g. built against a newer glibc than this host's; mediasoup does the same check.
    fs.rmSync(tmp, { force: true });
    log('prebuilt worker does not run on this host');
    return false;
  }
  fs.renameSync(tmp, dest);
  return true;
}

/** Minimal ustar reader: returns the contents of the first regular file whose basename matches. */
function extractFromTar(tar, wanted) {
  const field = (hdr, start, end) => hdr.toString('utf8', start, end).replace(/\0.*$/s, '');
  for (let off = 0; off + 512 <= tar.length;) {
    const hdr = tar.subarray(off, off + 512);
    if (hdr.every((b) => b === 0)) break; // end-of-archive marker
    const name = field(hdr, 0, 100);
    const size = parseInt(field(hdr, 124, 136).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) return null; // not a tar we understand
    const type = hdr[156];
    const data = off + 512;
    if ((type === 0x30 || type === 0) && path.posix.basename(name) === wanted) {
      return tar.subarray(data, data + size);
    }
    off = data + Math.ceil(size / 512) * 512;
  }
  return null;
}

/**
 * True when `bin` is an executable that actually starts on this host. Run without
 * MEDIASOUP_VERSION, the worker exits at once with code 41 (worker/src/main.cpp); anything else
 * (missing shared library, wrong arch, too-new glibc, a truncated file) means unusable.
 */
function workerRuns(bin) {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    if (!fs.statSync(bin).isFile()) return false;
  } catch {
    return false;
  }
  const r = spawnSync(bin, [], { env: {}, stdio: 'ignore', timeout: 10_000 });
  return r.status === 41;
}

function installBinary(src, dest) {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.copyFileSync(src, tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dest);
}

function findMediasoup() {
  const require = createRequire(path.join(PROJECT, 'package.json'));
  try {
    // "mediasoup/package.json" is not in its exports map: resolve the entry point and walk up.
    let dir = path.dirname(require.resolve('mediasoup'));
    for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const pj = path.join(dir, 'package.json');
      if (isFile(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'mediasoup') return dir;
    }
  } catch {
    /* fall through */
  }
  const guess = path.join(PROJECT, 'node_modules', 'mediasoup');
  return isFile(path.join(guess, 'package.json')) ? guess : null;
}

function getCacheDir() {
  if (process.env.PARLEY_CACHE_DIR) return path.resolve(process.env.PARLEY_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'parley');
}

/** Short sha256 of everything that defines the build: script, patches, shims (paths + bytes). */
function recipeHash() {
  const files = [
    'build-worker.sh',
    ...fs.readdirSync(HERE).filter((f) => f.endsWith('.diff')),
    ...listFiles(path.join(HERE, 'shims')).map((f) => path.relative(HERE, f)),
  ]
    .map((f) => f.split(path.sep).join('/'))
    .sort();
  const h = crypto.createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(fs.readFileSync(path.join(HERE, f)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

function listFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p) : [p];
  });
}

function missingRequirements() {
  const hasPkgConfig = onPath('pkg-config');
  return REQUIREMENTS.filter((r) => {
    if (r.needed === false) return false;
    if (r.cmd) return !onPath(r.cmd);
    if (!hasPkgConfig) return true;
    return spawnSync('pkg-config', ['--exists', ...r.pc], { stdio: 'ignore' }).status !== 0;
  });
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function rel(p) {
  return path.relative(process.cwd(), p) || p;
}
