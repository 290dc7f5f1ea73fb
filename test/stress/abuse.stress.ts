import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {} from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import {
  closeAll,
  floodAmongCalmClients,
  slowlorisUpgrades,
  sumFloods,
  upgradesFromOneAddress,
} from '../scenarios/abuse.js';
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
    const run = await floodAmongCalmClients(proc.wsUrl, tokenFor, {
      calm: 8,
      pingEveryMs: 10,
      rounds: 30,
      calmWindowMs: 300,
    });
    const { floods, calm, baseRtts: base, floodedRtts: flooded } = run;
    try {
      calm.forEach((p) => p.mark());
      const tokens = await Promise.all(Array.from({ length: 400 }, (_, i) => tokenFor(`swarm${i}`)));
      const swarm = await floodFromWorker(proc.wsUrl, tokens, 4, 5_000);
      const swarmRtts = calm.flatMap((p) => p.window());
      const sum = (f: (x: FloodResult) => number) => sumFloods(floods, f);
      // 2× the calm baseline, the baseline floored at 5 ms: below that, scheduler noise on a shared
      // 2-vCPU machine (not the flooder) decides the ratio.
      const bound = 2 * Math.max(percentile(base, 99), 5);
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
      // Moved here from test/hardening/abuse.test.ts: the calm clients' p99 under a flood.
      expect(percentile(flooded, 99)).toBeLessThanOrEqual(bound);
      expect(swarm.closedWith['1008'] ?? 0).toBe(swarm.opened);
    } finally {
      await run.stop();
    }
    for (const p of calm) {
      expect(p.errors).toEqual([]);
      expect(p.closedWith).toBe(1000);
    }
  });

  it('1,000 concurrent upgrades from one address: exactly MAX_CONNECTIONS_PER_IP (100) get in', async () => {
    await waitUntil(async () => (await proc.health()).body.connections === 0, 'quiet', 10_000, 100);
    const t0 = performance.now();
    const { statuses, open } = await upgradesFromOneAddress(proc.wsUrl, tokenFor, 1_000);
    const ms = performance.now() - t0;
    // The load balancer's health check comes from its own address: the flooding address holds
    // only its share (4) of the /health reserve, all taken by its own refused upgrades.
    const health = await proc.health('127.0.0.9');
    const rss = proc.rss();
    await closeAll(open);
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

  it('500 slowloris upgrades against the default 10 s headers deadline: the address’s 100 + 4 cut off at 10-11 s, the rest refused at once; others served', async () => {
    const pinger = await Pinger.start(proc.wsUrl, await tokenFor('calm-slow'), 'lobby', 50);
    const N = 500;
    let healthDuring = { status: 0 };
    const entries = await slowlorisUpgrades(proc.port, N, 1_000, 20_000, async () => {
      healthDuring = await proc.health('127.0.0.9');
    });
    await pinger.stop();
    // From one address: MAX_CONNECTIONS_PER_IP (100) sockets are admitted and 4 more held in the /health
    // reserve (its share); those dribble until the deadline. The rest are refused (429) at accept.
    const held = entries.filter((e) => e.response.startsWith('HTTP/1.1 408'));
    const refusedAtOnce = entries.filter((e) => e.response.startsWith('HTTP/1.1 429'));
    const lifetimes = held.map((e) => e.closedAt! - e.t0);
    reportFigures('abuse-slowloris-long', {
      sockets: N,
      held: held.length,
      refusedAtOnce: refusedAtOnce.length,
      headersTimeoutMs: 10_000,
      cutOffAfterMs: summarize(lifetimes),
      minMs: round(Math.min(...lifetimes), 0),
      responses: [...new Set(entries.map((e) => e.response.split('\r\n')[0]))],
      healthDuring: healthDuring.status,
      calmClientRttMs: pinger.summary(),
    });
    // The calm pinger, on the same address, holds one of its 100.
    expect(held).toHaveLength(99 + 4);
    expect(refusedAtOnce).toHaveLength(N - held.length);
    expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(9_900);
    // headersTimeout + the 1 s sweep (+ slack): the bound test/hardening/abuse.test.ts no longer checks.
    expect(Math.max(...lifetimes)).toBeLessThan(11_500);
    expect(pinger.errors).toEqual([]);
    expect(healthDuring.status).toBe(200);
  });
});
