import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/**
 * Frames written while the server handles an inbound chunk that holds more frames go out together.
 *
 * One read from a busy client's socket often holds several frames (a client trickling ICE
 * candidates, a relay under load), and each of them is usually relayed to the same few sockets.
 * Written one by one, every frame costs a `write` system call and a pass through the loopback or
 * network stack on its own: the largest stage of a relayed message at saturation (27 % of the CPU
 * in docs/benchmarks.md, issue 14, seventh pass). So while a frame is handled and its chunk holds
 * more (`framesFollow`), each socket the server writes to is corked once (`holdDuringBurst`), and
 * all held sockets are uncorked together
 * when this turn of the event loop is over (`process.nextTick`): the frames a chunk caused reach
 * each socket in one `writev`, in the order they were written, within the same turn. A frame that
 * arrives alone (light load) is written at once, as before: nothing waits and nothing is scheduled.
 *
 * Backpressure is unchanged: held bytes count in the socket's buffered amount, and one chunk
 * (at most a socket read, 64 KiB) is all a turn can hold.
 */

/** True while a frame followed by more in its chunk is handled. */
let bursting = false;
/** Sockets corked during this turn, uncorked together at its end. */
const held: Duplex[] = [];

/** The parts of ws's WebSocket this relies on (ws 8: `_receiver._bufferedBytes`, `_socket`). */
interface WsInternals {
  _receiver?: { _bufferedBytes?: number } | null;
  _socket?: Duplex | null;
}

/**
 * Whether the chunk the frame being handled came in holds more bytes after it: ws emits a chunk's
 * frames one after the other, synchronously, with the bytes not yet consumed in
 * `_receiver._bufferedBytes`. False when ws does not expose it (then nothing is held).
 */
export function framesFollow(ws: WebSocket): boolean {
  const buffered = (ws as unknown as WsInternals)._receiver?._bufferedBytes;
  return buffered !== undefined && buffered > 0;
}

/** Writes from now until {@link endBurst} are held until the end of this turn. */
export function beginBurst(): void {
  bursting = true;
}

export function endBurst(): void {
  bursting = false;
}

/**
 * Called before a write to `ws`: during a burst, its socket is corked (once per turn) so that this
 * write and the turn's later ones to it go out together. A socket corked by someone else is left
 * alone (the gateway's cork around the handshake, ws's own cork inside a send).
 */
export function holdDuringBurst(ws: WebSocket): void {
  if (!bursting) return;
  const socket = (ws as unknown as WsInternals)._socket;
  if (!socket || socket.writableCorked !== 0 || socket.destroyed) return;
  socket.cork();
  if (held.push(socket) === 1) process.nextTick(release);
}

/** Sockets held now (tests). */
export function heldForTesting(): number {
  return held.length;
}

function release(): void {
  // Uncorking a socket destroyed meanwhile is harmless: its pending writes were dropped with it.
  for (let i = 0; i < held.length; i++) held[i].uncork();
  held.length = 0;
}
