import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordingConfig } from '../config/env.js';
import { background } from '../lifecycle/background.js';
import type { Logger } from '../logger.js';
import type { ChannelResolver } from '../rooms/room-catalog.js';
import type { RecordingIndex, RecordingRecord } from '../state/recording-index.js';
import { systemClock, type Clock, type Timer } from '../time/clock.js';
import { repairOggOpus } from './ogg-repair.js';

export interface SweepResult {
  /** Bursts whose writer died, finalised as `partial` (or dropped when nothing was kept). */
  finalised: string[];
  /** Past their retention. */
  expired: string[];
  /** Deleted, oldest first, to bring the total under RECORDINGS_MAX_BYTES. */
  evicted: string[];
}

export interface RecordingSweeperOptions {
  index: RecordingIndex;
  catalog: ChannelResolver;
  config: RecordingConfig;
  /** Where the files are, and which bursts this node is writing right now. */
  recorder: { readonly dir: string; activeIds(): Set<string> };
  nodeId: string;
  /** Whether another node is alive (a cluster's directory). Default: none is. */
  nodeAlive?: (nodeId: string) => Promise<boolean>;
  log: Logger;
  clock?: Clock;
}

/**
 * Keeps the recordings within bounds, at start-up and then every RECORDING_SWEEP_INTERVAL_MS on
 * the injected clock:
 * 1. a burst still marked `recording` whose writer is gone (this node restarted, or its node is
 *    dead) is finalised from the whole pages on disk and marked `partial`: never left corrupt;
 * 2. recordings older than their channel's retention (or RECORDING_RETENTION_HOURS) are deleted;
 * 3. while the total exceeds RECORDINGS_MAX_BYTES, the oldest are deleted.
 * Every node may sweep; deleting twice is harmless.
 */
export class RecordingSweeper {
  readonly #o: RecordingSweeperOptions;
  readonly #clock: Clock;
  #timer: Timer | null = null;
  /** A pass asked for and not started yet: callers meanwhile share it. */
  #queued: Promise<SweepResult> | null = null;
  /** Passes run one after another. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(opts: RecordingSweeperOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Sweeps now, then on every interval. */
  start(): void {
    if (this.#closed || this.#timer) return;
    background(this.sweep(), this.#o.log, 'recording sweep');
    this.#timer = this.#clock.setInterval(
      () => background(this.sweep(), this.#o.log, 'recording sweep'),
      this.#o.config.sweepIntervalMs,
    );
    this.#timer.unref();
  }

  /**
   * One pass. Passes run one at a time; a call while one runs queues the next (which reads the
   * time when it starts), and calls while that one waits share it.
   */
  sweep(): Promise<SweepResult> {
    if (this.#queued) return this.#queued;
    const run = this.#tail.then(() => {
      this.#queued = null;
      return this.#sweep();
    });
    this.#queued = run;
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Stops the interval and waits for a pass in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) this.#clock.clearInterval(this.#timer);
    this.#timer = null;
    await this.#tail;
  }

  async #sweep(): Promise<SweepResult> {
    const out: SweepResult = { finalised: [], expired: [], evicted: [] };
    const now = this.#clock.now();
    const active = this.#o.recorder.activeIds();
    let kept: RecordingRecord[] = [];
    for (const r of await this.#o.index.all()) {
      if (r.status === 'recording') {
        if (active.has(r.id) || !(await this.#orphaned(r))) continue;
        const done = await this.#finalise(r);
        out.finalised.push(r.id);
        if (!done) continue;
        kept.push(done);
        continue;
      }
      const hours = this.#o.catalog.resolve(r.roomId)?.recordRetentionHours ?? this.#o.config.retentionHours;
      if (now - r.startedAt >= hours * 3_600_000) {
        await this.#delete(r);
        out.expired.push(r.id);
        continue;
      }
      kept.push(r);
    }
    // Oldest first: the index lists them so.
    let total = kept.reduce((n, r) => n + r.bytes, 0);
    kept = kept.filter((r) => r.status !== 'recording');
    for (const r of kept) {
      if (total <= this.#o.config.maxBytes) break;
      await this.#delete(r);
      total -= r.bytes;
      out.evicted.push(r.id);
    }
    if (out.finalised.length + out.expired.length + out.evicted.length > 0)
      this.#o.log.info(
        { finalised: out.finalised.length, expired: out.expired.length, evicted: out.evicted.length },
        'recordings swept',
      );
    return out;
  }

  /** Its writer is gone: this node (it is not writing it, so it was before a restart), or a dead node. */
  async #orphaned(r: RecordingRecord): Promise<boolean> {
    if (r.nodeId === this.#o.nodeId) return true;
    return !(await (this.#o.nodeAlive?.(r.nodeId) ?? Promise.resolve(false)));
  }

  /** Keeps the whole pages of a dead writer's file; null (and the record gone) if none survived. */
  async #finalise(r: RecordingRecord): Promise<RecordingRecord | null> {
    const path = join(this.#o.recorder.dir, r.file);
    const repaired = await repairOggOpus(path).catch(() => null);
    if (!repaired) {
      await this.#delete(r);
      return null;
    }
    const done: RecordingRecord = { ...r, ...repaired, status: 'partial' };
    await this.#o.index.put(done);
    this.#o.log.warn({ id: r.id, node: r.nodeId, ms: repaired.durationMs }, 'orphaned burst finalised');
    return done;
  }

  async #delete(r: RecordingRecord): Promise<void> {
    await rm(join(this.#o.recorder.dir, r.file), { force: true });
    await this.#o.index.remove(r.id);
  }
}
