import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readPages,
  oggCrc,
  encodePage,
  OGG_FLAG_BOS,
  OGG_FLAG_EOS,
} from '../../src/server/recording/ogg-page.js';
import { OggOpusWriter, OPUS_PRE_SKIP } from '../../src/server/recording/ogg-opus-writer.js';
import { repairOggOpus } from '../../src/server/recording/ogg-repair.js';
import { parseRtp } from '../../src/server/recording/rtp-packet.js';
import { packetSamples, gapPacket } from '../../src/server/recording/opus-packets.js';
import { decodePcm, encodeTone, probe, rms, toneFrequency } from '../helpers/ogg-audio.js';

/*
 * The Ogg Opus writer against the reference tools: real Opus packets (libopus through ffmpeg) go
 * in with RTP timestamps, and ffprobe/ffmpeg must read back codec, duration and the tone.
 */

const OPTS = { packetsPerPage: 25, maxGapSamples: 48_000 * 10 };
let dir: string;
/** 20 ms Opus packets of a 440 Hz tone, encoded by libopus. */
let tonePackets: Buffer[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-ogg-'));
  const src = join(dir, 'tone.opus');
  await encodeTone(src, 3);
  const pages = readPages(await readFile(src));
  tonePackets = pages.slice(2).flatMap((p) => p.packets);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function write(name: string, feed: (w: OggOpusWriter) => void): string {
  const path = join(dir, name);
  const w = new OggOpusWriter(path, OPTS);
  feed(w);
  w.close();
  w.close(); // idempotent
  return path;
}

describe('Ogg pages', () => {
  it('computes the Ogg CRC-32 (polynomial 0x04c11db7, unreflected)', () => {
    // The CRC of a page as libogg writes it: a known page from ffmpeg must verify.
    expect(oggCrc(Buffer.from('123456789', 'latin1'))).toBe(0x89a1897f);
  });

  it('reads back the pages it encodes, with laced packets of 0, 255 and 600 bytes', () => {
    const packets = [Buffer.alloc(0), Buffer.alloc(255, 1), Buffer.alloc(600, 2)];
    const page = encodePage({ flags: OGG_FLAG_BOS, granule: 1234n, serial: 7, sequence: 3, packets });
    // 27 header bytes + lacing 1 + 2 + 3 segments + the bodies.
    expect(page.length).toBe(27 + 6 + 855);
    const [read] = readPages(Buffer.concat([page, Buffer.from('OggS')]));
    expect(read).toMatchObject({ flags: OGG_FLAG_BOS, granule: 1234n, serial: 7, sequence: 3, offset: 0 });
    expect(read.packets.map((p) => p.length)).toEqual([0, 255, 600]);
  });

  it('stops at a page whose CRC does not match', () => {
    const a = encodePage({ flags: 0, granule: 0n, serial: 1, sequence: 0, packets: [Buffer.from('a')] });
    const b = encodePage({ flags: 0, granule: 0n, serial: 1, sequence: 1, packets: [Buffer.from('b')] });
    b[b.length - 1] ^= 0xff;
    expect(readPages(Buffer.concat([a, b]))).toHaveLength(1);
  });

  it('refuses a page of more than 255 segments', () => {
    const packets = Array.from({ length: 256 }, () => Buffer.alloc(1));
    expect(() => encodePage({ flags: 0, granule: 0n, serial: 1, sequence: 0, packets })).toThrow(/255/);
  });
});

describe('RTP and Opus packets', () => {
  it('parses RTP with CSRCs, a header extension and padding down to the payload', () => {
    const payload = Buffer.from([0xf8, 1, 2, 3]);
    const header = Buffer.alloc(12);
    header[0] = 0x80 | 0x20 | 0x10 | 2; // V=2, P, X, CC=2
    header[1] = 111;
    header.writeUInt16BE(65_000, 2);
    header.writeUInt32BE(4_000_000_000, 4);
    header.writeUInt32BE(0xdeadbeef, 8);
    const csrcs = Buffer.alloc(8, 9);
    const ext = Buffer.from([0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-byte extension, 1 word
    const padding = Buffer.from([0, 0, 3]);
    const parsed = parseRtp(Buffer.concat([header, csrcs, ext, payload, padding]));
    expect(parsed).toMatchObject({
      payloadType: 111,
      sequenceNumber: 65_000,
      timestamp: 4_000_000_000,
      ssrc: 0xdeadbeef,
    });
    expect(parsed?.payload).toEqual(payload);
  });

  it('rejects what is not RTP version 2 or is cut short', () => {
    expect(parseRtp(Buffer.alloc(11))).toBeNull();
    expect(parseRtp(Buffer.from([0x40, ...Buffer.alloc(11)]))).toBeNull(); // version 1
    const ext = Buffer.alloc(14);
    ext[0] = 0x90; // X set, extension header missing
    expect(parseRtp(ext)).toBeNull();
    const pad = Buffer.alloc(13);
    pad[0] = 0xa0;
    pad[12] = 50; // more padding than the packet
    expect(parseRtp(pad)).toBeNull();
  });

  it('counts samples from the TOC byte (1, 2 or N frames) and refuses invalid packets', () => {
    expect(packetSamples(Buffer.from([0xf8]))).toBe(960); // CELT FB 20 ms, one frame
    expect(packetSamples(Buffer.from([0xf9, 0, 0]))).toBe(1920); // two frames
    expect(packetSamples(Buffer.from([0x03, 3]))).toBe(3 * 480); // SILK NB 10 ms, code 3, three frames
    expect(packetSamples(Buffer.from([0x1b, 3]))).toBeNull(); // 3 × 60 ms > 120 ms
    expect(packetSamples(Buffer.alloc(0))).toBeNull();
    expect(packetSamples(Buffer.from([0x03]))).toBeNull(); // code 3 without its count
    expect(gapPacket(0xfb)).toEqual(Buffer.from([0xf8]));
  });
});

describe('OggOpusWriter', () => {
  it('writes a stream ffprobe reads as opus, with the duration of the RTP timeline', async () => {
    const path = write('tone.ogg', (w) => {
      tonePackets.forEach((p, i) => expect(w.push((4_294_000_000 + i * 960) >>> 0, p)).toBe(true));
    });
    const info = await probe(path);
    expect(info.codec).toBe('opus');
    expect(info.durationMs).toBeGreaterThanOrEqual(tonePackets.length * 20 - 20);
    expect(info.durationMs).toBeLessThanOrEqual(tonePackets.length * 20 + 20);
    const pages = readPages(await readFile(path));
    expect(pages[0].flags).toBe(OGG_FLAG_BOS);
    expect(pages[0].packets[0].toString('latin1', 0, 8)).toBe('OpusHead');
    expect(pages[0].packets[0].readUInt16LE(10)).toBe(OPUS_PRE_SKIP);
    expect(pages[1].packets[0].toString('latin1', 0, 8)).toBe('OpusTags');
    expect(pages.at(-1)?.flags).toBe(OGG_FLAG_EOS);
    expect(pages.map((p) => p.sequence)).toEqual(pages.map((_, i) => i));
    // Granules grow by the samples on each page, starting from the pre-skip.
    expect(pages.at(-1)?.granule).toBe(BigInt(OPUS_PRE_SKIP + tonePackets.length * 960));
    expect((await stat(path)).size).toBe(pages.reduce((n, p) => n + p.length, 0));
    const pcm = await decodePcm(path);
    expect(rms(pcm)).toBeGreaterThan(1_000);
    expect(toneFrequency(pcm)).toBeGreaterThan(420);
    expect(toneFrequency(pcm)).toBeLessThan(460);
  });

  it('fills a timestamp gap (DTX, loss) so the file keeps the burst’s timeline, and drops late packets', async () => {
    const half = Math.floor(tonePackets.length / 2);
    let dropped = 0;
    const path = write('gap.ogg', (w) => {
      for (let i = 0; i < tonePackets.length; i++) {
        // One second missing in the middle (50 packets' worth of timestamps).
        const ts = i * 960 + (i >= half ? 48_000 : 0);
        w.push(ts, tonePackets[i]);
      }
      if (!w.push(0, tonePackets[0])) dropped++; // a duplicate of the first packet, late
    });
    expect(dropped).toBe(1);
    const info = await probe(path);
    expect(Math.abs(info.durationMs - (tonePackets.length * 20 + 1_000))).toBeLessThanOrEqual(20);
    const pcm = await decodePcm(path);
    expect(pcm.length / 48).toBeGreaterThan(tonePackets.length * 20 + 900);
  });

  it('a stream of only concealed frames decodes to silence (the reference for “not silent”)', async () => {
    const path = write('silent.ogg', (w) => {
      w.push(0, tonePackets[0]);
      w.push(48_000 * 2, gapPacket(tonePackets[0][0])); // two seconds of gap, then an empty frame
    });
    const info = await probe(path);
    expect(Math.abs(info.durationMs - 2_020)).toBeLessThanOrEqual(20);
    const pcm = await decodePcm(path);
    expect(rms(pcm.subarray(48_000))).toBeLessThan(50);
  });

  it('refuses a packet that is not Opus and writes nothing for a burst without audio', async () => {
    const path = write('empty.ogg', (w) => {
      expect(w.push(0, Buffer.alloc(0))).toBe(false);
      expect(w.started).toBe(false);
    });
    expect((await stat(path)).size).toBe(0);
  });
});

describe('repairOggOpus (a writer that died mid-burst)', () => {
  it('cuts a torn last page, flags end-of-stream, and leaves a file ffmpeg decodes without error', async () => {
    const path = join(dir, 'torn.ogg');
    const w = new OggOpusWriter(path, OPTS);
    for (let i = 0; i < 60; i++) w.push(i * 960, tonePackets[i]);
    // Not closed: 50 packets are on disk in two pages, 10 are lost with the process. Add half a
    // page of garbage, as a write cut short would.
    const onDisk = await readFile(path);
    await writeFile(path, Buffer.concat([onDisk, onDisk.subarray(onDisk.length - 100)]));
    const repaired = await repairOggOpus(path);
    expect(repaired).toEqual({ bytes: onDisk.length, durationMs: 1_000 });
    const pages = readPages(await readFile(path));
    expect(pages.at(-1)?.flags).toBe(OGG_FLAG_EOS);
    expect((await stat(path)).size).toBe(onDisk.length);
    expect(Math.abs((await probe(path)).durationMs - 1_000)).toBeLessThanOrEqual(20);
    expect(rms(await decodePcm(path))).toBeGreaterThan(1_000);
  });

  it('gives up on a file without a single audio page', async () => {
    const path = join(dir, 'headers-only.ogg');
    const w = new OggOpusWriter(path, OPTS);
    w.push(0, tonePackets[0]); // headers written, the packet still pending
    expect(await repairOggOpus(path)).toBeNull();
  });
});
