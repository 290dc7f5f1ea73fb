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

/** Serialises one outbound message. Encode once and reuse the string/buffer for broadcasts. */
export function encode<T extends ServerMessageType>(
  type: T,
  payload: ServerPayload<T>,
  correlationId?: string,
): string {
  return JSON.stringify(
    correlationId === undefined
      ? { type, payload, timestamp: Date.now() }
      : { type, payload, timestamp: Date.now(), correlationId },
  );
}

export function frame<T extends ServerMessageType>(type: T, payload: ServerPayload<T>): Frame {
  return { type, data: Buffer.from(encode(type, payload)) };
}
