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
 * Node has already ended the request without a body (what followed the headers is in `head`): a
 * body sent along with an upgrade is not read, which no GET or HEAD route minds.
 */
export function serveUpgradeAsHttp(server: Server, req: IncomingMessage, socket: Duplex): void {
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
  server.emit('request', req, res);
}
