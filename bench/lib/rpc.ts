import type { WebSocket } from 'ws';

export interface Msg {
  type: string;
  payload: Record<string, unknown>;
  correlationId?: string;
}

let seq = 0;

/**
 * Request/reply over one Parley client socket (correlationId). Frames are parsed only while a
 * request is waiting, so idle members of a big room cost the generator next to nothing.
 */
export class Rpc {
  readonly ws: WebSocket;
  readonly #waiting = new Map<string, { resolve: (m: Msg) => void; timer: NodeJS.Timeout }>();

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      if (this.#waiting.size === 0) return;
      const m = JSON.parse(data.toString()) as Msg;
      const w = m.correlationId ? this.#waiting.get(m.correlationId) : undefined;
      if (!w || !m.correlationId) return;
      this.#waiting.delete(m.correlationId);
      clearTimeout(w.timer);
      w.resolve(m);
    });
  }

  request(type: string, payload: unknown, timeoutMs = 10_000): Promise<Msg> {
    const correlationId = `r${++seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(correlationId);
        reject(new Error(`${type}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(correlationId, { resolve, timer });
      this.ws.send(JSON.stringify({ type, payload, correlationId }));
    });
  }

  /** Like request, but an `error` reply rejects with its code. */
  async call(type: string, payload: unknown, expect: string, timeoutMs = 10_000): Promise<Msg> {
    const m = await this.request(type, payload, timeoutMs);
    if (m.type !== expect) {
      const code = (m.payload?.code as string | undefined) ?? m.type;
      throw Object.assign(new Error(`${type} → ${code}: ${JSON.stringify(m.payload).slice(0, 300)}`), {
        code,
      });
    }
    return m;
  }
}
