import type { Server } from 'node:http';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

/**
 * Runs shutdown steps in order (the reverse of start-up), logging each, and never lets one failing
 * step skip the rest. The caller enforces the overall deadline.
 */
export async function runShutdown(steps: ShutdownStep[], log: Logger): Promise<void> {
  for (const step of steps) {
    const t0 = performance.now();
    try {
      await step.run();
      log.info({ step: step.name, ms: Math.round(performance.now() - t0) }, 'shutdown step done');
    } catch (err) {
      log.error({ err, step: step.name }, 'shutdown step failed');
    }
  }
}

/** Closes the HTTP server: stop accepting, then drop idle keep-alive sockets so close() returns. */
export function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // Requests still in flight get a moment; then their sockets go too.
    setTimeout(() => server.closeAllConnections(), defaults.shutdownHttpGraceMs).unref();
  });
}
