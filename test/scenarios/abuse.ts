import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { floodFromWorker, type FloodResult } from '../hardening/lib/flood.js';
import { Pinger } from '../hardening/lib/pinger.js';
import { sleep, waitUntil } from '../helpers/wait.js';

/*
 * Abuse scenarios shared by test/hardening/abuse.test.ts (short parameters, behaviour only) and
 * test/stress/abuse.stress.ts (long parameters, plus the latency and deadline bounds). Each runs the
 * load and returns what happened; the caller decides what to assert.
 */

export interface FloodScenario {
  /** Calm clients pinging throughout, each every `pingEveryMs`. */
  calm: number;
  pingEveryMs: number;
  /** Flooders, one after another; before each, a calm window of `calmWindowMs`. */
  rounds: number;
  calmWindowMs: number;
}

export interface FloodOutcome {
  floods: FloodResult[];
  /** Calm clients' round trips in the calm windows, and while a flooder was connected. */
  baseRtts: number[];
  floodedRtts: number[];
  /** Still running: the caller may measure more (a swarm), then must `stop()` them. */
  calm: Pinger[];
  stop(): Promise<void>;
}

/**
 * Calm clients ping while flooders connect one at a time, interleaved with calm windows so that
 * background load on the machine hits both sides alike.
 */
export async function floodAmongCalmClients(
  wsUrl: string,
  tokenFor: (sub: string) => Promise<string>,
  s: FloodScenario,
): Promise<FloodOutcome> {
  const calm = await Promise.all(
    Array.from({ length: s.calm }, async (_, i) =>
      Pinger.start(wsUrl, await tokenFor(`calm${i}`), 'lobby', s.pingEveryMs),
    ),
  );
  const stop = async () => {
    await Promise.all(calm.map((p) => p.stop()));
  };
  const out: FloodOutcome = { floods: [], baseRtts: [], floodedRtts: [], calm, stop };
  try {
    for (let r = 0; r < s.rounds; r++) {
      calm.forEach((p) => p.mark());
      await sleep(s.calmWindowMs); // the calm window is measured over time
      out.baseRtts.push(...calm.flatMap((p) => p.window()));
      calm.forEach((p) => p.mark());
      out.floods.push(await floodFromWorker(wsUrl, [await tokenFor(`flood${r}`)]));
      out.floodedRtts.push(...calm.flatMap((p) => p.window()));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return out;
}

/** Sums a figure over flood results. */
export const sumFloods = (floods: FloodResult[], f: (x: FloodResult) => number): number =>
  floods.reduce((s, x) => s + f(x), 0);

export interface UpgradeFloodOutcome {
  /** HTTP status per attempt (101 = upgraded, -1 = no answer). */
  statuses: number[];
  /** Time from opening to the answer, per attempt (ms; figures only). */
  answerMs: number[];
  open: WebSocket[];
}

/**
 * `attempts` concurrent upgrades from one address; with `spoofEvery` > 0, every n-th carries a
 * made-up X-Forwarded-For that the server must ignore.
 */
export async function upgradesFromOneAddress(
  wsUrl: string,
  tokenFor: (sub: string) => Promise<string>,
  attempts: number,
  spoofEvery = 0,
): Promise<UpgradeFloodOutcome> {
  const tokens = await Promise.all(Array.from({ length: attempts }, (_, i) => tokenFor(`ipflood${i}`)));
  const out: UpgradeFloodOutcome = { statuses: [], answerMs: [], open: [] };
  await Promise.all(
    tokens.map(async (token, i) => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (spoofEvery > 0 && i % spoofEvery === 0) headers['x-forwarded-for'] = `10.0.${i >> 8}.${i & 255}`;
      const t0 = performance.now();
      const ws = new WebSocket(wsUrl, { headers });
      const status = await new Promise<number>((resolve) => {
        ws.once('open', () => resolve(101));
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? -1));
        ws.once('error', () => resolve(-1));
      });
      out.answerMs.push(performance.now() - t0);
      out.statuses.push(status);
      if (status === 101) out.open.push(ws);
    }),
  );
  return out;
}

/** Closes every socket and waits for each close. */
export function closeAll(sockets: WebSocket[]): Promise<unknown> {
  return Promise.all(sockets.map((ws) => new Promise((r) => (ws.once('close', r), ws.close(1000)))));
}

export interface SlowUpgrade {
  /** performance.now() at connect, and when the server closed it (null: still open). */
  t0: number;
  closedAt: number | null;
  /** What the server wrote back (latin1). */
  response: string;
}

/**
 * `sockets` upgrade requests whose headers never finish: one header byte each every
 * `dribbleEveryMs`, until the server cuts each off or `deadlineMs` passes (which throws).
 * `whileOpen` runs once all of them are open.
 */
export async function slowlorisUpgrades(
  port: number,
  sockets: number,
  dribbleEveryMs: number,
  deadlineMs: number,
  whileOpen: () => Promise<void> = () => Promise.resolve(),
): Promise<SlowUpgrade[]> {
  const entries: (SlowUpgrade & { s: Socket })[] = [];
  for (let i = 0; i < sockets; i++) {
    // t0 before connecting: the server's deadline starts at accept, which cannot come earlier. (Taken
    // at the client's 'connect' event, a busy client saw it late and measured lifetimes of ~800 ms
    // against a 1 s deadline.)
    const t0 = performance.now();
    const s = connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const e = { s, t0, closedAt: null as number | null, response: '' };
    s.on('data', (d: Buffer) => (e.response += d.toString('latin1')));
    s.on('error', () => undefined);
    s.once('close', () => (e.closedAt = performance.now()));
    s.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    entries.push(e);
  }
  const dribble = setInterval(() => {
    for (const e of entries) if (e.closedAt === null) e.s.write('X');
  }, dribbleEveryMs);
  try {
    await whileOpen();
    await waitUntil(
      () => entries.every((e) => e.closedAt !== null),
      'every slow upgrade is cut off',
      deadlineMs,
      50,
    );
  } finally {
    clearInterval(dribble);
    for (const e of entries) e.s.destroy();
  }
  return entries.map(({ t0, closedAt, response }) => ({ t0, closedAt, response }));
}
