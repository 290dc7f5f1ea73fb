import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { MemoryRecordings } from '../../src/server/state/memory/memory-recordings.js';
import type { RecordingIndex, RecordingRecord } from '../../src/server/state/recording-index.js';
import { RedisRecordings } from '../../src/server/state/redis/redis-recordings.js';
import { RedisState } from '../../src/server/state/redis/redis-state.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** The recording metadata store: one suite, run against memory and a real redis-server. */

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

function rec(
  id: string,
  roomId: string,
  startedAt: number,
  over: Partial<RecordingRecord> = {},
): RecordingRecord {
  return {
    id,
    roomId,
    speaker: { userId: 'u1', name: 'User One' },
    startedAt,
    durationMs: 1_000,
    bytes: 2_000,
    file: `${id}.ogg`,
    nodeId: 'n1',
    status: 'ready',
    ...over,
  };
}

const backends: [
  string,
  () => Promise<{ index: RecordingIndex; state?: RedisState; close: () => Promise<void> }>,
][] = [
  ['memory', () => Promise.resolve({ index: new MemoryRecordings(), close: () => Promise.resolve() })],
  [
    'redis',
    async () => {
      const state = await RedisState.connect(redis.url, { prefix: `r${randomUUID().slice(0, 8)}:` });
      return { index: new RedisRecordings(state, createLogger('silent')), state, close: () => state.close() };
    },
  ],
];

for (const [name, make] of backends) {
  describe(`RecordingIndex: ${name}`, () => {
    let index: RecordingIndex;
    let state: RedisState | undefined;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ index, state, close } = await make());
    });
    afterEach(() => close());

    it('stores, reads back and replaces a record', async () => {
      expect(await index.get('a')).toBeNull();
      await index.put(rec('a', 'r1', 100, { status: 'recording', bytes: 0 }));
      expect(await index.get('a')).toEqual(rec('a', 'r1', 100, { status: 'recording', bytes: 0 }));
      await index.put(rec('a', 'r1', 100));
      expect(await index.get('a')).toEqual(rec('a', 'r1', 100));
    });

    it('lists a room’s finished recordings newest first, with since and limit; never one being written', async () => {
      await index.put(rec('a', 'r1', 100));
      await index.put(rec('b', 'r1', 300, { status: 'partial' }));
      await index.put(rec('c', 'r1', 200));
      await index.put(rec('d', 'r2', 250));
      await index.put(rec('e', 'r1', 400, { status: 'recording' }));
      const ids = async (q: { since?: number; limit: number }) =>
        (await index.list('r1', q)).map((r) => r.id);
      expect(await ids({ limit: 10 })).toEqual(['b', 'c', 'a']);
      expect(await ids({ limit: 2 })).toEqual(['b', 'c']);
      expect(await ids({ since: 200, limit: 10 })).toEqual(['b', 'c']);
      expect(await ids({ since: 301, limit: 10 })).toEqual([]);
      expect(await index.list('nowhere', { limit: 10 })).toEqual([]);
    });

    it('lists everything oldest first for the sweeper, and forgets removed records', async () => {
      await index.put(rec('a', 'r1', 300));
      await index.put(rec('b', 'r2', 100, { status: 'recording' }));
      expect((await index.all()).map((r) => r.id)).toEqual(['b', 'a']);
      expect(await index.remove('a')).toBe(true);
      expect(await index.remove('a')).toBe(false);
      expect(await index.get('a')).toBeNull();
      expect((await index.list('r1', { limit: 10 })).map((r) => r.id)).toEqual([]);
      expect((await index.all()).map((r) => r.id)).toEqual(['b']);
    });

    if (name === 'redis') {
      it('skips a corrupt record instead of failing the list', async () => {
        await index.put(rec('a', 'r1', 100));
        await index.put(rec('b', 'r1', 200));
        await state!.client.set(`${state!.prefix}recording:b`, '{"id":"b"');
        expect((await index.list('r1', { limit: 10 })).map((r) => r.id)).toEqual(['a']);
        expect(await index.get('b')).toBeNull();
      });
    }
  });
}
