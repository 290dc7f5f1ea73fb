import type * as Mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { defaults } from '../config/defaults.js';
import type { MediaConfig } from '../config/env.js';
import { Hooks } from '../events/hooks.js';
import type { Logger } from '../logger.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';

/**
 * A worker and its load: consumers (what saturates a worker's one core) and WebRTC transports
 * (each binds one UDP and one TCP port of the worker's slice of the RTC port range).
 */
export class PoolWorker {
  readonly worker: types.Worker;
  readonly index: number;
  /** The worker's share of RTC_MIN_PORT..RTC_MAX_PORT: how many transports it can bind at most. */
  readonly ports: number;
  consumers = 0;
  /** Of `consumers`, those of video (about 1.8 audio consumers each: bench/ scenario 5C). */
  videoConsumers = 0;
  /** Transports open or being created on this worker (counted before they exist, like consumers). */
  transports = 0;

  constructor(worker: types.Worker, index: number, ports: number) {
    this.worker = worker;
    this.index = index;
    this.ports = ports;
  }

  /** True while another transport can bind a port here. */
  get hasFreePort(): boolean {
    return this.transports < this.ports;
  }

  get pid(): number {
    return this.worker.pid;
  }
}

/** mediasoup, loaded on first use (a node without workers never needs it). */
function mediasoupModule(): Promise<typeof Mediasoup> {
  return import('mediasoup');
}

export type PoolEvents = { died: [worker: PoolWorker] };

/** `/health` `sfu`: see WorkerPool.capacity. */
export interface SfuCapacity {
  status: 'ok' | 'degraded' | 'exhausted';
  /** Live workers with no free port or at their consumer budget. */
  exhaustedWorkers: number;
  transports: number;
  /** Ports still free for transports, over every live worker. */
  freePorts: number;
  consumers: number;
}

/**
 * One mediasoup worker per core (by default). A dead worker is reported (`hooks` `died`, so its
 * rooms can be torn down and their members told) and replaced after a backoff. Each worker gets its
 * own slice of the RTC port range, so replacements never collide with survivors. `close()` is
 * idempotent: it closes the workers and cancels a pending replacement, so nothing spawns after it.
 */
export class WorkerPool {
  /** `died`: a worker's process is gone (its listeners run before it is replaced). */
  readonly hooks: Hooks<PoolEvents>;
  readonly #config: MediaConfig;
  readonly #log: Logger;
  readonly #workers: (PoolWorker | null)[] = [];
  /** Replacements waiting for their backoff to end, by worker index. */
  readonly #restarts = new Map<number, Timer>();
  readonly #clock: Clock;
  #closed = false;

  constructor(config: MediaConfig, log: Logger, clock: Clock = systemClock) {
    this.#config = config;
    this.#log = log;
    this.#clock = clock;
    this.hooks = new Hooks('worker-pool', log);
  }

  /** Replacements of dead workers still waiting for their backoff (0 after close()). */
  get pendingRestarts(): number {
    return this.#restarts.size;
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
    // A signaling-only node (MEDIASOUP_WORKERS=0) never loads mediasoup: its heap, which V8 marks on
    // every major GC, is ~4.5 MB smaller (docs/benchmarks.md, twelfth pass).
    if (this.#config.workers === 0) {
      this.#log.info({ workers: 0 }, 'mediasoup disabled (MEDIASOUP_WORKERS=0)');
      return;
    }
    const { version } = await mediasoupModule();
    for (let i = 0; i < this.#config.workers; i++) this.#workers.push(await this.#spawn(i));
    this.#log.info({ workers: this.size, version, budget: this.budget }, 'mediasoup workers started');
  }

  /**
   * The least loaded live worker, optionally only among those under the consumer budget and with
   * a free port (`underBudget`), and also under the video consumer budget (`forVideo`). Load is the
   * largest of the worker's consumer share (of its budget), its video consumer share (of the video
   * budget: a worker full of video is full for conference rooms even with audio budget left) and
   * its port share (transports over its slice of the port range), so a worker whose ports are taken
   * by idle transports is not chosen while another's are unused (issue 13: placement by consumers
   * alone ran one worker out of ports while the other's stayed free).
   */
  leastLoaded(underBudget = false, forVideo = false): PoolWorker | null {
    let best: PoolWorker | null = null;
    let bestLoad = Infinity;
    for (const w of this.#workers) {
      if (!w || (underBudget && !this.isOpen(w, forVideo))) continue;
      const load = this.load(w);
      if (load < bestLoad) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  /** A new receiver may go here: under the consumer budget with a free port, and for video under its budget. */
  isOpen(w: PoolWorker, forVideo = false): boolean {
    return w.consumers < this.budget && w.hasFreePort && (!forVideo || w.videoConsumers < this.videoBudget);
  }

  /** A worker's load in [0, 1+]: the largest of its consumer, video consumer and port shares. */
  load(w: PoolWorker): number {
    return Math.max(
      w.consumers / this.budget,
      w.videoConsumers / this.videoBudget,
      w.transports / Math.max(1, w.ports),
    );
  }

  /**
   * The SFU's capacity for /health: `degraded` when a live worker has no free port or is at its
   * consumer budget (rooms on it can get no new transports or listeners), `exhausted` when every
   * worker is; null when the SFU is disabled.
   */
  capacity(): SfuCapacity | null {
    const live = this.workers();
    if (this.#config.workers === 0) return null;
    let full = 0;
    let freePorts = 0;
    let transports = 0;
    let consumers = 0;
    for (const w of live) {
      if (!w.hasFreePort || w.consumers >= this.budget) full++;
      freePorts += Math.max(0, w.ports - w.transports);
      transports += w.transports;
      consumers += w.consumers;
    }
    const status = live.length === 0 || full === live.length ? 'exhausted' : full > 0 ? 'degraded' : 'ok';
    return { status, exhaustedWorkers: full, transports, freePorts, consumers };
  }

  async #spawn(index: number): Promise<PoolWorker> {
    const { rtcMinPort, rtcMaxPort, logLevel } = this.#config;
    const span = Math.floor((rtcMaxPort - rtcMinPort + 1) / Math.max(1, this.#config.workers));
    const min = rtcMinPort + index * span;
    const max = Math.min(rtcMaxPort, min + span - 1);
    const { createWorker } = await mediasoupModule();
    const worker = await createWorker({ logLevel, rtcMinPort: min, rtcMaxPort: max });
    const pw = new PoolWorker(worker, index, max - min + 1);
    worker.on('died', (err) => {
      this.#log.error({ pid: worker.pid, index, err: err.message }, 'mediasoup worker died');
      this.#workers[index] = null;
      void this.hooks.emit('died', pw).then(() => {
        if (!this.#closed) this.#replace(index);
      });
    });
    return pw;
  }

  #replace(index: number, attempt = 0): void {
    if (this.#closed) return;
    const delay = Math.min(defaults.workerRestartMaxMs, defaults.workerRestartBaseMs * 2 ** attempt);
    const timer = this.#clock.setTimeout(() => {
      this.#restarts.delete(index);
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
    }, delay);
    timer.unref();
    this.#restarts.set(index, timer);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#restarts.values()) this.#clock.clearTimeout(timer);
    this.#restarts.clear();
    for (const w of this.#workers) w?.worker.close();
    this.#workers.length = 0;
  }
}
