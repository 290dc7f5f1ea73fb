import { networkInterfaces } from 'node:os';

/**
 * Media tests open real mediasoup transports (and WebRTC peers). They must run inside a
 * loopback-only network namespace (`npm test` does this through scripts/in-loopback-netns.sh), so
 * that ICE can only ever use 127.0.0.1. Refuse to run anywhere else.
 */
export function assertLoopbackOnly(): void {
  const others = Object.entries(networkInterfaces())
    .filter(([name, addrs]) => name !== 'lo' && (addrs ?? []).some((a) => !a.internal))
    .map(([name]) => name);
  if (others.length > 0) {
    throw new Error(
      `media tests must run in a loopback-only network namespace, but this process sees ${others.join(', ')}. ` +
        'Run them through `npm test` (or: unshare -n sh -c \'ip link set lo up && exec "$@"\' sh npx vitest run).',
    );
  }
}
