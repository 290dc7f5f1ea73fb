import { randomBytes } from 'node:crypto';
import { rawUpgrade } from '../../helpers/raw-ws.js';
import { DOCUMENTED_CLOSE_CODES } from './fuzz-run.js';

/*
 * WebSocket framing attacks a library client cannot produce, done on a raw TCP socket: bad
 * opcodes, reserved bits, unmasked frames, oversized or fragmented control frames, broken
 * fragmentation, invalid UTF-8, bogus close frames, absurd declared lengths. Each must end in a
 * close frame with the expected (documented) code, or, for the legal ones, in normal service.
 */

interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A client frame with every knob exposed (RFC 6455 §5.2). */
export function clientFrame(
  payload: Buffer,
  o: { opcode?: number; fin?: boolean; rsv?: number; mask?: boolean; declaredLength?: bigint } = {},
): Buffer {
  const opcode = o.opcode ?? 0x1;
  const fin = o.fin ?? true;
  const mask = o.mask ?? true;
  const len = o.declaredLength ?? BigInt(payload.length);
  let header: Buffer;
  if (len < 126n) {
    header = Buffer.alloc(2);
    header[1] = Number(len);
  } else if (len < 65_536n) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(Number(len), 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(len, 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  if (!mask) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ key[i % 4];
  return Buffer.concat([header, key, masked]);
}

/** Parses the server's (unmasked) frames out of a byte stream; returns the frames and the rest. */
export function parseServerFrames(buf: Buffer): { frames: RawFrame[]; rest: Buffer } {
  const frames: RawFrame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at];
    let len = buf[at + 1] & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = at + 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      off = at + 10;
    }
    if (buf.length < off + len) break;
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: buf.subarray(off, off + len) });
    at = off + len;
  }
  return { frames, rest: buf.subarray(at) };
}

const text = (s: string) => Buffer.from(s, 'utf8');
const ping = (cid: string) => text(JSON.stringify({ type: 'ping', correlationId: cid }));

interface Case {
  name: string;
  bytes: () => Buffer[];
  /** Expected close code, or 'served' when the connection must answer the `ping` with cid "ok". */
  expect: number | 'served';
}

export const PROTOCOL_CASES: readonly Case[] = [
  {
    name: 'continuation frame without a start',
    bytes: () => [clientFrame(ping('x'), { opcode: 0x0 })],
    expect: 1002,
  },
  { name: 'reserved data opcode 0x3', bytes: () => [clientFrame(ping('x'), { opcode: 0x3 })], expect: 1002 },
  {
    name: 'reserved control opcode 0xB',
    bytes: () => [clientFrame(Buffer.alloc(0), { opcode: 0xb })],
    expect: 1002,
  },
  { name: 'RSV1 set without an extension', bytes: () => [clientFrame(ping('x'), { rsv: 4 })], expect: 1002 },
  { name: 'RSV2+RSV3 set', bytes: () => [clientFrame(ping('x'), { rsv: 3 })], expect: 1002 },
  { name: 'unmasked client frame', bytes: () => [clientFrame(ping('x'), { mask: false })], expect: 1002 },
  {
    name: 'ping with a 126-byte payload',
    bytes: () => [clientFrame(Buffer.alloc(126, 1), { opcode: 0x9 })],
    expect: 1002,
  },
  {
    name: 'fragmented ping',
    bytes: () => [clientFrame(Buffer.from('a'), { opcode: 0x9, fin: false })],
    expect: 1002,
  },
  {
    name: 'new text frame inside a fragmented message',
    bytes: () => [clientFrame(text('{"type":'), { fin: false }), clientFrame(ping('x'))],
    expect: 1002,
  },
  {
    name: 'invalid UTF-8 in a text frame',
    bytes: () => [clientFrame(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))],
    expect: 1007,
  },
  {
    name: 'invalid UTF-8 split across fragments',
    bytes: () => [
      clientFrame(Buffer.from([0x22, 0xe2, 0x82]), { fin: false }),
      clientFrame(Buffer.from([0x28, 0x22]), { opcode: 0x0 }),
    ],
    expect: 1007,
  },
  {
    name: 'overlong UTF-8 encoding of "/"',
    bytes: () => [clientFrame(Buffer.from([0x22, 0xc0, 0xaf, 0x22]))],
    expect: 1007,
  },
  {
    name: 'UTF-16 surrogate encoded in UTF-8',
    bytes: () => [clientFrame(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))],
    expect: 1007,
  },
  {
    name: 'close frame with an invalid status code (999)',
    bytes: () => {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(999);
      return [clientFrame(p, { opcode: 0x8 })];
    },
    expect: 1002,
  },
  {
    name: 'close frame with a reserved status code (1005)',
    bytes: () => {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(1005);
      return [clientFrame(p, { opcode: 0x8 })];
    },
    expect: 1002,
  },
  {
    name: 'close frame with a 1-byte payload',
    bytes: () => [clientFrame(Buffer.from([3]), { opcode: 0x8 })],
    expect: 1002,
  },
  {
    name: 'declared length 2^53 (no payload follows)',
    bytes: () => [clientFrame(Buffer.alloc(0), { declaredLength: 2n ** 53n })],
    expect: 1009,
  },
  {
    name: 'declared length 2^63 (MSB set)',
    bytes: () => [clientFrame(Buffer.alloc(0), { declaredLength: 2n ** 63n })],
    expect: 1009,
  },
  {
    name: 'declared length 1 GiB (no payload follows)',
    bytes: () => [clientFrame(Buffer.alloc(0), { declaredLength: 2n ** 30n })],
    expect: 1009,
  },
  {
    name: 'fragments that add up past MAX_FRAME_BYTES',
    bytes: () => [
      clientFrame(Buffer.alloc(40_000, 0x20), { fin: false }),
      clientFrame(Buffer.alloc(40_000, 0x20), { opcode: 0x0, fin: false }),
    ],
    expect: 1009,
  },
  {
    name: 'legal: a message in 3 fragments with a ping in between',
    bytes: () => {
      const m = ping('ok');
      return [
        clientFrame(m.subarray(0, 5), { fin: false }),
        clientFrame(Buffer.from('hi'), { opcode: 0x9 }),
        clientFrame(m.subarray(5, 12), { opcode: 0x0, fin: false }),
        clientFrame(m.subarray(12), { opcode: 0x0 }),
      ];
    },
    expect: 'served',
  },
  {
    name: 'legal: 200 one-byte fragments',
    bytes: () => {
      const m = Buffer.concat([ping('ok').subarray(0, -1), Buffer.from(`,"pad":"${' '.repeat(170)}"}`)]);
      return [...m].map((b, i) =>
        clientFrame(Buffer.from([b]), { opcode: i === 0 ? 0x1 : 0x0, fin: i === m.length - 1 }),
      );
    },
    expect: 'served',
  },
  {
    name: 'legal: an unsolicited pong and an empty ping',
    bytes: () => [
      clientFrame(Buffer.from('x'), { opcode: 0xa }),
      clientFrame(Buffer.alloc(0), { opcode: 0x9 }),
      clientFrame(ping('ok')),
    ],
    expect: 'served',
  },
];

export interface ProtocolCaseResult {
  name: string;
  expected: number | 'served';
  got: number | 'served' | 'nothing';
  ms: number;
}

/** Runs every framing case on its own raw connection. */
export async function runProtocolViolations(
  port: number,
  tokenFor: (sub: string) => Promise<string>,
): Promise<{ cases: ProtocolCaseResult[]; failures: ProtocolCaseResult[] }> {
  const cases: ProtocolCaseResult[] = [];
  let n = 0;
  for (const c of PROTOCOL_CASES) {
    const raw = await rawUpgrade(port, { Authorization: `Bearer ${await tokenFor(`raw${n++}`)}` });
    if (raw.status !== 101) throw new Error(`raw upgrade refused: ${raw.responseHead}`);
    let buf: Buffer = Buffer.alloc(0);
    let closeCode: number | null = null;
    let served = false;
    let ended = false;
    const t0 = performance.now();
    const settled = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3_000);
      const finish = () => {
        clearTimeout(timer);
        resolve();
      };
      raw.socket.on('data', (chunk: Buffer) => {
        const parsed = parseServerFrames(Buffer.concat([buf, chunk]));
        buf = parsed.rest;
        for (const f of parsed.frames) {
          if (f.opcode === 0x8) {
            closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
            finish();
          } else if (f.opcode === 0x1 && f.payload.toString().includes('"correlationId":"ok"')) {
            served = true;
            finish();
          }
        }
      });
      raw.socket.once('close', () => {
        ended = true;
        finish();
      });
    });
    raw.socket.resume();
    for (const b of c.bytes()) raw.socket.write(b);
    await settled;
    const got: ProtocolCaseResult['got'] = closeCode ?? (served ? 'served' : ended ? 'nothing' : 'nothing');
    cases.push({ name: c.name, expected: c.expect, got, ms: Math.round(performance.now() - t0) });
    raw.destroy();
  }
  const failures = cases.filter(
    (r) => r.got !== r.expected || (typeof r.got === 'number' && !DOCUMENTED_CLOSE_CODES.has(r.got)),
  );
  return { cases, failures };
}
