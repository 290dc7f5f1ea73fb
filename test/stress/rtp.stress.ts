import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestClient } from '../helpers/client.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import type { WebRtcPeer } from '../helpers/webrtc-peer.js';
import {
  floorRtpScenario,
  manifest,
  pacingErrors,
  streamBreaks,
  watchConsumers,
} from '../scenarios/rtp-floor.js';

/*
 * The floor RTP scenario (test/media/rtp.test.ts runs it for behaviour), with the timing checks
 * moved out of the default suite: the RTP clock of C's stream advances like the wall clock, also
 * across the silence between bursts, and C's interarrival jitter stays low.
 */

describe('real RTP through the SFU: pacing', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];

  beforeAll(async () => {
    assertLoopbackOnly();
    watchConsumers();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', PTT_LOCK_TTL_MS: '2000' }, manifest);
  });
  afterAll(async () => {
    for (const p of peers) p.close();
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('the floor producer’s stream is paced in real time across a change of speaker', async () => {
    const { toC, spanC } = await floorRtpScenario(srv, clients, peers);
    expect(streamBreaks(toC)).toEqual([]);
    // A timestamp jump at the splice would also show as a jitter spike of the size of the jump.
    expect(spanC.maxJitter).toBeLessThan(0.1);
    expect(pacingErrors(toC, 100)).toEqual([]);
  }, 60_000);
});
