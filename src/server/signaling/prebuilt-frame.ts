import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { Frame } from '../wire/frame.js';

/**
 * A server message framed once for the wire (RFC 6455 text frame: header and payload in one
 * buffer) and written as the same bytes to every socket it goes to. `ws.send` frames each send
 * again: a header per socket, and a cork / two writes / uncork. A PTT floor change goes to every
 * member of a channel (1,000 in the benchmark), so the floor's broadcast is framed once here
 * (docs/benchmarks.md, scenario 4).
 *
 * ws has no public call for writing a pre-built frame, so this writes to the WebSocket's socket
 * itself, and only when ws would have written at once: the connection is open and ws's sender is
 * idle with nothing queued (no compression is negotiated on Parley's server, so it always is).
 * Otherwise, `writePrebuilt` returns false and the caller uses `ws.send`.
 */

/**
 * The last frame framed, and its bytes. A frame goes to its recipients one after the other (a
 * broadcast loops over the members, a relay writes once), so one entry serves every send of it;
 * a frame sent again after another one is framed again. This replaced a property stamped on each
 * frame (a symbol, defined per frame): a shape transition per relayed message, ~2 % of the relay
 * server's CPU in the issue 14 fourth-pass perf profile; a WeakMap before that cost ~2–3 µs per
 * frame (an ephemeron for the GC to trace, 8.8 %).
 */
let lastFrame: Frame | null = null;
let lastData: Buffer | null = null;
let lastBytes: Buffer | null = null;

/** The frame's bytes on the wire, shared by consecutive sends of the same frame. */
export function wireBytes(f: Frame): Buffer {
  if (f === lastFrame && f.data === lastData && lastBytes !== null) return lastBytes;
  const bytes = frameText(f.data);
  lastFrame = f;
  lastData = f.data;
  lastBytes = bytes;
  return bytes;
}

/** An unmasked, final, uncompressed text frame (server to client) holding `payload`. */
export function frameText(payload: Buffer): Buffer {
  const n = payload.length;
  const headerLength = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerLength + n);
  out[0] = 0x81; // FIN + opcode 1 (text)
  if (n < 126) out[1] = n;
  else if (n < 65_536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(out, headerLength);
  return out;
}

/** The parts of ws's WebSocket this relies on (ws 8: `_socket`, `_sender._state` / `_queue`). */
interface WsInternals {
  _socket?: Duplex | null;
  _sender?: { _state?: number; _queue?: unknown[] } | null;
}

/** ws's Sender state when it writes at once (not deflating, not reading a blob). */
const SENDER_IDLE = 0;

/** Writes `bytes` (from {@link wireBytes}) to the WebSocket's socket; false: use `ws.send` instead. */
export function writePrebuilt(ws: WebSocket, bytes: Buffer): boolean {
  if (ws.readyState !== WebSocket.OPEN) return false;
  const { _socket: socket, _sender: sender } = ws as unknown as WsInternals;
  if (!socket || !sender || sender._state !== SENDER_IDLE || sender._queue?.length !== 0) return false;
  if (socket.destroyed || !socket.writable) return false;
  socket.write(bytes);
  return true;
}
