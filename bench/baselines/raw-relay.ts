/**
 * Baseline (a): the floor for any Node signaling server. A bare `ws` server on 127.0.0.1 that
 * relays each message to the client named in it: parse the JSON, look the recipient up, stamp the
 * sender, serialise, send. No authentication, no validation, no rate limiting, no metrics, no logs.
 * Clients name themselves with `?id=` on the upgrade URL.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

interface Relayed {
  payload?: { recipientId?: string; senderId?: string };
}

const clients = new Map<string, WebSocket>();
const http = createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server: http, path: '/ws' });

wss.on('connection', (ws, req) => {
  const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? `anon-${clients.size}`;
  clients.set(id, ws);
  ws.on('message', (data: Buffer) => {
    let msg: Relayed;
    try {
      msg = JSON.parse(data.toString()) as Relayed;
    } catch {
      return;
    }
    const to = msg.payload?.recipientId ? clients.get(msg.payload.recipientId) : undefined;
    if (!to || !msg.payload) return;
    msg.payload.senderId = id;
    to.send(JSON.stringify(msg));
  });
  ws.on('close', () => {
    if (clients.get(id) === ws) clients.delete(id);
  });
  ws.on('error', () => undefined);
});

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port, server: 'raw-ws-relay' })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
