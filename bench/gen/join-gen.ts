/**
 * Join generator (scenario 3), in its own process: one client after another connects
 * (auth on the upgrade, `welcome`), joins a PTT room, asks for `media:capabilities` and creates its
 * send and receive transports, the way mediasoup-client does before any DTLS. Clients stay in the
 * room, so later joins pay for a growing room.
 */
import type { WebSocket } from 'ws';
import { openClient } from '../lib/clients.js';
import { serve } from '../lib/ipc.js';
import { Rpc } from '../lib/rpc.js';
import { tokensFor } from '../lib/tokens.js';

let sockets: WebSocket[] = [];

serve({
  async joinSeq(a: { url: string; roomId: string; count: number; prefix: string }) {
    const ids = Array.from({ length: a.count }, (_, i) => `${a.prefix}${i}`);
    const tokens = await tokensFor(ids);
    const rows: Record<string, number>[] = [];
    for (let i = 0; i < a.count; i++) {
      const t0 = performance.now();
      const ws = await openClient({ protocol: 'parley', url: a.url, id: ids[i], token: tokens[i] });
      const t1 = performance.now();
      const rpc = new Rpc(ws);
      await rpc.call('room:join', { roomId: a.roomId }, 'room:state');
      const t2 = performance.now();
      await rpc.call('media:capabilities', { roomId: a.roomId }, 'media:capabilities');
      const t3 = performance.now();
      await rpc.call('transport:create', { roomId: a.roomId, direction: 'send' }, 'transport:created');
      const t4 = performance.now();
      await rpc.call('transport:create', { roomId: a.roomId, direction: 'recv' }, 'transport:created');
      const t5 = performance.now();
      sockets.push(ws);
      rows.push({
        connectMs: t1 - t0,
        joinMs: t2 - t1,
        capabilitiesMs: t3 - t2,
        sendTransportMs: t4 - t3,
        recvTransportMs: t5 - t4,
        joinToReadyMs: t5 - t1,
        totalMs: t5 - t0,
      });
    }
    return rows;
  },

  close() {
    for (const s of sockets) s.terminate();
    sockets = [];
    return null;
  },
});
