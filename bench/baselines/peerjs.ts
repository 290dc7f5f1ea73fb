/**
 * Baseline (b): the PeerJS signaling server (npm `peer`), unmodified, on 127.0.0.1. It relays
 * OFFER / ANSWER / CANDIDATE messages between clients named by `?id=` (with `key` and `token`).
 * The concurrency cap and liveness timeout are raised so they do not cut a benchmark short.
 */
import { PeerServer } from 'peer';
import type { Server } from 'node:http';

PeerServer(
  {
    port: Number(process.env.PORT ?? 0),
    host: process.env.HOST ?? '127.0.0.1',
    path: '/',
    key: 'peerjs',
    concurrent_limit: 1_000_000,
    alive_timeout: 600_000,
  },
  (server: Server) => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    process.stdout.write(`${JSON.stringify({ msg: 'listening', port, server: 'peerjs' })}\n`);
  },
);
process.on('SIGTERM', () => process.exit(0));
