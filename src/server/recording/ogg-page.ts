/**
 * Ogg pages (RFC 3533): encoding, CRC, and reading them back. No packet is ever split across pages
 * here (Opus packets are at most a few hundred bytes), so a page holds whole packets only.
 */

export const OGG_FLAG_CONTINUED = 0x01;
export const OGG_FLAG_BOS = 0x02;
export const OGG_FLAG_EOS = 0x04;
/** Header bytes before the segment table. */
const HEADER_BYTES = 27;
/** A page's segment table has at most 255 entries. */
export const MAX_SEGMENTS = 255;

/** The Ogg CRC-32: polynomial 0x04c11db7, initial value 0, not reflected, no final xor. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let b = 0; b < 8; b++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

export function oggCrc(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]) >>> 0;
  return crc;
}

/** Lacing values of one packet: 255 for each full 255 bytes, then the remainder (0 if none). */
export function lacing(length: number): number[] {
  const out = new Array<number>(Math.floor(length / 255)).fill(255);
  out.push(length % 255);
  return out;
}

export interface OggPageInput {
  flags: number;
  /** Granule position after the last packet that ends on this page; -1n when none does. */
  granule: bigint;
  serial: number;
  sequence: number;
  packets: readonly Uint8Array[];
}

/** Encodes one page, CRC included. Throws if the packets need more than 255 segments. */
export function encodePage(p: OggPageInput): Buffer {
  const segments = p.packets.flatMap((pkt) => lacing(pkt.length));
  if (segments.length > MAX_SEGMENTS) throw new RangeError(`an Ogg page holds at most 255 segments`);
  const bodyBytes = p.packets.reduce((n, pkt) => n + pkt.length, 0);
  const page = Buffer.alloc(HEADER_BYTES + segments.length + bodyBytes);
  page.write('OggS', 0, 'latin1');
  page[4] = 0; // stream structure version
  page[5] = p.flags;
  page.writeBigInt64LE(p.granule, 6);
  page.writeUInt32LE(p.serial >>> 0, 14);
  page.writeUInt32LE(p.sequence >>> 0, 18);
  // CRC (offset 22) stays zero while it is computed.
  page[26] = segments.length;
  Buffer.from(segments).copy(page, HEADER_BYTES);
  let at = HEADER_BYTES + segments.length;
  for (const pkt of p.packets) {
    page.set(pkt, at);
    at += pkt.length;
  }
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

/** Sets a page's flags in place and recomputes its CRC. */
export function setPageFlags(page: Buffer, flags: number): void {
  page[5] = flags;
  page.writeUInt32LE(0, 22);
  page.writeUInt32LE(oggCrc(page), 22);
}

export interface OggPage {
  /** Byte offset of the page in the stream. */
  offset: number;
  length: number;
  flags: number;
  granule: bigint;
  serial: number;
  sequence: number;
  packets: Buffer[];
}

/**
 * Reads consecutive valid pages from the start of `data`, stopping at the first one that is
 * incomplete, malformed or fails its CRC (what a writer that died mid-page leaves behind).
 */
export function readPages(data: Buffer): OggPage[] {
  const pages: OggPage[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= data.length) {
    if (data.toString('latin1', offset, offset + 4) !== 'OggS' || data[offset + 4] !== 0) break;
    const count = data[offset + 26];
    const tableEnd = offset + HEADER_BYTES + count;
    if (tableEnd > data.length) break;
    const table = data.subarray(offset + HEADER_BYTES, tableEnd);
    const bodyBytes = table.reduce((n, v) => n + v, 0);
    const end = tableEnd + bodyBytes;
    if (end > data.length) break;
    const page = Buffer.from(data.subarray(offset, end));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    if (oggCrc(page) !== crc) break;
    const packets: Buffer[] = [];
    let at = tableEnd;
    let len = 0;
    for (const v of table) {
      len += v;
      if (v < 255) {
        packets.push(data.subarray(at, at + len));
        at += len;
        len = 0;
      }
    }
    pages.push({
      offset,
      length: end - offset,
      flags: data[offset + 5],
      granule: data.readBigInt64LE(offset + 6),
      serial: data.readUInt32LE(offset + 14),
      sequence: data.readUInt32LE(offset + 18),
      packets,
    });
    offset = end;
  }
  return pages;
}
