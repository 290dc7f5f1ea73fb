import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { sleep, waitUntil } from '../helpers/wait.js';
import { floodFromWorker, type FloodResult } from '../hardening/lib/flood.js';
import { Pinger } from '../hardening/lib/pinger.js';
import { startProc, tokenFor, type HardProc } from '../hardening/lib/proc.js';
import { percentile, reportFigures, round, summarize } from '../hardening/lib/stats.js';

/*
 * Abuse, bigger and with production defaults (test/hardening/abuse.test.ts has the short ones):
 * 30 flooders one after another against a calm baseline, then a swarm of 4 at once reconnecting;
 * 1,000 concurrent upgrades from one address; 500 slowloris upgrades against the default 10 s
 * headers deadline.
 */

const MiB = 2 ** 20;

describe('abuse at scale against a real server process (defaults)', () => {
  let proc: HardProc;
  beforeAll(async () => {
    proc = await startProc({ RESUME_GRACE_MS: '0' });
  });
  afterAll(() => proc.stop());

  it('30 flooders in turn: each RATE_LIMITED then 1008; calm p99 within 2× of baseline. Then a swarm of 4 at once', async () => {
    const calm = await Promise.all(
      Array.from({ length: 8 }, async (_, i) =>
        Pinger.start(proc.wsUrl, await tokenFor(`calm${i}`), 'lobby', 10),
      ),
    );
    const base: number[] = [];
    const flooded: number[] = [];
    const floods: FloodResult[] = [];
    try {
      await sleep(500);
      for (let r = 0; r < 30; r++) {
        calm.forEach((p) => p.mark());
        await sleep(300);
        base.push(...calm.flatMap((p) => p.window()));
        calm.forEach((p) => p.mark());
        floods.push(await floodFromWorker(proc.wsUrl, [await tokenFor(`flood${r}`)]));
        flooded.push(...calm.flatMap((p) => p.window()));
      }
      calm.forEach((p) => p.mark());
      const tokens = await Promise.all(Array.from({ length: 400 }, (_, i) => tokenFor(`swarm${i}`)));
      const swarm = await floodFromWorker(proc.wsUrl, tokens, 4, 5_000);
      const swarmRtts = calm.flatMap((p) => p.window());
      const sum = (f: (x: FloodResult) => number) => floods.reduce((s, x) => s + f(x), 0);
      const bound = 2 * Math.max(percentile(base, 99), 2);
      reportFigures('abuse-flood-long', {
        flooders: sum((f) => f.opened),
        closed1008: sum((f) => f.closedWith['1008'] ?? 0),
        rateLimitedFirst: sum((f) => f.rateLimited),
        floodFramesSent: sum((f) => f.framesSent),
        msToClose: summarize(floods.flatMap((f) => f.msToClose)),
        calmBaselineRttMs: summarize(base),
        calmUnderFloodRttMs: summarize(flooded),
        p99BoundMs: round(bound),
        swarm: {
          concurrency: 4,
          seconds: 5,
          flooders: swarm.opened,
          closed1008: swarm.closedWith['1008'] ?? 0,
          framesSent: swarm.framesSent,
          calmRttMs: summarize(swarmRtts),
        },
      });
      expect(sum((f) => f.closedWith['1008'] ?? 0)).toBe(30);
      expect(sum((f) => f.rateLimited)).toBe(30);
      expect(percentile(flooded, 99)).toBeLessThanOrEqual(bound);
      expect(swarm.closedWith['1008'] ?? 0).toBe(swarm.opened);
    } finally {
      await Promise.all(calm.map((p) => p.stop()));
    }
    for (const p of calm) {
      expect(p.errors).toEqual([]);
      expect(p.closedWith).toBe(1000);
    }
  });

  it('1,000 concurrent upgrades from one address: exactly MAX_CONNECTIONS_PER_IP (100) get in', async () => {
    await waitUntil(async () => (await proc.health()).body.connections === 0, 'quiet', 10_000, 100);
    const tokens = await Promise.all(Array.from({ length: 1_000 }, (_, i) => tokenFor(`ip${i}`)));
    const open: WebSocket[] = [];
    const statuses: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      tokens.map(async (token) => {
        const ws = new WebSocket(proc.wsUrl, { headers: { authorization: `Bearer ${token}` } });
        const status = await new Promise<number>((resolve) => {
          ws.once('open', () => resolve(101));
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? -1));
          ws.once('error', () => resolve(-1));
        });
        statuses.push(status);
        if (status === 101) open.push(ws);
      }),
    );
    const ms = performance.now() - t0;
    const health = await proc.health();
    const rss = proc.rss();
    await Promise.all(open.map((ws) => new Promise((r) => (ws.once('close', r), ws.close(1000)))));
    reportFigures('abuse-per-ip-long', {
      attempts: 1_000,
      accepted: statuses.filter((s) => s === 101).length,
      refused429: statuses.filter((s) => s === 429).length,
      other: statuses.filter((s) => s !== 101 && s !== 429).length,
      allAnsweredInMs: round(ms, 0),
      health: health.status,
      rssMiB: round(rss / MiB),
    });
    expect(statuses.filter((s) => s === 101)).toHaveLength(100);
    expect(statuses.filter((s) => s === 429)).toHaveLength(900);
    expect(health.status).toBe(200);
  });

  it('500 slowloris upgrades against the default 10 s headers deadline: all cut off at 10-11 s; others served', async () => {
    const pinger = await Pinger.start(proc.wsUrl, await tokenFor('calm-slow'), 'lobby', 50);
    const N = 500;
    const entries: { s: Socket; t0: number; closedAt: number | null; response: string }[] = [];
    for (let i = 0; i < N; i++) {
      const s = connect(proc.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const e = { s, t0: performance.now(), closedAt: null as number | null, response: '' };
      s.on('data', (d: Buffer) => (e.response += d.toString('latin1')));
      s.on('error', () => undefined);
      s.once('close', () => (e.closedAt = performance.now()));
      s.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      entries.push(e);
    }
    const dribble = setInterval(() => {
      for (const e of entries) if (e.closedAt === null) e.s.write('X');
    }, 1_000);
    const healthDuring = await proc.health();
    await waitUntil(() => entries.every((e) => e.closedAt !== null), 'all cut off', 20_000, 100);
    clearInterval(dribble);
    await pinger.stop();
    const lifetimes = entries.map((e) => e.closedAt! - e.t0);
    reportFigures('abuse-slowloris-long', {
      sockets: N,
      headersTimeoutMs: 10_000,
      cutOffAfterMs: summarize(lifetimes),
      minMs: round(Math.min(...lifetimes), 0),
      responses: [...new Set(entries.map((e) => e.response.split('\r\n')[0]))],
      healthDuring: healthDuring.status,
      calmClientRttMs: pinger.summary(),
    });
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(9_900);
    expect(Math.max(...lifetimes)).toBeLessThan(11_500);
    expect(pinger.errors).toEqual([]);
    expect(healthDuring.status).toBe(200);
  });
});
