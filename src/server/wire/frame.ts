import type { ServerMessageType, ServerPayload } from '../../protocol/index.js';

/**
 * An encoded server message ready to write to any number of sockets: encode once, send many.
 * Neutral ground: rooms, calls, PTT, media and the cluster bus build and carry frames without
 * knowing anything about the socket layer that finally writes them.
 */
export interface Frame {
  readonly type: ServerMessageType;
  readonly data: Buffer;
}

/**
 * How a request named itself, echoed on its reply the same way: `correlationId` (the protocol's
 * key) or `id`, its alias for clients of the systems Parley replaces (SPEC §9), with the value as
 * the client sent it (an `id` may be a string or an integer).
 */
export interface Correlation {
  readonly key: 'correlationId' | 'id';
  readonly value: string | number;
}

/**
 * Serialises one outbound message. Encode once and reuse the string/buffer for broadcasts.
 * A string correlation is a `correlationId`.
 */
export function encode<T extends ServerMessageType>(
  type: T,
  payload: ServerPayload<T>,
  correlation?: Correlation | string,
): string {
  if (correlation === undefined) return JSON.stringify({ type, payload, timestamp: Date.now() });
  if (typeof correlation === 'string')
    return JSON.stringify({ type, payload, timestamp: Date.now(), correlationId: correlation });
  return JSON.stringify({ type, payload, timestamp: Date.now(), [correlation.key]: correlation.value });
}

export function frame<T extends ServerMessageType>(type: T, payload: ServerPayload<T>): Frame {
  return { type, data: Buffer.from(encode(type, payload)) };
}

let lastMs = Number.NaN;
let lastMsText = '';

/**
 * `Date.now()` as JSON text, converted once per millisecond: every relayed frame carries its
 * `timestamp`, and a number past 2^31 is a heap number to convert on each message otherwise.
 */
export function timestampText(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastMsText = String(ms);
  }
  return lastMsText;
}
