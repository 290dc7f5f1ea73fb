import { closeSync, openSync, writeSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { frameSamples, gapPacket, packetSamples } from './opus-packets.js';
import { encodePage, MAX_SEGMENTS, OGG_FLAG_BOS, OGG_FLAG_EOS, setPageFlags, lacing } from './ogg-page.js';

/** RFC 7845 §4.2: 3.25 ms of encoder delay, what libopus (and so every browser) uses at 48 kHz. */
export const OPUS_PRE_SKIP = 312;
const VENDOR = 'parley';

export interface OggOpusWriterOptions {
  /** Whole Ogg pages are written every this many packets, so a crash loses at most one page. */
  packetsPerPage: number;
  /** A gap longer than this (samples at 48 kHz) is not filled: the stream resumes after it. */
  maxGapSamples: number;
}

/**
 * Writes one Ogg Opus stream (RFC 7845) to a file from RTP Opus payloads, without transcoding:
 * `OpusHead` and `OpusTags` pages, then audio pages whose granule positions count 48 kHz samples
 * (pre-skip included), taken from the RTP timestamps. Gaps in the timestamps (DTX, lost packets)
 * are filled with TOC-only packets, which the decoder conceals, so the file's timeline matches the
 * burst's. Late or duplicate packets are dropped. Each page is written whole as soon as it is full,
 * so the file is valid (minus the end-of-stream flag) at every page boundary.
 */
export class OggOpusWriter {
  readonly #fd: number;
  readonly #serial = randomInt(1, 0xffffffff);
  readonly #opts: OggOpusWriterOptions;
  #sequence = 0;
  #bytes = 0;
  /** Packets waiting for the next page, and their segments. */
  #pending: Buffer[] = [];
  #pendingSegments = 0;
  /** Samples (48 kHz) written so far, gap fill included. */
  #samples = 0;
  #firstTs: number | null = null;
  #lastToc = 0;
  /** The last page written and where, so that close() can flag it end-of-stream. */
  #lastPage: { page: Buffer; offset: number } | null = null;
  #closed = false;

  constructor(path: string, opts: OggOpusWriterOptions) {
    this.#fd = openSync(path, 'wx');
    this.#opts = opts;
  }

  /** Bytes written to the file so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Duration of the audio written or pending, in 48 kHz samples. */
  get samples(): number {
    return this.#samples;
  }

  get started(): boolean {
    return this.#firstTs !== null;
  }

  /**
   * Adds one RTP payload with its RTP timestamp. Returns false when the packet was dropped (not
   * Opus, late, duplicate).
   */
  push(rtpTimestamp: number, payload: Buffer): boolean {
    if (this.#closed) return false;
    const n = packetSamples(payload);
    if (n === null) return false;
    if (this.#firstTs === null) {
      this.#firstTs = rtpTimestamp;
      this.#writeHeaders((payload[0] & 0x04) !== 0 ? 2 : 1);
    } else {
      // Where this packet sits relative to what is written (32-bit RTP timestamp arithmetic).
      const expected = (this.#firstTs + this.#samples) >>> 0;
      const ahead = (rtpTimestamp - expected) | 0;
      if (ahead < 0) return false; // late or duplicate
      if (ahead > 0 && ahead <= this.#opts.maxGapSamples) this.#fillGap(ahead);
      else if (ahead > this.#opts.maxGapSamples) {
        // A jump we do not fill (a clock reset): re-anchor so the timeline continues from here.
        this.#firstTs = (rtpTimestamp - this.#samples) >>> 0;
      }
    }
    this.#lastToc = payload[0];
    this.#add(Buffer.from(payload), n);
    return true;
  }

  /** Writes what is pending and flags the last page end-of-stream. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#pending.length > 0) this.#flush(OGG_FLAG_EOS);
      else if (this.#lastPage) {
        const { page, offset } = this.#lastPage;
        setPageFlags(page, page[5] | OGG_FLAG_EOS);
        writeSync(this.#fd, page, 0, page.length, offset);
      }
    } finally {
      closeSync(this.#fd);
    }
  }

  #fillGap(samples: number): void {
    const per = frameSamples(this.#lastToc);
    // Whole frames only: rounding up would put the next packet in the past, and drop it.
    const frames = Math.floor(samples / per);
    const filler = gapPacket(this.#lastToc);
    for (let i = 0; i < frames; i++) this.#add(filler, per);
  }

  #add(packet: Buffer, samples: number): void {
    const segments = lacing(packet.length).length;
    if (this.#pendingSegments + segments > MAX_SEGMENTS) this.#flush(0);
    this.#pending.push(packet);
    this.#pendingSegments += segments;
    this.#samples += samples;
    if (this.#pending.length >= this.#opts.packetsPerPage) this.#flush(0);
  }

  #flush(flags: number): void {
    if (this.#pending.length === 0) return;
    this.#writePage(flags, BigInt(OPUS_PRE_SKIP + this.#samples), this.#pending);
    this.#pending = [];
    this.#pendingSegments = 0;
  }

  #writeHeaders(channels: number): void {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = channels;
    head.writeUInt16LE(OPUS_PRE_SKIP, 10);
    head.writeUInt32LE(48_000, 12); // the input rate; informational
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // mapping family 0: mono or stereo
    this.#writePage(OGG_FLAG_BOS, 0n, [head]);
    const vendor = Buffer.from(VENDOR, 'utf8');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length); // no user comments
    this.#writePage(0, 0n, [tags]);
  }

  #writePage(flags: number, granule: bigint, packets: readonly Buffer[]): void {
    const page = encodePage({ flags, granule, serial: this.#serial, sequence: this.#sequence++, packets });
    const offset = this.#bytes;
    writeSync(this.#fd, page, 0, page.length, offset);
    this.#bytes += page.length;
    this.#lastPage = { page, offset };
  }
}
