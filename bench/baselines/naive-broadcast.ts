/**
 * Baseline (c) for the PTT fan-out: the naive floor. A bare `ws` server that, when any client
 * sends `ptt:start` / `ptt:stop`, builds one ~200 B speaker-changed message and calls `ws.send`
 * with it on every connected socket (the library frames the string again for each socket).
 * No rooms, no lock, no auth. A `join` message gets one small reply and nothing else (the
 * members' one request/reply at setup in the ptt scenario's `naiveJoined` variant).
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const clients = new Set<WebSocket>();
const http = createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server: http, path: '/ws' });

wss.on('connection', (ws, req) => {
  const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? 'anon';
  clients.add(ws);
  ws.on('message', (data: Buffer) => {
    let msg: { type?: string; payload?: { roomId?: string } };
    try {
      msg = JSON.parse(data.toString()) as typeof msg;
    } catch {
      return;
    }
    // A member's one request at setup (BENCH_PTT_NAIVE_JOINED): one small reply, like a join.
    if (msg.type === 'join') {
      ws.send(JSON.stringify({ type: 'joined', payload: { roomId: msg.payload?.roomId ?? 'fanout' } }));
      return;
    }
    if (msg.type !== 'ptt:start' && msg.type !== 'ptt:stop') return;
    const now = Date.now();
    const speaker =
      msg.type === 'ptt:start'
        ? { userId: id, name: `Member ${id}`, sessionId: '2b1f7c1e-6a4f-4a51-9d0a-1f2e3d4c5b6a', since: now }
        : null;
    const out = JSON.stringify({
      type: 'ptt:speaker-changed',
      payload: { roomId: msg.payload?.roomId ?? 'fanout', speaker, at: now },
      timestamp: now,
    });
    for (const c of clients) c.send(out);
  });
  ws.on('close', () => clients.delete(ws));
  ws.on('error', () => undefined);
});

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port, server: 'naive-broadcast' })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
