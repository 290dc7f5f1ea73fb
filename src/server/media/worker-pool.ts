import { EventEmitter } from 'node:events';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { defaults } from '../config/defaults.js';
import type { MediaConfig } from '../config/env.js';
import type { Logger } from '../logger.js';

/** A worker and its load, counted in consumers (what saturates a worker's one core). */
export class PoolWorker {
  readonly worker: types.Worker;
  readonly index: number;
  consumers = 0;
  /** Of `consumers`, those of video (about 1.8 audio consumers each: bench/ scenario 5C). */
  videoConsumers = 0;

  constructor(worker: types.Worker, index: number) {
    this.worker = worker;
    this.index = index;
  }

  get pid(): number {
    return this.worker.pid;
  }
}

type PoolEvents = { died: [PoolWorker] };

/**
 * One mediasoup worker per core (by default). A dead worker is reported (`died`, so its rooms can
 * be torn down and their members told) and replaced. Each worker gets its own slice of the RTC port
 * range, so replacements never collide with survivors.
 */
export class WorkerPool extends EventEmitter<PoolEvents> {
  readonly #config: MediaConfig;
  readonly #log: Logger;
  readonly #workers: (PoolWorker | null)[] = [];
  #closed = false;

  constructor(config: MediaConfig, log: Logger) {
    super();
    this.#config = config;
    this.#log = log;
  }

  get size(): number {
    return this.#workers.filter((w) => w !== null).length;
  }

  get budget(): number {
    return this.#config.maxConsumersPerWorker;
  }

  /** Video consumers one worker may carry, inside `budget` (MAX_VIDEO_CONSUMERS_PER_WORKER). */
  get videoBudget(): number {
    return this.#config.maxVideoConsumersPerWorker;
  }

  workers(): PoolWorker[] {
    return this.#workers.filter((w): w is PoolWorker => w !== null);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.#config.workers; i++) this.#workers.push(await this.#spawn(i));
    this.#log.info(
      { workers: this.size, version: mediasoup.version, budget: this.budget },
      'mediasoup workers started',
    );
  }

  /** The least loaded live worker, optionally only among those under the consumer budget. */
  leastLoaded(underBudget = false): PoolWorker | null {
    let best: PoolWorker | null = null;
    for (const w of this.#workers) {
      if (!w || (underBudget && w.consumers >= this.budget)) continue;
      if (!best || w.consumers < best.consumers) best = w;
    }
    return best;
  }

  async #spawn(index: number): Promise<PoolWorker> {
    const { rtcMinPort, rtcMaxPort, logLevel } = this.#config;
    const span = Math.floor((rtcMaxPort - rtcMinPort + 1) / Math.max(1, this.#config.workers));
    const min = rtcMinPort + index * span;
    const worker = await mediasoup.createWorker({
      logLevel,
      rtcMinPort: min,
      rtcMaxPort: Math.min(rtcMaxPort, min + span - 1),
    });
    const pw = new PoolWorker(worker, index);
    worker.on('died', (err) => {
      this.#log.error({ pid: worker.pid, index, err: err.message }, 'mediasoup worker died');
      this.#workers[index] = null;
      this.emit('died', pw);
      if (!this.#closed) this.#replace(index);
    });
    return pw;
  }

  #replace(index: number, attempt = 0): void {
    const delay = Math.min(defaults.workerRestartMaxMs, defaults.workerRestartBaseMs * 2 ** attempt);
    setTimeout(() => {
      if (this.#closed) return;
      this.#spawn(index).then(
        (w) => {
          if (this.#closed) return w.worker.close();
          this.#workers[index] = w;
          this.#log.info({ pid: w.pid, index }, 'mediasoup worker replaced');
        },
        (err: unknown) => {
          this.#log.error({ err, index }, 'mediasoup worker restart failed');
          this.#replace(index, attempt + 1);
        },
      );
    }, delay).unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w?.worker.close();
    this.#workers.length = 0;
  }
}
