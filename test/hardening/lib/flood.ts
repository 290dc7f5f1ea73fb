import { Worker } from 'node:worker_threads';

export interface FloodResult {
  opened: number;
  rateLimited: number;
  refused: number;
  closedWith: Record<string, number>;
  framesSent: number;
  msToClose: number[];
}

/**
 * Floods from a worker thread (so this thread, which times the calm clients, is not the one busy
 * flooding): one connection per token, `concurrency` at a time, each sending as fast as its socket
 * takes frames until the server closes it.
 */
export function floodFromWorker(
  wsUrl: string,
  tokens: string[],
  concurrency = 1,
  durationMs = 60_000,
): Promise<FloodResult> {
  const worker = new Worker(new URL('./flooder-worker.mjs', import.meta.url), {
    workerData: { wsUrl, tokens, durationMs, concurrency },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', (r: FloodResult) => {
      void worker.terminate();
      resolve(r);
    });
    worker.once('error', reject);
  });
}
