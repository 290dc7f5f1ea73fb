import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Serves a request that asked for a protocol upgrade as the plain HTTP request it also is
 * (RFC 9110 §7.8: a server may ignore `Upgrade`). Node hands every request with an `Upgrade`
 * header to the server's 'upgrade' listeners once one exists, so without this `GET /health` over
 * h2c (`Upgrade: h2c`, as curl --http2 and some health checkers send it) got a 404 from the
 * WebSocket gateway. The request goes to the server's own 'request' listeners, so it meets the
 * same socket guard, routes and headers as any other, and the socket is closed after the answer.
 */
export function serveUpgradeAsHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // The 'upgrade' event hands over the net.Socket itself (typed as a Duplex).
  const sock = socket as Socket;
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(sock);
  const done = () => {
    res.detachSocket(sock);
    sock.destroySoon();
  };
  res.once('finish', done);
  res.once('close', () => {
    if (!socket.destroyed) socket.destroy();
  });
  feedBody(req, socket, head);
  server.emit('request', req, res);
}

/**
 * Node parses no body for an upgrade request: what followed the headers is `head` and the rest of
 * the socket. A Content-Length body is passed on as the request's body; a chunked one is not
 * decoded here (no Parley route takes one), so the request ends where its headers did.
 */
function feedBody(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  let left = req.headers['transfer-encoding'] || !Number.isSafeInteger(declared) ? 0 : Math.max(0, declared);
  if (left === 0) {
    req.push(null);
    return;
  }
  const take = (chunk: Buffer) => {
    const part = chunk.subarray(0, left);
    left -= part.length;
    if (part.length > 0) req.push(part);
    if (left === 0) {
      socket.off('data', take);
      req.push(null);
    }
  };
  take(head);
  if (left > 0) socket.on('data', take);
}
