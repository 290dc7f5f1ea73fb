import type { TestServer } from './server.js';

export interface TappedWrite {
  /** The user the server-side socket belongs to. */
  userId: string;
  type: string;
  correlationId?: string;
}

/**
 * Records every frame the server writes to the sockets open now, in the one order the server
 * wrote them across all sockets (each connection's `sendFrame` writes synchronously, on one event
 * loop, either a pre-built frame to the socket or through `ws.send`).
 * What a test over separate client sockets cannot see: which of two sockets was written first.
 */
export function tapWrites(srv: TestServer): TappedWrite[] {
  const log: TappedWrite[] = [];
  for (const conn of srv.server.internalsForTesting.gateway.connections()) {
    const userId = conn.identity?.userId ?? '?';
    const sendFrame = conn.sendFrame.bind(conn);
    conn.sendFrame = (f) => {
      if (!conn.closed) {
        const msg = JSON.parse(f.data.toString('utf8')) as { type: string; correlationId?: string };
        log.push({
          userId,
          type: msg.type,
          ...(msg.correlationId ? { correlationId: msg.correlationId } : {}),
        });
      }
      sendFrame(f);
    };
  }
  return log;
}

/** Position of the first write matching, or -1. */
export function indexOfWrite(log: readonly TappedWrite[], match: Partial<TappedWrite>): number {
  return log.findIndex((w) => Object.entries(match).every(([k, v]) => w[k as keyof TappedWrite] === v));
}
