#!/bin/sh
# Debian 12 (bookworm) packages needed to build mediasoup-worker 3.19.x against system libraries
# (see build-worker.sh). Idempotent: apt-get is not run at all when everything is installed.
# Needs root (or sudo) only when something is missing. Used by CI before `npm ci`.
set -eu

PACKAGES="g++ python3 meson ninja-build pkg-config patch \
libssl-dev libuv1-dev libsrtp2-dev libabsl-dev libusrsctp-dev liburing-dev \
libflatbuffers-dev flatbuffers-compiler"

missing=""
for p in $PACKAGES; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  case "$status" in
    ii*) ;;
    *) missing="$missing $p" ;;
  esac
done

if [ -z "$missing" ]; then
  echo "mediasoup build dependencies: all installed"
  exit 0
fi

echo "mediasoup build dependencies missing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# env(1) rather than export: sudo drops most of the caller's environment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
