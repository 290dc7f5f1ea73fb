import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A WebSocket client done by hand on a plain TCP socket, for the cases a well-behaved library
 * client cannot play: a peer that stops reading (backpressure) or never answers a close frame.
 */
export interface RawWs {
  socket: Socket;
  /** The HTTP status line and headers of the upgrade response. */
  responseHead: string;
  status: number;
  /** Sends one masked text frame, as a client must. */
  sendText(text: string): void;
  /** Stops reading: the kernel buffers fill up and the server's writes start to queue. */
  stopReading(): void;
  /** Resolves when the TCP connection is closed (reading is resumed so the FIN can be seen). */
  closed(timeoutMs?: number): Promise<void>;
  destroy(): void;
}

/** Performs the opening handshake on a raw socket and resolves once the response head arrived. */
export function rawUpgrade(port: number, headers: Record<string, string> = {}, path = '/ws'): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let ended = false;
    socket.once('close', () => {
      ended = true;
    });
    socket.on('error', () => undefined);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const responseHead = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(responseHead)?.[1] ?? -1);
      resolve({
        socket,
        responseHead,
        status,
        sendText: (text) => socket.write(encodeClientFrame(Buffer.from(text, 'utf8'))),
        stopReading: () => socket.pause(),
        closed: (timeoutMs = 5_000) =>
          new Promise<void>((res, rej) => {
            if (ended) return res();
            const timer = setTimeout(() => rej(new Error('raw socket still open')), timeoutMs);
            socket.once('close', () => {
              clearTimeout(timer);
              res();
            });
            socket.on('data', () => undefined); // drain whatever is queued so the FIN is reached
            socket.resume();
          }),
        destroy: () => socket.destroy(),
      });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('connect', () => {
      const lines = [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
}

/** RFC 6455 §5.2: FIN + text opcode, mask bit set, payload XOR-ed with a random key. */
export function encodeClientFrame(payload: Buffer, opcode = 0x1): Buffer {
  const len = payload.length;
  const header = len < 126 ? Buffer.alloc(2) : len < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = 0x80 | opcode;
  if (len < 126) {
    header[1] = 0x80 | len;
  } else if (len < 65_536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}
