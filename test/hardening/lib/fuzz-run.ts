import { WebSocket } from 'ws';
import { CLOSE_CODES, ERROR_CODES, isErrorCode } from '../../../src/protocol/index.js';
import { decode } from '../../../src/server/signaling/codec.js';
import { FuzzGenerator, type FuzzContext, type FuzzFrame } from './fuzz-gen.js';
import { round } from './stats.js';

/*
 * Drives a FuzzGenerator against a live server over many connections and checks each answer.
 *
 * Attribution: each fuzz frame is followed by a sentinel `ping` with its own correlationId; the
 * server handles one connection's messages in order, so whatever answers the fuzz frame (an
 * `error`, a reply carrying its correlationId, or a close) arrives before the sentinel's `pong`.
 *
 * Oracle: the server's own codec (`decode`) says whether a text frame is valid and, if not, which
 * code the error must carry; frames over MAX_FRAME_BYTES must close with 1009; binary frames must
 * get INVALID_MESSAGE. Valid frames may get any reply, silence (relays), or an error from the
 * catalogue, but never INTERNAL. Every code seen must be in ERROR_CODES / CLOSE_CODES.
 */

export const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set(
  Object.values(CLOSE_CODES).map((c) => c.code),
);

export interface FuzzRunOptions {
  wsUrl: string;
  tokenFor: (sub: string) => Promise<string>;
  seed: number;
  frames: number;
  connections: number;
  maxFrameBytes: number;
  /** Share of connections opened without a token (they must answer UNAUTHORIZED). */
  unauthenticatedShare?: number;
  /** A connection is closed (1000) and replaced after this many frames. */
  framesPerConnection?: number;
  /** Rooms the fuzz connections join and aim at. */
  rooms: readonly string[];
  /** Stop early (with what was done) at this wall-clock budget. */
  budgetMs?: number;
  /** Prints a progress line every this many frames (0 = never). */
  progressEvery?: number;
}

export interface Violation {
  index: number;
  category: string;
  problem: string;
  got: string;
  frame: string;
}

export interface FuzzFigures {
  seed: number;
  frames: number;
  connectionsOpened: number;
  seconds: number;
  framesPerSec: number;
  /** error:<CODE>, close:<code>, reply:<type>, silent */
  outcomes: Record<string, number>;
  /** Frames per family (first segment of the category). */
  families: Record<string, number>;
  fragmented: number;
  binary: number;
  beyondLimit: number;
  sweepCases: number;
  internalErrors: number;
  violations: Violation[];
}

interface Received {
  type: string;
  correlationId?: string;
  payload?: { code?: string; [k: string]: unknown };
}

class Conn {
  readonly ws: WebSocket;
  readonly user: string;
  readonly authenticated: boolean;
  readonly received: Received[] = [];
  readonly rooms = new Set<string>();
  readonly mediaIds: string[] = [];
  closeCode: number | null = null;
  #waiter: (() => void) | null = null;

  constructor(ws: WebSocket, user: string, authenticated: boolean) {
    this.ws = ws;
    this.user = user;
    this.authenticated = authenticated;
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as Received;
      this.received.push(msg);
      this.#learn(msg);
      this.#waiter?.();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.#waiter?.();
    });
    ws.on('error', () => undefined);
  }

  #learn(msg: Received): void {
    const p = (msg.payload ?? {}) as Record<string, unknown>;
    const id = (k: string) => {
      const v = p[k];
      return typeof v === 'string' ? v : null;
    };
    if (msg.type === 'room:state' && typeof p.roomId === 'string') this.rooms.add(p.roomId);
    if (msg.type === 'room:left' && typeof p.roomId === 'string') this.rooms.delete(p.roomId);
    for (const k of ['floorProducerId', 'producerId', 'consumerId', 'transportId']) {
      const v = id(k);
      if (v && !this.mediaIds.includes(v)) this.mediaIds.push(v);
    }
    if (msg.type === 'transport:created') {
      const v = id('id');
      if (v) this.mediaIds.push(v);
    }
    if (this.mediaIds.length > 32) this.mediaIds.splice(0, this.mediaIds.length - 32);
  }

  /** Resolves when `done()` holds, re-checked on every message and on close; false on timeout. */
  wait(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve(false);
      }, timeoutMs);
      this.#waiter = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiter = null;
        resolve(true);
      };
    });
  }

  get open(): boolean {
    return this.closeCode === null && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: FuzzFrame): void {
    if (frame.binary) {
      this.ws.send(frame.data, { binary: true });
      return;
    }
    const bytes = Buffer.from(frame.data);
    if (!frame.fragments) {
      this.ws.send(bytes, { binary: false });
      return;
    }
    let at = 0;
    frame.fragments.forEach((size, i) => {
      this.ws.send(bytes.subarray(at, at + size), { binary: false, fin: i === frame.fragments!.length - 1 });
      at += size;
    });
  }
}

async function openConn(wsUrl: string, user: string, token: string | null): Promise<Conn> {
  const ws = new WebSocket(wsUrl, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const conn = new Conn(ws, user, token !== null);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
    );
  });
  if (token) {
    const ok = await conn.wait(() => conn.received.some((m) => m.type === 'welcome'), 5_000);
    if (!ok) throw new Error(`no welcome for ${user}`);
  }
  return conn;
}

function describeGot(msgs: Received[], closeCode: number | null): string {
  const parts = msgs.map((m) => (m.type === 'error' ? `error:${m.payload?.code}` : m.type));
  if (closeCode !== null) parts.push(`close:${closeCode}`);
  return parts.join(',') || 'nothing';
}

export async function runFuzz(opts: FuzzRunOptions): Promise<FuzzFigures> {
  const gen = new FuzzGenerator(opts.seed);
  const perConn = opts.framesPerConnection ?? 400;
  const unauthShare = opts.unauthenticatedShare ?? 0.1;
  const outcomes: Record<string, number> = {};
  const families: Record<string, number> = {};
  const violations: Violation[] = [];
  const online = new Set<string>();
  let next = 0;
  let done = 0;
  let opened = 0;
  let fragmented = 0;
  let binary = 0;
  let beyondLimit = 0;
  let internalErrors = 0;
  const t0 = performance.now();
  const deadline = opts.budgetMs ? Date.now() + opts.budgetMs : Infinity;
  const count = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
  const violate = (f: FuzzFrame, problem: string, got: string) => {
    if (violations.length < 200) {
      const frame = typeof f.data === 'string' ? f.data.slice(0, 300) : `<binary ${f.data.length} bytes>`;
      violations.push({ index: f.index, category: f.category, problem, got, frame });
    }
  };

  async function slot(s: number): Promise<void> {
    let gen_ = 0;
    while (next < opts.frames && Date.now() < deadline) {
      const authenticated = (s + gen_) % Math.max(1, Math.round(1 / unauthShare)) !== 0 || unauthShare === 0;
      const user = `fz${s}-${gen_++}`;
      let conn: Conn;
      try {
        conn = await openConn(opts.wsUrl, user, authenticated ? await opts.tokenFor(user) : null);
      } catch (err) {
        violations.push({ index: -1, category: 'connect', problem: String(err), got: '', frame: '' });
        return;
      }
      opened++;
      if (authenticated) {
        online.add(user);
        // Be somewhere, so that room-scoped frames reach past the membership checks.
        const room = opts.rooms[(s + gen_) % opts.rooms.length];
        conn.ws.send(JSON.stringify({ type: 'room:join', payload: { roomId: room }, correlationId: 'j' }));
        await conn.wait(() => conn.received.some((m) => m.correlationId === 'j'), 5_000);
      }
      for (let k = 0; k < perConn && conn.open && next < opts.frames && Date.now() < deadline; k++) {
        const index = next++;
        const ctx: FuzzContext = {
          rooms: [...conn.rooms, ...opts.rooms],
          users: [...online].filter((u) => u !== user).slice(-16),
          mediaIds: conn.mediaIds,
          maxFrameBytes: opts.maxFrameBytes,
        };
        const frame = gen.frame(index, ctx);
        await check(conn, frame);
        done++;
        if (opts.progressEvery && done % opts.progressEvery === 0) {
          const secs = (performance.now() - t0) / 1000;
          console.log(`[fuzz] ${done} frames, ${round(done / secs, 0)}/s, ${violations.length} violations`);
        }
      }
      online.delete(user);
      if (conn.open) {
        const closed = conn.wait(() => conn.closeCode !== null, 5_000);
        conn.ws.close(1000);
        await closed;
      }
    }
  }

  async function check(conn: Conn, frame: FuzzFrame): Promise<void> {
    const fam = frame.category.replace(/^fragmented\//, '').split(':')[0];
    families[fam] = (families[fam] ?? 0) + 1;
    if (frame.fragments) fragmented++;
    if (frame.binary) binary++;
    const mark = conn.received.length;
    // Unforgeable by the frame's own havoc (which once turned a frame's correlationId into `s<index>`).
    const sentinel = `~sentinel~${frame.index}`;
    conn.send(frame);
    conn.ws.send(JSON.stringify({ type: 'ping', correlationId: sentinel }));
    const answered = await conn.wait(
      () =>
        conn.closeCode !== null || conn.received.some((m, i) => i >= mark && m.correlationId === sentinel),
      10_000,
    );
    const after = conn.received.slice(mark).filter((m) => m.correlationId !== sentinel);
    // Server-originated messages (presence, relays) never carry a correlationId; every message that
    // does, other than the sentinel's pong, answers the fuzz frame. So does an error without one.
    const replies = after.filter((m) => m.correlationId !== undefined || m.type === 'error');
    const closeCode = conn.closeCode;
    const got = describeGot(replies, closeCode);
    if (!answered) violate(frame, 'no answer within 10 s (server hung?)', got);

    // Every code on the wire comes from the catalogue.
    for (const m of after) {
      if (m.type !== 'error') continue;
      const code = String(m.payload?.code);
      if (!isErrorCode(code)) violate(frame, `error code ${code} is not in the catalogue`, got);
      if (code === 'INTERNAL') {
        internalErrors++;
        violate(frame, 'INTERNAL error (a handler threw)', got);
      }
    }
    if (closeCode !== null && !DOCUMENTED_CLOSE_CODES.has(closeCode)) {
      violate(frame, `close code ${closeCode} is not documented`, got);
    }
    if (replies.length === 0 && closeCode === null) count('silent');
    for (const m of replies) count(m.type === 'error' ? `error:${m.payload?.code}` : `reply:${m.type}`);
    if (closeCode !== null) count(`close:${closeCode}`);

    // What the oracle says the answer must be.
    const bytes = frame.binary ? frame.data.length : Buffer.byteLength(frame.data);
    if (!frame.binary && bytes > opts.maxFrameBytes) {
      beyondLimit++;
      if (closeCode !== 1009) violate(frame, 'a frame over MAX_FRAME_BYTES must close with 1009', got);
      return;
    }
    if (frame.binary) {
      if (!replies.some((m) => m.type === 'error' && m.payload?.code === 'INVALID_MESSAGE'))
        violate(frame, 'a binary frame must get INVALID_MESSAGE', got);
      return;
    }
    const oracle = decode(Buffer.from(frame.data).toString('utf8'));
    if (!oracle.ok) {
      if (frame.intent === 'valid')
        violate(frame, `generated as valid, but the codec refuses it: ${oracle.message}`, got);
      if (frame.intent && frame.intent !== 'valid' && frame.intent !== oracle.code)
        violate(frame, `generated as ${frame.intent}, codec says ${oracle.code}`, got);
      const err = replies.find((m) => m.type === 'error');
      if (err?.payload?.code !== oracle.code) violate(frame, `expected error ${oracle.code}`, got);
      else {
        // The error echoes the frame's correlation under the key the frame used (`id` is an alias).
        const want = oracle.correlation;
        const echoed: unknown = want
          ? (err as unknown as Record<string, unknown>)[want.key]
          : err.correlationId;
        if (echoed !== want?.value)
          violate(
            frame,
            `error carries ${want?.key ?? 'correlationId'} ${String(echoed)}, expected ${String(want?.value)}`,
            got,
          );
      }
      return;
    }
    if (frame.intent && frame.intent !== 'valid') {
      violate(frame, `generated as ${frame.intent}, but the codec accepts it (validation hole?)`, got);
    }
    if (!conn.authenticated && oracle.msg.type !== 'auth:request') {
      if (!replies.some((m) => m.type === 'error' && m.payload?.code === 'UNAUTHORIZED'))
        violate(frame, 'an unauthenticated connection must get UNAUTHORIZED', got);
    }
  }

  await Promise.all(Array.from({ length: opts.connections }, (_, s) => slot(s)));
  const seconds = (performance.now() - t0) / 1000;
  return {
    seed: opts.seed,
    frames: done,
    connectionsOpened: opened,
    seconds: round(seconds, 1),
    framesPerSec: round(done / seconds, 0),
    outcomes: Object.fromEntries(Object.entries(outcomes).sort((a, b) => b[1] - a[1])),
    families,
    fragmented,
    binary,
    beyondLimit,
    sweepCases: gen.sweepSize,
    internalErrors,
    violations,
  };
}

export { ERROR_CODES };
