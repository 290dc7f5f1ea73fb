#!/bin/sh
# Runs a command inside a new network namespace that has only the loopback interface, so that
# WebRTC endpoints under test (mediasoup transports, browsers, coturn) can never gather or use
# another interface. Root uses `unshare -n`; other users get a user namespace too (`unshare -rn`).
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
if unshare -rn true 2>/dev/null; then
  exec unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "in-loopback-netns: cannot create a network namespace (need root, or unprivileged user namespaces)." >&2
echo "The media tests must not run on the host network; see README 'Development'." >&2
exit 1
