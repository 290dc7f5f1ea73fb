import { defaults } from '../config/defaults.js';
import type { CallRecord, CallStep, StateStore } from '../state/state-store.js';
import type { Clock } from '../time/clock.js';

/**
 * Call records (the multi-device rules' state, call-answering.ts) with a node-local cache, so that
 * the call messages of a call, most of them trickled ICE candidates, do not each ask the state
 * store (a Redis round trip) for a record that has not changed. A record that does not exist is
 * cached too: relayed messages of calls the server never rang are common.
 *
 * Kept correct the way the directory cache is (cluster/directory-cache.ts): every change goes
 * through `update`, which drops the entry before and after the store has it and then tells the
 * other nodes (`changed`), whose bus handler calls `onChanged`. A lookup in flight across an
 * invalidation is not cached. Entries live `callRecordCacheTtlMs` at most, which bounds what a lost
 * bus message or a record expiring in the store (24 h, or 1 min once ended) could leave stale.
 */
export class CallRecords {
  readonly #store: StateStore;
  readonly #clock: Clock;
  readonly #changed: ((callKey: string) => void) | null;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, { rec: CallRecord | null; expiresAt: number }>();
  #epoch = 0;

  /** `changed`: tells the other nodes of the cluster (null on a single node). */
  constructor(store: StateStore, clock: Clock, changed: ((callKey: string) => void) | null) {
    this.#store = store;
    this.#clock = clock;
    this.#changed = changed;
    this.#ttlMs = defaults.callRecordCacheTtlMs;
  }

  async get(callKey: string): Promise<CallRecord | null> {
    const cached = this.#entries.get(callKey);
    if (cached && cached.expiresAt > this.#clock.monotonic()) return cached.rec;
    const epoch = this.#epoch;
    const rec = await this.#store.getCall(callKey);
    if (epoch === this.#epoch) {
      this.#entries.delete(callKey); // re-inserted last: the Map's order is the eviction order
      this.#entries.set(callKey, { rec, expiresAt: this.#clock.monotonic() + this.#ttlMs });
      if (this.#entries.size > defaults.callRecordCacheSize) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
    }
    return rec;
  }

  /** The cached record (null: cached as absent), or undefined when only the store can say. */
  peek(callKey: string): CallRecord | null | undefined {
    const cached = this.#entries.get(callKey);
    return cached && cached.expiresAt > this.#clock.monotonic() ? cached.rec : undefined;
  }

  /** Until when (monotonic ms) the cached entry of `callKey` holds, or undefined when none is. */
  expiresAt(callKey: string): number | undefined {
    return this.#entries.get(callKey)?.expiresAt;
  }

  /** Changes with every change or invalidation of any record (this node's, or the bus's). */
  get epoch(): number {
    return this.#epoch;
  }

  async update(callKey: string, step: CallStep, ttlMs: number): Promise<CallRecord | null> {
    this.onChanged(callKey);
    const rec = await this.#store.updateCall(callKey, step, ttlMs);
    this.onChanged(callKey);
    this.#changed?.(callKey);
    return rec;
  }

  /** Another node changed the call's record (bus), or this one did. */
  readonly onChanged = (callKey: string): void => {
    this.#epoch++;
    this.#entries.delete(callKey);
  };

  /** Records (or their absence) held in memory (tests). */
  get cachedForTesting(): number {
    return this.#entries.size;
  }
}
