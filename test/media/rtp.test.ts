import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestClient } from '../helpers/client.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import type { WebRtcPeer } from '../helpers/webrtc-peer.js';
import { floorRtpScenario, manifest, streamBreaks, watchConsumers } from '../scenarios/rtp-floor.js';

/*
 * Real RTP through the SFU follows the PTT floor (test/scenarios/rtp-floor.ts). Behaviour only:
 * who hears whom, and that C gets one continuous stream across the change of speaker. Pacing
 * against the wall clock and jitter: test/stress/rtp.stress.ts.
 */

describe('real RTP through the SFU follows the PTT floor', () => {
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

  it('a speaker is heard only while holding the floor, and the floor producer switches speakers', async () => {
    const { toC } = await floorRtpScenario(srv, clients, peers);
    // One SSRC, consecutive sequence numbers, timestamps strictly increasing: every packet
    // arrived, in order, across both bursts and the silence between them.
    expect(streamBreaks(toC)).toEqual([]);
  }, 60_000);
});
