import { WebSocket } from 'ws';
import { Prng } from '../../hardening/lib/prng.js';
import { tokenFor } from '../../hardening/lib/proc.js';
import { FAKE_DTLS, opusRtpParameters } from '../../helpers/media.js';
import { sleep } from '../../helpers/wait.js';

/*
 * A mixed, realistic workload for the soak: actors that join and leave rooms (setting up SFU media
 * in ptt rooms), talk in PTT bursts, call each other 1:1 (the callee answers and trickles ICE, the
 * caller hangs up), relay in-room offers, drop their connection and resume, sometimes drop for
 * good, and ping. Every error code and close code the actors see is counted.
 */

interface Msg {
  type: string;
  correlationId?: string;
  payload?: Record<string, unknown> & { code?: string };
}

export interface WorkloadStats {
  actions: Record<string, number>;
  errors: Record<string, number>;
  closes: Record<string, number>;
  resumes: { ok: number; failed: number };
  timeouts: number;
  pttGranted: number;
  callsAnswered: number;
}

export const SOAK_ROOMS = { ptt: ['soak-ptt-1', 'soak-ptt-2'], conference: ['soak-conf'] };
const ALL_ROOMS = [...SOAK_ROOMS.ptt, ...SOAK_ROOMS.conference];

class Actor {
  readonly user: string;
  readonly #wsUrl: string;
  readonly #rng: Prng;
  readonly #stats: WorkloadStats;
  readonly #registry: Map<string, Actor>;
  ws: WebSocket | null = null;
  resumeToken: string | null = null;
  room: string | null = null;
  #seq = 0;
  #pending = new Map<string, (m: Msg) => void>();

  constructor(user: string, wsUrl: string, rng: Prng, stats: WorkloadStats, registry: Map<string, Actor>) {
    this.user = user;
    this.#wsUrl = wsUrl;
    this.#rng = rng;
    this.#stats = stats;
    this.#registry = registry;
  }

  async connect(): Promise<void> {
    const ws = new WebSocket(this.#wsUrl, {
      headers: { authorization: `Bearer ${await tokenFor(this.user)}` },
    });
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.user}: no welcome`)), 10_000);
      ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString()) as Msg;
        if (m.type === 'welcome') {
          clearTimeout(timer);
          this.#fresh = String(m.payload?.resumeToken);
          resolve();
        }
        this.#onMessage(ws, m);
      });
      ws.once('error', reject);
    });
    ws.on('close', (code) => {
      this.#stats.closes[code] = (this.#stats.closes[code] ?? 0) + 1;
      for (const [, resolve] of this.#pending) resolve({ type: 'closed' });
      this.#pending.clear();
    });
  }

  /** The resume token of the current connection's own session (until a resume replaces it). */
  #fresh: string | null = null;

  #onMessage(ws: WebSocket, m: Msg): void {
    if (m.type === 'error') {
      const code = String(m.payload?.code);
      this.#stats.errors[code] = (this.#stats.errors[code] ?? 0) + 1;
    }
    if (m.correlationId && this.#pending.has(m.correlationId)) {
      this.#pending.get(m.correlationId)!(m);
      this.#pending.delete(m.correlationId);
      return;
    }
    // The callee side of a call: accept, answer, trickle one candidate.
    if (m.type === 'call:offer' && ws.readyState === WebSocket.OPEN) {
      const recipientId = String(m.payload?.senderId);
      const callId = String(m.payload?.callId);
      ws.send(JSON.stringify({ type: 'call:accept', payload: { recipientId, callId } }));
      ws.send(
        JSON.stringify({ type: 'call:answer', payload: { recipientId, callId, sdp: 'v=0\r\na=answer\r\n' } }),
      );
      ws.send(
        JSON.stringify({
          type: 'call:ice-candidate',
          payload: {
            recipientId,
            callId,
            candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' },
          },
        }),
      );
      this.#stats.callsAnswered++;
    }
  }

  request(type: string, payload: unknown, timeoutMs = 8_000): Promise<Msg> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve({ type: 'closed' });
    const cid = `${this.user}-${++this.#seq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        this.#stats.timeouts++;
        resolve({ type: 'timeout' });
      }, timeoutMs);
      this.#pending.set(cid, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      ws.send(JSON.stringify({ type, payload, correlationId: cid }));
    });
  }

  send(type: string, payload: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, payload }));
  }

  count(action: string): void {
    this.#stats.actions[action] = (this.#stats.actions[action] ?? 0) + 1;
  }

  async join(): Promise<void> {
    const roomId = this.#rng.pick(ALL_ROOMS);
    const state = await this.request('room:join', { roomId });
    if (state.type !== 'room:state') return;
    this.room = roomId;
    if (this.#rng.chance(0.6)) await this.#media(roomId);
  }

  /** SFU media as mediasoup-client sets it up (minus DTLS): capabilities, 2 transports, produce, consume. */
  async #media(roomId: string): Promise<void> {
    const caps = await this.request('media:capabilities', { roomId });
    if (caps.type !== 'media:capabilities') return;
    const send = await this.request('transport:create', { roomId, direction: 'send' });
    const recv = await this.request('transport:create', { roomId, direction: 'recv' });
    if (send.type !== 'transport:created' || recv.type !== 'transport:created') return;
    const sendId = String(send.payload?.id);
    await this.request('transport:connect', { transportId: sendId, dtlsParameters: FAKE_DTLS });
    await this.request('produce', { transportId: sendId, kind: 'audio', rtpParameters: opusRtpParameters() });
    const floor = caps.payload?.floorProducerId;
    if (typeof floor === 'string') {
      const consumed = await this.request('consume', {
        producerId: floor,
        transportId: String(recv.payload?.id),
        rtpCapabilities: caps.payload?.rtpCapabilities,
      });
      if (consumed.type === 'consumed')
        await this.request('consumer:resume', { consumerId: consumed.payload?.consumerId });
    }
  }

  async leave(): Promise<void> {
    if (!this.room) return;
    await this.request('room:leave', { roomId: this.room });
    this.room = null;
  }

  async pttBurst(): Promise<void> {
    if (!this.room || !SOAK_ROOMS.ptt.includes(this.room)) return;
    const r = await this.request('ptt:start', { roomId: this.room });
    if (r.type === 'ptt:granted') {
      this.#stats.pttGranted++;
      await sleep(this.#rng.int(100, 600));
    }
    await this.request('ptt:stop', { roomId: this.room });
  }

  async call(): Promise<void> {
    const others = [...this.#registry.values()].filter(
      (a) => a !== this && a.ws?.readyState === WebSocket.OPEN,
    );
    if (others.length === 0) return;
    const peer = this.#rng.pick(others).user;
    const callId = `${this.user}-call-${this.#seq}`;
    this.send('call:offer', { recipientId: peer, callId, sdp: 'v=0\r\na=offer\r\n' });
    await sleep(this.#rng.int(200, 1_200));
    this.send('call:hangup', { recipientId: peer, callId });
  }

  relay(): void {
    if (!this.room) return;
    const members = [...this.#registry.values()].filter((a) => a !== this && a.room === this.room);
    if (members.length === 0) return;
    this.send('sdp:offer', { roomId: this.room, to: this.#rng.pick(members).user, sdp: 'v=0\r\na=room\r\n' });
  }

  /** Network drop, then a new connection that resumes the session (or, for good, does not). */
  async dropAndReturn(resume: boolean): Promise<void> {
    const token = this.resumeToken ?? this.#fresh;
    this.ws?.terminate();
    await sleep(this.#rng.int(50, 800));
    await this.connect();
    if (!resume || !token) {
      this.room = null;
      this.resumeToken = null;
      return;
    }
    const r = await this.request('session:resume', { resumeToken: token });
    if (r.type === 'session:resumed') {
      this.#stats.resumes.ok++;
      this.resumeToken = String(r.payload?.resumeToken);
    } else {
      this.#stats.resumes.failed++;
      this.room = null;
      this.resumeToken = null;
    }
  }

  async step(): Promise<void> {
    const roll = this.#rng.next();
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.count('reconnect');
      await this.connect();
      this.room = null;
      this.resumeToken = null;
    } else if (!this.room) {
      this.count('join');
      await this.join();
    } else if (roll < 0.12) {
      this.count('leave');
      await this.leave();
    } else if (roll < 0.35) {
      this.count('ptt');
      await this.pttBurst();
    } else if (roll < 0.5) {
      this.count('call');
      await this.call();
    } else if (roll < 0.65) {
      this.count('relay');
      this.relay();
    } else if (roll < 0.72) {
      this.count('drop+resume');
      await this.dropAndReturn(true);
    } else if (roll < 0.74) {
      this.count('drop');
      await this.dropAndReturn(false);
    } else if (roll < 0.76) {
      this.count('close');
      const ws = this.ws;
      await new Promise((r) => (ws.once('close', r), ws.close(1000)));
      this.ws = null;
      this.room = null;
      this.resumeToken = null;
    } else {
      this.count('ping');
      await this.request('ping', {});
    }
  }

  async stop(): Promise<void> {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN)
      await new Promise((r) => (ws.once('close', r), ws.close(1000)));
  }
}

/** Runs `actors` actors against the server for `durationMs`, each thinking 50–400 ms between steps. */
export async function runWorkload(
  wsUrl: string,
  opts: { actors: number; durationMs: number; seed: number },
): Promise<WorkloadStats> {
  const stats: WorkloadStats = {
    actions: {},
    errors: {},
    closes: {},
    resumes: { ok: 0, failed: 0 },
    timeouts: 0,
    pttGranted: 0,
    callsAnswered: 0,
  };
  const registry = new Map<string, Actor>();
  const root = new Prng(opts.seed);
  const actors = Array.from({ length: opts.actors }, (_, i) => {
    const a = new Actor(`soak${i}`, wsUrl, root.fork(i), stats, registry);
    registry.set(a.user, a);
    return a;
  });
  const until = Date.now() + opts.durationMs;
  await Promise.all(
    actors.map(async (a, i) => {
      const rng = root.fork(1_000 + i);
      await a.connect();
      while (Date.now() < until) {
        await a.step();
        await sleep(rng.int(50, 400));
      }
      await a.stop();
    }),
  );
  return stats;
}
