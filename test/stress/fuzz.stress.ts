import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { runFuzz } from '../hardening/lib/fuzz-run.js';
import { Pinger } from '../hardening/lib/pinger.js';
import { startProc, tokenFor, type HardProc } from '../hardening/lib/proc.js';
import { runProtocolViolations } from '../hardening/lib/protocol-violations.js';
import { reportFigures } from '../hardening/lib/stats.js';

/*
 * Long fuzz run: ≥ 100,000 frames (FUZZ_FRAMES) over 64 concurrent connections, recycled every 400
 * frames, against a real server process with a real mediasoup worker; the framing attacks 20 times
 * over; a calm client pinging throughout. Then: the process is alive, /health is ok, and its log has
 * no fatal, unhandled or "handler failed" line.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 0xc0ffee);
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 120_000);

describe('fuzzing a real server process (long)', () => {
  let proc: HardProc;
  beforeAll(async () => {
    assertLoopbackOnly();
    proc = await startProc({
      MEDIASOUP_WORKERS: '1',
      RATE_LIMIT_PER_SEC: '0',
      RESUME_GRACE_MS: '500',
      AUTH_TIMEOUT_MS: '120000',
      MAX_CONNECTIONS_PER_IP: '200',
    });
  });
  afterAll(() => proc.stop());

  it(`${FRAMES} frames: no crash, no unhandled rejection, every answer from the catalogue, a calm client unaffected`, async () => {
    const pinger = await Pinger.start(proc.wsUrl, await tokenFor('calm'), 'lobby', 20);
    const rss0 = proc.rss();
    const figures = await runFuzz({
      wsUrl: proc.wsUrl,
      tokenFor: (sub) => tokenFor(sub),
      seed: SEED,
      frames: FRAMES,
      connections: 64,
      framesPerConnection: 400,
      maxFrameBytes: 65_536,
      rooms: ['lobby', 'dispatch', 'field-ops', 'fz-room'],
      budgetMs: 15 * 60_000,
      progressEvery: 20_000,
    });
    const framing = [];
    for (let i = 0; i < 20; i++) framing.push(await runProtocolViolations(proc.port, (sub) => tokenFor(sub)));
    await pinger.stop();
    const health = await proc.health();
    const fatal = proc.fatalLines();
    const rss1 = proc.rss();
    reportFigures('fuzz-long', {
      ...figures,
      violations: figures.violations.length,
      firstViolations: figures.violations.slice(0, 10),
      framingCases: framing.length * framing[0].cases.length,
      framingFailures: framing.flatMap((f) => f.failures),
      framingOutcomes: framing[0].cases.map((c) => `${c.name}: ${c.got}`),
      processAlive: proc.alive(),
      health: health.body,
      fatalLogLines: fatal.length,
      firstFatal: fatal.slice(0, 3),
      calmClientRttMs: pinger.summary(),
      rssBeforeMiB: Math.round(rss0 / 2 ** 20),
      rssAfterMiB: Math.round(rss1 / 2 ** 20),
    });
    expect(figures.frames).toBe(FRAMES);
    expect(figures.violations).toEqual([]);
    expect(framing.flatMap((f) => f.failures)).toEqual([]);
    expect(proc.alive()).toBe(true);
    expect(health.status).toBe(200);
    expect(fatal).toEqual([]);
    expect(pinger.errors).toEqual([]);
    expect(pinger.closedWith).toBe(1000);
    expect(pinger.unanswered()).toBe(0);
  });
});
