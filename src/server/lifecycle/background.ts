import type { Logger } from '../logger.js';

/**
 * Runs work nobody awaits (a socket closed, a timer fired, a bus message arrived) so that its
 * failure is logged instead of becoming an unhandled rejection, which would stop the process.
 */
export function background(work: Promise<unknown> | undefined, log: Logger, what: string): void {
  work?.catch((err: unknown) => log.error({ err, what }, 'background task failed'));
}
