import { createServer } from 'node:net';

/**
 * A port that was free a moment ago on 127.0.0.1. Only for programs that cannot bind port 0 and
 * report what they got (redis-server, turnserver): anything else binds port 0 itself. The port can
 * be taken between this probe and the program's bind, so callers retry with a new one when the
 * program fails with EADDRINUSE (`startWithFreePort`).
 */
export function probeFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Thrown by a `start` callback when its program could not bind the port it was given. */
export class PortInUseError extends Error {}

/**
 * Starts a program on a probed port, and again on a fresh port when the bind loses the race
 * (`start` throws PortInUseError); any other failure is final.
 */
export async function startWithFreePort<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await probeFreePort());
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err;
    }
  }
}
