import { connect, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { ParleyError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { REDIS_DEFAULTS, reconnectDelayMs } from './redis-state.js';

/** A reply this connection waits for: `+OK` of `CLIENT REPLY ON`, or the count of a `PUBLISH`. */
type Expected =
  | { kind: 'ok' }
  | { kind: 'count'; resolve: (n: number) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

/**
 * The bus's publisher: a Redis connection of its own, in `CLIENT REPLY OFF`, that writes `PUBLISH`
 * commands as RESP and reads no reply. Through ioredis each publish costs a command object, a
 * promise, a timeout timer, and a wake-up of this node to read `:1` (bench/redis-pubsub-cost.ts:
 * about half the publisher's CPU per frame). A publish whose subscriber count is wanted (media and
 * admin RPCs: 0 means that node is gone) switches replies on around itself
 * (`CLIENT REPLY ON`, `PUBLISH`, `CLIENT REPLY OFF`) on the same connection, so every bus publish
 * keeps its order whichever kind it is.
 *
 * Only for a plain TCP or unix-socket Redis (no TLS, no Sentinel: `forClient` answers null, and
 * the bus publishes through ioredis). `ready` is false until the handshake has been answered and
 * while the connection is down: the bus then publishes through ioredis, which fails fast.
 * A reply it cannot place (the server refused the handshake, or anything unexpected) drops the
 * connection; a refused handshake is not retried.
 */
export class ReplyLessPublisher {
  readonly #target: { host: string; port: number } | { path: string };
  readonly #auth: Buffer | null;
  readonly #log: Logger;
  #socket: Socket | null = null;
  #ready = false;
  #closed = false;
  #refused = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | null = null;
  /** A handshake not answered in time (a silent partition, a proxy with nobody behind it) is dropped and retried. */
  #handshake: NodeJS.Timeout | null = null;
  readonly #expected: Expected[] = [];
  #buffered = '';

  private constructor(
    target: { host: string; port: number } | { path: string },
    auth: Buffer | null,
    log: Logger,
  ) {
    this.#target = target;
    this.#auth = auth;
    this.#log = log;
    this.#connect();
  }

  /** A publisher beside the state client, or null when its connection is one this cannot open (TLS, Sentinel). */
  static forClient(client: Redis, log: Logger): ReplyLessPublisher | null {
    const o = client.options;
    if (o.tls || (o.sentinels && o.sentinels.length > 0)) return null;
    const target = o.path ? { path: o.path } : { host: o.host ?? '127.0.0.1', port: o.port ?? 6379 };
    const auth = o.password
      ? command(o.username ? ['AUTH', o.username, o.password] : ['AUTH', o.password])
      : null;
    return new ReplyLessPublisher(target, auth, log);
  }

  /** Whether a publish can go this way now (false: use the state client). */
  get ready(): boolean {
    return this.#ready;
  }

  /** `host:port` of this end of the connection, as Redis's CLIENT LIST shows it (for tests), or null. */
  get localAddressForTesting(): string | null {
    const s = this.#socket;
    return s?.localAddress && s.localPort ? `${s.localAddress}:${s.localPort}` : null;
  }

  /** A publish nobody waits for: written, never answered. Only while `ready`. */
  publish(channel: string, data: Buffer): void {
    this.#socket?.write(publishCommand(channel, data));
  }

  /** A publish whose subscriber count is wanted. Only while `ready`. */
  publishCounted(channel: string, data: Buffer): Promise<number> {
    const socket = this.#socket;
    if (!socket) return Promise.reject(unavailable());
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.#drop('publish reply timed out'), REDIS_DEFAULTS.commandTimeoutMs);
      this.#expected.push({ kind: 'ok' }, { kind: 'count', resolve, reject, timer });
      socket.write(Buffer.concat([REPLY_ON, publishCommand(channel, data), REPLY_OFF]));
    });
  }

  /** Ends the connection (what was written is sent first); no reconnect after it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = false;
    if (this.#retry) clearTimeout(this.#retry);
    this.#clearHandshake();
    this.#socket?.end();
    this.#failPending();
  }

  #connect(): void {
    if (this.#closed) return;
    const socket = connect(this.#target);
    this.#socket = socket;
    this.#buffered = '';
    socket.setNoDelay(true);
    socket.on('connect', () => {
      // AUTH (answered +OK), then replies off and on again: the one +OK of `CLIENT REPLY ON` says
      // that both were accepted; the closing REPLY OFF is then silent.
      const parts: Buffer[] = [];
      if (this.#auth) {
        parts.push(this.#auth);
        this.#expected.push({ kind: 'ok' });
      }
      parts.push(REPLY_OFF, REPLY_ON, REPLY_OFF);
      this.#expected.push({ kind: 'ok' });
      socket.write(Buffer.concat(parts));
      this.#handshake = setTimeout(() => {
        this.#handshake = null;
        if (!this.#ready && this.#socket === socket) this.#drop('handshake not answered');
      }, REDIS_DEFAULTS.commandTimeoutMs);
      this.#handshake.unref();
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) =>
      this.#log.debug({ err: err.message }, 'redis publisher connection error'),
    );
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#ready = false;
      this.#clearHandshake();
      this.#failPending();
      if (this.#closed || this.#refused) return;
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#connect();
      }, reconnectDelayMs(++this.#attempt));
      this.#retry.unref();
    });
  }

  /** Replies are one line each (`+…`, `-…`, `:…`): anything else, or more than was asked for, is a desync. */
  #onData(chunk: Buffer): void {
    this.#buffered += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.#buffered.indexOf('\r\n')) >= 0) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 2);
      const want = this.#expected.shift();
      if (!want) return this.#drop(`unexpected reply ${line.slice(0, 40)}`);
      if (want.kind === 'ok') {
        if (line !== '+OK') {
          if (!this.#ready) this.#refuse(line);
          return this.#drop(`unexpected reply ${line.slice(0, 40)}`);
        }
        if (!this.#ready && this.#expected.length === 0) {
          this.#ready = true;
          this.#attempt = 0;
          this.#clearHandshake();
        }
        continue;
      }
      clearTimeout(want.timer);
      const n = line.startsWith(':') ? Number(line.slice(1)) : Number.NaN;
      if (Number.isSafeInteger(n)) want.resolve(n);
      else want.reject(unavailable());
    }
  }

  /** The server would not take the handshake (no CLIENT REPLY, ACL, wrong password): ioredis only, for good. */
  #refuse(line: string): void {
    this.#refused = true;
    this.#log.warn(
      { reply: line.slice(0, 80) },
      'redis refused the reply-less publisher; publishing through the state client',
    );
  }

  #drop(why: string): void {
    this.#log.debug({ why }, 'redis publisher connection dropped');
    this.#ready = false;
    this.#socket?.destroy();
  }

  #clearHandshake(): void {
    if (this.#handshake) clearTimeout(this.#handshake);
    this.#handshake = null;
  }

  #failPending(): void {
    for (const e of this.#expected.splice(0)) {
      if (e.kind !== 'count') continue;
      clearTimeout(e.timer);
      e.reject(unavailable());
    }
  }
}

function unavailable(): ParleyError {
  return new ParleyError('SERVICE_UNAVAILABLE', 'state backend (redis) unavailable');
}

/** A RESP array of bulk strings. */
function command(args: string[]): Buffer {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(s);
}

const REPLY_OFF = command(['CLIENT', 'REPLY', 'OFF']);
const REPLY_ON = command(['CLIENT', 'REPLY', 'ON']);

function publishCommand(channel: string, data: Buffer): Buffer {
  const head = Buffer.from(
    `*3\r\n$7\r\nPUBLISH\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n$${data.length}\r\n`,
  );
  return Buffer.concat([head, data, CRLF]);
}

const CRLF = Buffer.from('\r\n');
