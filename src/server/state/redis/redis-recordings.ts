import { z } from 'zod';
import { Recording } from '../../../protocol/index.js';
import type { Logger } from '../../logger.js';
import {
  newestFirst,
  type RecordingIndex,
  type RecordingQuery,
  type RecordingRecord,
} from '../recording-index.js';
import type { RedisState } from './redis-state.js';
import { parseRecord } from './records.js';

const RecordingRecordSchema = Recording.extend({
  file: z.string(),
  nodeId: z.string(),
  status: z.enum(['recording', 'ready', 'partial']),
});
const _check: z.ZodType<RecordingRecord> = RecordingRecordSchema;
void _check;

/**
 * Recording metadata in Redis, shared by every node:
 *
 * | Key                              | Type | Contents                                  | TTL  |
 * | -------------------------------- | ---- | ----------------------------------------- | ---- |
 * | `recording:<id>`                 | str  | JSON RecordingRecord                      | none |
 * | `recordings:{<roomId>}`          | zset | finished recording ids, score `startedAt` | none |
 * | `recordings`                     | zset | every recording id, score `startedAt`     | none |
 *
 * The sweeper removes records (retention, size cap); nothing expires by itself. The keys are in
 * different slots, so each is written by its own command (no cross-slot script on a Cluster); a
 * listed id whose record has gone is skipped.
 */
export class RedisRecordings implements RecordingIndex {
  readonly #redis: RedisState;
  readonly #log: Logger;

  constructor(redis: RedisState, log: Logger) {
    this.#redis = redis;
    this.#log = log;
  }

  #key(id: string): string {
    return `${this.#redis.prefix}recording:${id}`;
  }
  #roomKey(roomId: string): string {
    return `${this.#redis.prefix}recordings:{${roomId}}`;
  }
  get #allKey(): string {
    return `${this.#redis.prefix}recordings`;
  }

  async put(record: RecordingRecord): Promise<void> {
    await this.#redis.run('recording put', async (c) => {
      await c.set(this.#key(record.id), JSON.stringify(record));
      await c.zadd(this.#allKey, record.startedAt, record.id);
      if (record.status !== 'recording')
        await c.zadd(this.#roomKey(record.roomId), record.startedAt, record.id);
    });
  }

  async get(id: string): Promise<RecordingRecord | null> {
    const raw = await this.#redis.run('recording get', (c) => c.get(this.#key(id)));
    return raw === null ? null : this.#parse(id, raw);
  }

  async list(roomId: string, { since, limit }: RecordingQuery): Promise<RecordingRecord[]> {
    const ids = await this.#redis.run('recording list', (c) =>
      c.zrevrangebyscore(this.#roomKey(roomId), '+inf', since ?? '-inf', 'LIMIT', 0, limit),
    );
    return (await this.#many(ids)).sort(newestFirst);
  }

  async all(): Promise<RecordingRecord[]> {
    const ids = await this.#redis.run('recording all', (c) => c.zrange(this.#allKey, 0, -1));
    return this.#many(ids);
  }

  async remove(id: string): Promise<boolean> {
    const record = await this.get(id);
    return this.#redis.run('recording remove', async (c) => {
      const n = await c.del(this.#key(id));
      await c.zrem(this.#allKey, id);
      if (record) await c.zrem(this.#roomKey(record.roomId), id);
      return n > 0;
    });
  }

  async #many(ids: string[]): Promise<RecordingRecord[]> {
    if (ids.length === 0) return [];
    // One GET per id rather than an MGET: the keys may sit in different Cluster slots.
    const raws = await this.#redis.run('recording read', (c) =>
      Promise.all(ids.map((id) => c.get(this.#key(id)))),
    );
    const out: RecordingRecord[] = [];
    raws.forEach((raw, i) => {
      const r = raw === null ? null : this.#parse(ids[i], raw);
      if (r) out.push(r);
    });
    return out;
  }

  #parse(id: string, raw: string): RecordingRecord | null {
    return parseRecord(RecordingRecordSchema, raw, (why) =>
      this.#log.warn({ id, why }, 'corrupt recording record ignored'),
    );
  }
}
