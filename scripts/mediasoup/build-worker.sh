#!/usr/bin/env bash
# Build mediasoup-worker from the C++ sources shipped inside the mediasoup npm package, against the
# system (Debian 12) libraries: no meson wrap downloads, no pip, no GitHub.
#
# Usage: build-worker.sh <mediasoup package dir> <work dir>
#   <work dir> must be outside the project (ensure-worker.mjs passes a fresh temp dir inside the
#   cache dir). The result is <work dir>/mediasoup-worker; logs are in <work dir>/logs/.
#   Nothing is written into node_modules: installing the binary is ensure-worker.mjs's job.
# Env: JOBS (parallel compile jobs, default: nproc).
#
# Only mediasoup 3.19.x is supported (see README.md in this folder for why).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PKG="$(cd "${1:?usage: $0 <mediasoup package dir> <work dir>}" && pwd)"
WORK="${2:?usage: $0 <mediasoup package dir> <work dir>}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
SRC="$WORK/src"       # patched copy of the package (so node_modules stays pristine)
BUILD="$WORK/build"   # meson build dir
LOGS="$WORK/logs"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
START=$SECONDS

VERSION="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PKG/package.json" | head -n1)"
case "$VERSION" in
  3.19.*) ;;
  *)
    echo "build-worker: mediasoup $VERSION is not supported by this build recipe (only 3.19.x)." >&2
    echo "  3.21+ needs ankerl::unordered_dense (not packaged), 3.24+ the libsrtp 3 API, 3.27 Node 22." >&2
    echo "  Pin mediasoup to 3.19.3 in package.json, or provide a worker via MEDIASOUP_WORKER_BIN." >&2
    exit 2
    ;;
esac

phase() { printf '[mediasoup-worker] %-44s (%ds elapsed)\n' "$*" "$((SECONDS - START))"; }

# Run a command with its output in a log file; on failure show the log's tail and stop.
run_logged() {
  local log="$LOGS/$1"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "[mediasoup-worker] FAILED: $* (full log: $log)" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

rm -rf "$SRC" "$BUILD" "$LOGS"
mkdir -p "$SRC" "$LOGS"

phase "mediasoup $VERSION, $JOBS jobs, in $WORK"

# 1. Work on a copy: the package dir must not be modified (npm may verify or reuse it), and the
#    build dir must live outside the project so `npm ci` / git clean never have to deal with it.
phase "copying worker sources"
cp -R "$PKG/worker" "$SRC/worker"

# 2. Source patches (meson_version, and the DtlsTransport BIO callback fix that is REQUIRED with
#    Debian's KTLS-enabled OpenSSL; the why is written at the top of the diff). Checked-in diff
#    applied with patch(1) so that it is part of the cache key and fails loudly if it does not fit.
phase "applying patch-3.19.3.diff"
run_logged patch.log patch -p1 -d "$SRC" --forward --batch --no-backup-if-mismatch -i "$HERE/patch-3.19.3.diff"
grep -q '(operationType & BIO_CB_RETURN)' "$SRC/worker/src/RTC/DtlsTransport.cpp" || {
  echo "[mediasoup-worker] DtlsTransport BIO_CB_RETURN fix not present after patching; refusing to build" >&2
  exit 1
}

# 3. Stand-in subprojects. mediasoup's meson.build calls subproject('openssl') etc. and then
#    .get_variable(...) on them; it never uses dependency(), so --wrap-mode=nodownload alone would
#    never fall back to system libraries. Remove every wrap (download recipe) and drop in tiny
#    subprojects that expose Debian's libraries under the variable names mediasoup expects
#    (libsrtp3 = a compat header over libsrtp 2.5; liburing = two helpers Debian's 2.3 lacks).
phase "installing system-library shims"
rm -f "$SRC"/worker/subprojects/*.wrap
for shim in "$HERE"/shims/*/; do
  name="$(basename "$shim")"
  rm -rf "$SRC/worker/subprojects/$name"
  cp -R "$shim" "$SRC/worker/subprojects/$name"
done

# 4. Configure. nodownload: never fetch anything; release + b_ndebug: same flavour as mediasoup's
#    own Release build (the Node side looks for worker/out/Release/mediasoup-worker).
phase "meson setup"
cd "$SRC/worker"
run_logged meson-setup.log meson setup --wrap-mode=nodownload --buildtype=release -Db_ndebug=true "$BUILD"

# 5. The generated FlatBuffers headers (fbs/ -> FBS/*.h) are a custom target that the C++ sources
#    include but do not declare as a dependency; upstream builds it first too. `meson compile`
#    (not plain ninja) because only meson maps the target name to ninja's output path (fbs/FBS).
phase "generating FlatBuffers headers (flatc)"
run_logged flatbuffers.log meson compile -C "$BUILD" flatbuffers-generator

# 6. Compile and link only the worker (not the test/fuzzer targets). ~5 min on 2 cores.
#    Progress is reported every 15 s from ninja's "[done/total]" lines.
phase "compiling mediasoup-worker (ninja)"
ninja -C "$BUILD" -j "$JOBS" mediasoup-worker >"$LOGS/ninja.log" 2>&1 &
NINJA_PID=$!
trap 'kill "$NINJA_PID" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM   # runs the EXIT trap, which stops ninja
while kill -0 "$NINJA_PID" 2>/dev/null; do
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    kill -0 "$NINJA_PID" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$NINJA_PID" 2>/dev/null; then
    step="$(grep -o '^\[[0-9]*/[0-9]*\]' "$LOGS/ninja.log" | tail -n1 || true)"
    phase "  ninja ${step:-starting}"
  fi
done
if ! wait "$NINJA_PID"; then
  trap - EXIT INT TERM
  echo "[mediasoup-worker] FAILED: ninja mediasoup-worker (full log: $LOGS/ninja.log)" >&2
  tail -n 40 "$LOGS/ninja.log" >&2
  exit 1
fi
trap - EXIT INT TERM

install -m 0755 "$BUILD/mediasoup-worker" "$WORK/mediasoup-worker"
phase "built $WORK/mediasoup-worker ($(wc -c <"$WORK/mediasoup-worker") bytes)"
