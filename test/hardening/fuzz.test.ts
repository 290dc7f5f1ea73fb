import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { runFuzz } from './lib/fuzz-run.js';
import { Pinger } from './lib/pinger.js';
import { runProtocolViolations } from './lib/protocol-violations.js';
import { reportFigures } from './lib/stats.js';

/*
 * Short fuzz run (npm test): the systematic sweep (every client message type × every field ×
 * every mutation) and random frames of every family, 5,000 frames in all over 16 connections,
 * against an in-process server with a real mediasoup worker. The long run (≥ 100,000 frames
 * against a real server process) is test/stress/fuzz.stress.ts.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const FRAMES = 5_000;
const MAX_FRAME_BYTES = 65_536;

describe('fuzzing the signaling server (short)', () => {
  let srv: TestServer;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    assertLoopbackOnly();
    process.on('unhandledRejection', onUnhandled);
    srv = await startServer({
      MEDIASOUP_WORKERS: '1',
      RATE_LIMIT_PER_SEC: '0',
      RESUME_GRACE_MS: '300',
      AUTH_TIMEOUT_MS: '60000',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await srv.close();
  });

  it(`answers ${FRAMES} hostile frames with catalogue codes, never crashes, and a calm client is unaffected`, async () => {
    const pinger = await Pinger.start(srv.wsUrl, await srv.token({ sub: 'calm' }));
    const figures = await runFuzz({
      wsUrl: srv.wsUrl,
      tokenFor: (sub) => srv.token({ sub }),
      seed: SEED,
      frames: FRAMES,
      connections: 16,
      framesPerConnection: 250,
      maxFrameBytes: MAX_FRAME_BYTES,
      rooms: ['lobby', 'dispatch', 'fz-room'],
      // No time budget here: a budget makes a loaded machine send fewer frames and fail a
      // behaviour test on speed. The stress suite keeps its budgets.
    });
    const violations = await runProtocolViolations(srv.port, (sub) => srv.token({ sub }));
    await pinger.stop();
    const internal = srv.logs.filter((l) => l.msg === 'handler failed' || l.level === 60);
    reportFigures('fuzz-short', {
      ...figures,
      violations: figures.violations.length,
      firstViolations: figures.violations.slice(0, 5),
      protocolViolations: violations.cases,
      calmClientRttMs: pinger.summary(),
      unhandledRejections: unhandled.length,
      handlerFailedLogLines: internal.length,
    });

    expect(figures.frames).toBe(FRAMES);
    expect(figures.violations).toEqual([]);
    expect(violations.failures).toEqual([]);
    expect(unhandled).toEqual([]);
    expect(internal).toEqual([]);
    // The calm client: never refused, never closed, every ping answered.
    expect(pinger.errors).toEqual([]);
    expect(pinger.closedWith).toBe(1000);
    expect(pinger.unanswered()).toBe(0);
    expect(pinger.rtts.length).toBeGreaterThan(100);

    // Nothing leaks: with every connection closed, the server is back to empty.
    const { sessions, rooms, media, relay, gateway } = srv.server.internalsForTesting;
    await waitUntil(
      async () => sessions.size === 0 && (await rooms.roomCount()) === 0,
      'sessions and rooms drain',
      5_000,
    );
    expect(gateway.connectionCount).toBe(0);
    expect(relay.calls.size).toBe(0);
    expect(media.stats()).toMatchObject({ rooms: 0, transports: 0, producers: 0, consumers: 0 });
    expect((await fetch(`${srv.httpUrl}/health`)).status).toBe(200);
    // 9 s alone; vitest's default 20 s cut it off on a loaded 2-core machine, so the test gets a
    // generous cap. Behaviour is asserted above, never speed.
  }, 180_000);
});
