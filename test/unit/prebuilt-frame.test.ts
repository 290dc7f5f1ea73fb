import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { frameText, wireBytes } from '../../src/server/signaling/prebuilt-frame.js';

/** ws's Sender, which its ESM entry exports and its type definitions leave out. */
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/** ws's own framing of a server text frame, to compare with. */
function wsFramed(payload: Buffer): Buffer {
  const parts = Sender.frame(payload, {
    fin: true,
    opcode: 1,
    mask: false,
    readOnly: false,
    rsv1: false,
  });
  return Buffer.concat(parts);
}

describe('a text frame built once for every socket', () => {
  it('is byte for byte what ws frames, at every length encoding (7-bit, 16-bit, 64-bit)', () => {
    for (const n of [0, 1, 125, 126, 127, 3_000, 65_535, 65_536, 70_000]) {
      const payload = Buffer.alloc(n, 0x61);
      expect(frameText(payload).equals(wsFramed(payload)), `length ${n}`).toBe(true);
    }
  });

  it('is built once per frame and shared by every send of it', () => {
    const f = { type: 'ptt:speaker-changed' as const, data: Buffer.from('{"type":"ptt:speaker-changed"}') };
    const first = wireBytes(f);
    expect(wireBytes(f)).toBe(first);
    expect(wireBytes({ ...f })).not.toBe(first);
    expect(first.subarray(2).toString()).toBe(f.data.toString());
  });
});
