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

  it('is built once for consecutive sends of a frame (a broadcast), and shared by them', () => {
    const f = { type: 'ptt:speaker-changed' as const, data: Buffer.from('{"type":"ptt:speaker-changed"}') };
    const first = wireBytes(f);
    expect(wireBytes(f)).toBe(first);
    expect(wireBytes({ ...f })).not.toBe(first);
    expect(first.subarray(2).toString()).toBe(f.data.toString());
  });

  it('frames each frame with its own bytes however sends of different frames interleave', () => {
    const a = { type: 'ptt:speaker-changed' as const, data: Buffer.from('{"type":"a"}') };
    const b = { type: 'ptt:speaker-changed' as const, data: Buffer.alloc(300, 0x62) };
    for (const f of [a, b, a, a, b, { ...a }, b, a]) {
      const bytes = wireBytes(f);
      expect(bytes.equals(wsFramed(f.data)), f.data.toString().slice(0, 12)).toBe(true);
    }
    // A copy of a frame with other data is framed for its own data, never the original's.
    const c = { ...a, data: Buffer.from('{"type":"c"}') };
    expect(wireBytes(a).equals(wsFramed(a.data))).toBe(true);
    expect(wireBytes(c).equals(wsFramed(c.data))).toBe(true);
  });
});
