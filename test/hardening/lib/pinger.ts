import { WebSocket } from 'ws';
import { waitUntil } from '../../helpers/wait.js';
import { summarize } from './stats.js';

/**
 * A well-behaved client: joins a room, then sends an application `ping` every `everyMs` and
 * records the round trip of each `pong`. It notices anything a healthy client should never see:
 * an `error`, a close, a ping left unanswered.
 */
export class Pinger {
  readonly rtts: number[] = [];
  readonly errors: unknown[] = [];
  closedWith: number | null = null;
  #ws: WebSocket;
  #timer: NodeJS.Timeout | null = null;
  #seq = 0;
  #inFlight = new Map<string, number>();
  #mark = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  static async start(wsUrl: string, token: string, roomId = 'lobby', everyMs = 10): Promise<Pinger> {
    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
    const p = new Pinger(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString()) as {
          type: string;
          correlationId?: string;
          payload?: unknown;
        };
        if (msg.type === 'welcome') {
          ws.send(JSON.stringify({ type: 'room:join', payload: { roomId }, correlationId: 'join' }));
        } else if (msg.correlationId === 'join') {
          if (msg.type !== 'room:state') reject(new Error(`pinger could not join: ${JSON.stringify(msg)}`));
          else resolve();
        } else if (msg.type === 'pong' && msg.correlationId) {
          const t0 = p.#inFlight.get(msg.correlationId);
          if (t0 !== undefined) {
            p.rtts.push(performance.now() - t0);
            p.#inFlight.delete(msg.correlationId);
          }
        } else if (msg.type === 'error') {
          p.errors.push(msg.payload);
        }
      });
    });
    ws.on('close', (code) => {
      p.closedWith = code;
    });
    p.#timer = setInterval(() => p.#ping(), everyMs);
    return p;
  }

  #ping(): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    const cid = `p${++this.#seq}`;
    this.#inFlight.set(cid, performance.now());
    this.#ws.send(JSON.stringify({ type: 'ping', correlationId: cid }));
  }

  /** Starts a new measurement window; `window()` returns the RTTs since. */
  mark(): void {
    this.#mark = this.rtts.length;
  }

  window(): number[] {
    return this.rtts.slice(this.#mark);
  }

  /** Pings sent more than `olderThanMs` ago and still unanswered. */
  unanswered(olderThanMs = 2_000): number {
    const now = performance.now();
    return [...this.#inFlight.values()].filter((t) => now - t > olderThanMs).length;
  }

  summary() {
    return { ...summarize(this.rtts), unanswered: this.unanswered(), errors: this.errors.length };
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    // Let the last pings come back (unanswered ones are counted, so this must not throw).
    await waitUntil(() => this.#inFlight.size === 0, 'the last pongs', 2_000).catch(() => undefined);
    if (this.#ws.readyState === WebSocket.OPEN) {
      const closed = new Promise((r) => this.#ws.once('close', r));
      this.#ws.close(1000);
      await closed;
    }
  }
}
