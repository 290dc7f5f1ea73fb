import { readFile, truncate, open } from 'node:fs/promises';
import { OGG_FLAG_EOS, readPages, setPageFlags } from './ogg-page.js';
import { OPUS_PRE_SKIP } from './ogg-opus-writer.js';

export interface RepairedFile {
  /** Bytes kept: every whole, valid page. */
  bytes: number;
  /** Audio in the kept pages. */
  durationMs: number;
}

/**
 * Finalises an Ogg Opus file whose writer died (its node was killed mid-burst): keeps the whole,
 * CRC-valid pages, cuts off a torn last page, and flags the last page end-of-stream. Returns null
 * when not even the headers and one audio page survived (nothing worth keeping).
 */
export async function repairOggOpus(path: string): Promise<RepairedFile | null> {
  const data = await readFile(path);
  const pages = readPages(data);
  // OpusHead, OpusTags, then at least one page of audio.
  if (pages.length < 3) return null;
  const last = pages[pages.length - 1];
  const bytes = last.offset + last.length;
  if (bytes < data.length) await truncate(path, bytes);
  if ((last.flags & OGG_FLAG_EOS) === 0) {
    const page = Buffer.from(data.subarray(last.offset, bytes));
    setPageFlags(page, page[5] | OGG_FLAG_EOS);
    const fh = await open(path, 'r+');
    try {
      await fh.write(page, 0, page.length, last.offset);
    } finally {
      await fh.close();
    }
  }
  return { bytes, durationMs: granuleToMs(last.granule) };
}

/** Milliseconds of audio before a granule position (pre-skip removed). */
export function granuleToMs(granule: bigint): number {
  return Math.max(0, Math.round(Number(granule - BigInt(OPUS_PRE_SKIP)) / 48));
}
