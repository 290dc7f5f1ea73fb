import type { TestServer } from './server.js';

export interface TappedWrite {
  /** The user the server-side socket belongs to. */
  userId: string;
  type: string;
  correlationId?: string;
}

/**
 * Records every frame the server writes to the sockets open now, in the one order the server
 * wrote them across all sockets (the writes are synchronous `ws.send` calls on one event loop).
 * What a test over separate client sockets cannot see: which of two sockets was written first.
 */
export function tapWrites(srv: TestServer): TappedWrite[] {
  const log: TappedWrite[] = [];
  for (const conn of srv.server.internalsForTesting.gateway.connections()) {
    const userId = conn.identity?.userId ?? '?';
    const ws = conn.ws;
    const send = ws.send.bind(ws) as (data: Buffer, opts: object) => void;
    ws.send = ((data: Buffer, opts: object) => {
      const msg = JSON.parse(data.toString('utf8')) as { type: string; correlationId?: string };
      log.push({
        userId,
        type: msg.type,
        ...(msg.correlationId ? { correlationId: msg.correlationId } : {}),
      });
      send(data, opts);
    }) as typeof ws.send;
  }
  return log;
}

/** Position of the first write matching, or -1. */
export function indexOfWrite(log: readonly TappedWrite[], match: Partial<TappedWrite>): number {
  return log.findIndex((w) => Object.entries(match).every(([k, v]) => w[k as keyof TappedWrite] === v));
}
