/**
 * The worker pool's lifecycle on real mediasoup workers and a fake clock: a dead worker is
 * announced through the pool's one `died` hook and replaced after its backoff, and close() cancels
 * a replacement still waiting, so no worker is spawned after shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config/env.js';
import { defaults } from '../../src/server/config/defaults.js';
import { WorkerPool, type PoolWorker } from '../../src/server/media/worker-pool.js';
import { captureLogs } from '../helpers/log-capture.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('WorkerPool: death, replacement and close()', () => {
  const pools: WorkerPool[] = [];
  afterEach(() => {
    for (const p of pools.splice(0)) p.close();
  });

  async function startPool() {
    assertLoopbackOnly();
    const clock = new FakeClock();
    const { log, lines } = captureLogs('info');
    const config = loadConfig({ JWT_SECRET: 'x'.repeat(32), MEDIASOUP_WORKERS: '1' }).media;
    const pool = new WorkerPool(config, log, clock);
    pools.push(pool);
    const died: PoolWorker[] = [];
    pool.hooks.on('died', [['test: record the dead worker', (w) => void died.push(w)]]);
    await pool.start();
    return { pool, clock, lines, died };
  }

  it('a killed worker is announced once through the died hook, then replaced after its backoff', async () => {
    const { pool, clock, lines, died } = await startPool();
    const victim = pool.workers()[0];
    process.kill(victim.pid, 'SIGKILL');
    await waitUntil(() => pool.pendingRestarts === 1, 'the replacement to be scheduled');
    expect(died).toEqual([victim]);
    expect(pool.size).toBe(0);
    // Not before its backoff: one millisecond short, nothing is spawned.
    await clock.advance(defaults.workerRestartBaseMs - 1);
    expect(pool.pendingRestarts).toBe(1);
    expect(pool.size).toBe(0);
    await clock.advance(1);
    await waitUntil(() => pool.size === 1, 'the replacement worker to start', 10_000);
    const replacement = pool.workers()[0];
    expect(replacement.pid).not.toBe(victim.pid);
    expect(replacement.index).toBe(victim.index);
    expect(pool.pendingRestarts).toBe(0);
    expect(lines.some((l) => l.msg === 'mediasoup worker replaced' && l.pid === replacement.pid)).toBe(true);
  });

  it('close() cancels a replacement still waiting: nothing is spawned after it, and a second close() is a no-op', async () => {
    const { pool, clock, lines } = await startPool();
    const victim = pool.workers()[0];
    process.kill(victim.pid, 'SIGKILL');
    await waitUntil(() => pool.pendingRestarts === 1, 'the replacement to be scheduled');
    pool.close();
    pool.close();
    expect(pool.pendingRestarts).toBe(0);
    expect(clock.pending).toBe(0);
    // Well past every backoff: still no worker, and none was started.
    await clock.advance(defaults.workerRestartMaxMs * 2);
    expect(pool.size).toBe(0);
    expect(lines.some((l) => l.msg === 'mediasoup worker replaced')).toBe(false);
    expect(isAlive(victim.pid)).toBe(false);
  });

  it('close() on a healthy pool stops its workers', async () => {
    const { pool } = await startPool();
    const pids = pool.workers().map((w) => w.pid);
    expect(pids).toHaveLength(1);
    pool.close();
    expect(pool.size).toBe(0);
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), 'the worker processes to exit', 10_000);
  });
});
