import type { ClientMessageType, ClientPayload, ServerMessage, ServerPayload } from '../protocol/index.js';
import { REQUESTS, type RelayType, type ReplyTo, type RequestType } from '../protocol/registry.js';
import { ParleyError } from './errors.js';
import type { WebSocketLike } from './websocket.js';

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  readonly type: ClientMessageType;
  /** The reply types that answer it; null for a relayed message (only an `error` comes back). */
  readonly expects: readonly string[] | null;
  readonly resolve: (msg: ServerMessage) => void;
  readonly reject: (err: ParleyError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** On the wire: lost if the socket drops. Still queued: survives to the next socket. */
  sent: boolean;
}

/**
 * Request correlation: messages waiting for a reply by correlationId (each with its timeout and
 * abort signal), and the frames queued while no socket can take them. Replies are matched against
 * the protocol registry's REQUESTS, so a reply of the wrong type rejects with PROTOCOL_ERROR.
 */
export class RequestTracker {
  readonly #pending = new Map<string, Pending>();
  #outbox: { frame: string; cid?: string }[] = [];
  readonly #cidPrefix = Math.random().toString(36).slice(2, 8);
  #seq = 0;
  readonly #timeoutMs: number;

  /** @param timeoutMs the default time a request waits for its reply */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Frames waiting for a socket. */
  get queued(): number {
    return this.#outbox.length;
  }

  nextCid(): string {
    return `${this.#cidPrefix}-${++this.#seq}`;
  }

  /** Waits for the reply to request `cid` (not sent yet: see `send` and `queue`). */
  expectReply<T extends RequestType>(
    cid: string,
    type: T,
    options: RequestOptions = {},
  ): Promise<ReplyTo<T>> {
    return this.#expect(cid, type, REQUESTS[type], options) as Promise<ReplyTo<T>>;
  }

  /** Waits for a refusal of relayed message `cid`; rejects with the server's error, or TIMEOUT. */
  expectRefusal(cid: string, type: RelayType): Promise<unknown> {
    return this.#expect(cid, type, null, {});
  }

  /** A request on a given socket, bypassing the queue: for the handshake (resume, re-join, ping). */
  requestOn<T extends RequestType>(
    ws: WebSocketLike,
    type: T,
    payload: ClientPayload<T>,
    timeoutMs = this.#timeoutMs,
  ): Promise<ReplyTo<T>> {
    const cid = this.nextCid();
    const promise = this.expectReply(cid, type, { timeoutMs });
    this.send(ws, encode(type, payload, cid), cid);
    return promise;
  }

  send(ws: WebSocketLike, frame: string, cid: string | undefined): void {
    if (cid) {
      const p = this.#pending.get(cid);
      if (p) p.sent = true;
    }
    ws.send(frame);
  }

  queue(frame: string, cid: string | undefined): void {
    this.#outbox.push(cid ? { frame, cid } : { frame });
  }

  /** Sends what was queued, in order. */
  flush(ws: WebSocketLike): void {
    const queued = this.#outbox;
    this.#outbox = [];
    for (const item of queued) this.send(ws, item.frame, item.cid);
  }

  /** Settles the request `msg` answers; false if it answers none (then it is an event). */
  settle(msg: ServerMessage): boolean {
    const cid = msg.correlationId;
    if (cid === undefined) return false;
    const p = this.#pending.get(cid);
    if (!p) return false;
    this.#pending.delete(cid);
    clearTimeout(p.timer);
    if (msg.type === 'error') {
      p.reject(errorFrom(msg.payload));
    } else if (p.expects && !p.expects.includes(msg.type)) {
      p.reject(new ParleyError('PROTOCOL_ERROR', `unexpected reply ${msg.type} to ${p.type}`));
    } else {
      p.resolve(msg);
    }
    return true;
  }

  /** The socket dropped: requests already on the wire may never be answered; those still queued survive. */
  failSent(): void {
    for (const [cid, p] of this.#pending) {
      if (!p.sent) continue;
      this.#pending.delete(cid);
      clearTimeout(p.timer);
      p.reject(new ParleyError('DISCONNECTED', `connection lost before the reply to ${p.type}`));
    }
  }

  /** For good: every request rejects (CLOSED stays CLOSED, anything else is DISCONNECTED), the queue is dropped. */
  failAll(reason: ParleyError): void {
    for (const [cid, p] of this.#pending) {
      this.#pending.delete(cid);
      clearTimeout(p.timer);
      p.reject(reason.code === 'CLOSED' ? reason : new ParleyError('DISCONNECTED', reason.reason));
    }
    this.#outbox = [];
  }

  #expect(
    cid: string,
    type: ClientMessageType,
    expects: readonly string[] | null,
    { timeoutMs = this.#timeoutMs, signal }: RequestOptions,
  ): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        // A request that timed out in the queue is not sent late; a relayed message still is
        // (only its error callback expired).
        if (expects) this.#outbox = this.#outbox.filter((o) => o.cid !== cid);
        reject(new ParleyError('TIMEOUT', `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(cid, { type, expects, resolve, reject, timer, sent: false });
      signal?.addEventListener(
        'abort',
        () => {
          if (!this.#pending.delete(cid)) return;
          clearTimeout(timer);
          this.#outbox = this.#outbox.filter((o) => o.cid !== cid);
          reject(ParleyError.from(signal.reason, 'TIMEOUT'));
        },
        { once: true },
      );
    });
  }
}

export function encode(type: ClientMessageType, payload: unknown, correlationId?: string): string {
  return JSON.stringify({ type, payload, timestamp: Date.now(), correlationId });
}

function errorFrom(payload: ServerPayload<'error'>): ParleyError {
  return ParleyError.fromBody(payload);
}
