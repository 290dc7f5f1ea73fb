import type { Recording } from '../../protocol/index.js';

/**
 * A recorded talk burst as the state backend keeps it: the public metadata plus where the file is
 * and how far it got. `recording` while the burst is being written (its node may die meanwhile),
 * `ready` once finalised, `partial` when a sweeper finalised what a dead writer left.
 */
export interface RecordingRecord extends Recording {
  /** File name inside RECORDINGS_DIR. */
  file: string;
  /** The node that wrote it. */
  nodeId: string;
  status: 'recording' | 'ready' | 'partial';
}

export interface RecordingQuery {
  /** Only recordings started at or after this server time (ms). */
  since?: number;
  /** At most this many, newest first. */
  limit: number;
}

/**
 * Where recordings' metadata lives: beside the rest of the shared state (memory on one node, Redis
 * for a cluster, so that any node can list and serve them). Both implementations pass
 * test/state/recording-index.test.ts.
 */
export interface RecordingIndex {
  /** Creates or replaces a record. */
  put(record: RecordingRecord): Promise<void>;
  get(id: string): Promise<RecordingRecord | null>;
  /** A room's finished (ready or partial) recordings, newest first. */
  list(roomId: string, query: RecordingQuery): Promise<RecordingRecord[]>;
  /** Every record, oldest first (the sweeper's view). */
  all(): Promise<RecordingRecord[]>;
  /** Forgets a record; true if it existed. */
  remove(id: string): Promise<boolean>;
}

/** The public part of a record (what the API, `ptt:recording` and the webhook carry). */
export function publicRecording(r: RecordingRecord): Recording {
  return {
    id: r.id,
    roomId: r.roomId,
    speaker: { userId: r.speaker.userId, name: r.speaker.name },
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    bytes: r.bytes,
    ...(r.status === 'partial' ? { partial: true } : {}),
  };
}

/** Newest first, ties broken by id so that every backend lists in the same order. */
export function newestFirst(a: RecordingRecord, b: RecordingRecord): number {
  return b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}
