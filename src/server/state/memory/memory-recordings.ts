import {
  newestFirst,
  type RecordingIndex,
  type RecordingQuery,
  type RecordingRecord,
} from '../recording-index.js';

/** Recording metadata in process memory (one node, the default). */
export class MemoryRecordings implements RecordingIndex {
  readonly #records = new Map<string, RecordingRecord>();

  put(record: RecordingRecord): Promise<void> {
    this.#records.set(record.id, structuredClone(record));
    return Promise.resolve();
  }

  get(id: string): Promise<RecordingRecord | null> {
    const r = this.#records.get(id);
    return Promise.resolve(r ? structuredClone(r) : null);
  }

  list(roomId: string, { since, limit }: RecordingQuery): Promise<RecordingRecord[]> {
    const out = [...this.#records.values()]
      .filter((r) => r.roomId === roomId && r.status !== 'recording' && r.startedAt >= (since ?? -Infinity))
      .sort(newestFirst)
      .slice(0, limit)
      .map((r) => structuredClone(r));
    return Promise.resolve(out);
  }

  all(): Promise<RecordingRecord[]> {
    return Promise.resolve(
      [...this.#records.values()].sort((a, b) => newestFirst(b, a)).map((r) => structuredClone(r)),
    );
  }

  remove(id: string): Promise<boolean> {
    return Promise.resolve(this.#records.delete(id));
  }
}
