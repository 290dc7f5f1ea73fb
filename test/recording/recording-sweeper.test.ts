import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config/env.js';
import { StationManifest } from '../../src/server/config/manifest.js';
import { createLogger } from '../../src/server/logger.js';
import { OggOpusWriter } from '../../src/server/recording/ogg-opus-writer.js';
import { readPages, OGG_FLAG_EOS } from '../../src/server/recording/ogg-page.js';
import { RecordingSweeper } from '../../src/server/recording/recording-sweeper.js';
import { RoomCatalog } from '../../src/server/rooms/room-catalog.js';
import { MemoryRecordings } from '../../src/server/state/memory/memory-recordings.js';
import type { RecordingRecord } from '../../src/server/state/recording-index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { encodeTone, probe } from '../helpers/ogg-audio.js';

/*
 * The sweeper on a fake clock, with real files: retention (per channel and the default), the total
 * size cap, and bursts whose writer died (finalised from their whole pages, never left corrupt).
 */

const HOUR = 3_600_000;
const catalog = new RoomCatalog(
  StationManifest.parse({
    channels: [
      { id: 'short', name: 'Short', mode: 'ptt', maxParticipants: 5, record: true, recordRetentionHours: 1 },
      { id: 'long', name: 'Long', mode: 'ptt', maxParticipants: 5, record: true },
    ],
  }),
);

let dir: string;
let tonePackets: Buffer[];
let clock: FakeClock;
let index: MemoryRecordings;
let active: Set<string>;
let sweeper: RecordingSweeper;
let alive: Set<string>;

function makeSweeper(env: Record<string, string> = {}) {
  const config = loadConfig({ RECORDINGS_DIR: dir, RECORDING_SWEEP_INTERVAL_MS: '60000', ...env });
  return new RecordingSweeper({
    index,
    catalog,
    config: config.recording,
    recorder: { dir, activeIds: () => active },
    nodeId: 'me',
    nodeAlive: (id) => Promise.resolve(alive.has(id)),
    log: createLogger('silent'),
    clock,
  });
}

/** A finished recording of `packets` 20 ms packets, written by the real writer. */
async function stored(id: string, roomId: string, startedAt: number, over: Partial<RecordingRecord> = {}) {
  const w = new OggOpusWriter(join(dir, `${id}.ogg`), { packetsPerPage: 25, maxGapSamples: 480_000 });
  for (let i = 0; i < 50; i++) w.push(i * 960, tonePackets[i]);
  w.close();
  const r: RecordingRecord = {
    id,
    roomId,
    speaker: { userId: 'u', name: 'U' },
    startedAt,
    durationMs: 1_000,
    bytes: w.bytes,
    file: `${id}.ogg`,
    nodeId: 'me',
    status: 'ready',
    ...over,
  };
  await index.put(r);
  return r;
}

/** A burst cut off mid-page: 60 packets pushed, never closed (two whole pages on disk). */
async function torn(id: string, nodeId: string): Promise<void> {
  const w = new OggOpusWriter(join(dir, `${id}.ogg`), { packetsPerPage: 25, maxGapSamples: 480_000 });
  for (let i = 0; i < 60; i++) w.push(i * 960, tonePackets[i]);
  const data = await readFile(join(dir, `${id}.ogg`));
  await writeFile(join(dir, `${id}.ogg`), Buffer.concat([data, data.subarray(0, 40)]));
  await index.put({
    id,
    roomId: 'long',
    speaker: { userId: 'u', name: 'U' },
    startedAt: clock.now(),
    durationMs: 0,
    bytes: 0,
    file: `${id}.ogg`,
    nodeId,
    status: 'recording',
  });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-sweep-'));
  const src = join(dir, 'src.opus');
  await encodeTone(src, 1.5);
  tonePackets = readPages(await readFile(src))
    .slice(2)
    .flatMap((p) => p.packets);
  await rm(src);
  clock = new FakeClock();
  index = new MemoryRecordings();
  active = new Set();
  alive = new Set();
  sweeper = makeSweeper();
});
afterEach(async () => {
  await sweeper.close();
  await rm(dir, { recursive: true, force: true });
});

const files = async () => (await readdir(dir)).sort();

describe('RecordingSweeper', () => {
  it('deletes recordings past their channel’s retention, or the default one, on its interval', async () => {
    await stored('s1', 'short', clock.now());
    await stored('l1', 'long', clock.now());
    sweeper.start();
    // Each tick's pass touches real files: wait for the passes a step of the clock queued.
    const step = async (ms: number) => {
      await clock.advance(ms);
      await sweeper.sweep();
    };
    await step(0);
    expect(await files()).toEqual(['l1.ogg', 's1.ogg']);
    await step(HOUR); // 'short' keeps recordings 1 h
    expect(await files()).toEqual(['l1.ogg']);
    expect(await index.get('s1')).toBeNull();
    await step(167 * HOUR - 60_000);
    expect(await files()).toEqual(['l1.ogg']); // the default: 168 h
    await step(60_000);
    expect(await files()).toEqual([]);
    expect(await index.all()).toEqual([]);
    await sweeper.close();
    await sweeper.close(); // idempotent
  });

  it('keeps the total under RECORDINGS_MAX_BYTES by deleting the oldest first', async () => {
    const a = await stored('a', 'long', clock.now() - 3_000);
    await stored('b', 'long', clock.now() - 2_000);
    await stored('c', 'long', clock.now() - 1_000);
    await sweeper.close();
    sweeper = makeSweeper({ RECORDINGS_MAX_BYTES: String(a.bytes * 2) });
    expect(await sweeper.sweep()).toEqual({ finalised: [], expired: [], evicted: ['a'] });
    expect(await files()).toEqual(['b.ogg', 'c.ogg']);
    expect(await sweeper.sweep()).toEqual({ finalised: [], expired: [], evicted: [] });
  });

  it('finalises a burst whose writer died (this node restarted, or a dead node) as partial, and leaves live ones alone', async () => {
    await torn('mine', 'me');
    await torn('dead', 'n-dead');
    await torn('live', 'n-live');
    await torn('writing', 'me');
    alive.add('n-live');
    active.add('writing');
    const out = await sweeper.sweep();
    expect(out.finalised.sort()).toEqual(['dead', 'mine']);
    for (const id of ['mine', 'dead']) {
      const r = await index.get(id);
      expect(r).toMatchObject({ status: 'partial', durationMs: 1_000 });
      const data = await readFile(join(dir, `${id}.ogg`));
      expect(r?.bytes).toBe(data.length);
      expect(readPages(data).at(-1)?.flags).toBe(OGG_FLAG_EOS);
      expect(Math.abs((await probe(join(dir, `${id}.ogg`))).durationMs - 1_000)).toBeLessThanOrEqual(20);
    }
    expect((await index.get('live'))?.status).toBe('recording');
    expect((await index.get('writing'))?.status).toBe('recording');
    // A partial recording is listed, marked.
    expect((await index.list('long', { limit: 10 })).map((r) => r.id).sort()).toEqual(['dead', 'mine']);
  });

  it('drops an orphan with nothing worth keeping (no whole audio page)', async () => {
    const w = new OggOpusWriter(join(dir, 'x.ogg'), { packetsPerPage: 25, maxGapSamples: 480_000 });
    w.push(0, tonePackets[0]);
    await index.put({
      id: 'x',
      roomId: 'long',
      speaker: { userId: 'u', name: 'U' },
      startedAt: clock.now(),
      durationMs: 0,
      bytes: 0,
      file: 'x.ogg',
      nodeId: 'me',
      status: 'recording',
    });
    expect((await sweeper.sweep()).finalised).toEqual(['x']);
    expect(await index.get('x')).toBeNull();
    expect(await files()).toEqual([]);
  });
});

describe('recording configuration', () => {
  it('refuses "record" on a conference channel and a retention without "record", naming the field', () => {
    const conf = StationManifest.safeParse({
      channels: [{ id: 'c', name: 'C', mode: 'conference', maxParticipants: 5, record: true }],
    });
    expect(conf.success).toBe(false);
    expect(conf.error?.issues[0]).toMatchObject({ path: ['channels', 0, 'record'] });
    const noRecord = StationManifest.safeParse({
      channels: [{ id: 'p', name: 'P', mode: 'ptt', maxParticipants: 5, recordRetentionHours: 2 }],
    });
    expect(noRecord.error?.issues[0]).toMatchObject({ path: ['channels', 0, 'recordRetentionHours'] });
    const zero = StationManifest.safeParse({
      channels: [
        { id: 'p', name: 'P', mode: 'ptt', maxParticipants: 5, record: true, recordRetentionHours: 0 },
      ],
    });
    expect(zero.success).toBe(false);
  });

  it('reads the recording variables, with defaults, and names a bad one', () => {
    const d = loadConfig({}).recording;
    expect(d).toEqual({
      dir: '.parley/recordings',
      retentionHours: 168,
      maxBytes: 1024 ** 3,
      sweepIntervalMs: 60_000,
    });
    const c = loadConfig({
      RECORDINGS_DIR: '/var/parley',
      RECORDING_RETENTION_HOURS: '0.5',
      RECORDINGS_MAX_BYTES: '1000',
      RECORDING_SWEEP_INTERVAL_MS: '1000',
    }).recording;
    expect(c).toEqual({ dir: '/var/parley', retentionHours: 0.5, maxBytes: 1000, sweepIntervalMs: 1000 });
    expect(() => loadConfig({ RECORDINGS_MAX_BYTES: '-1' })).toThrow(/RECORDINGS_MAX_BYTES/);
    expect(() => loadConfig({ RECORDING_RETENTION_HOURS: '0' })).toThrow(/RECORDING_RETENTION_HOURS/);
  });
});
