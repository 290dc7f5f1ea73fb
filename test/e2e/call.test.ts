import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Call, CallEndReason, ParleyClient } from '../../src/client/index.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { openSdkPage, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface CallPage {
  parley: ParleyClient;
  call: Call | null;
  ended: CallEndReason[];
  states: string[];
}

declare global {
  interface Window {
    callTest: CallPage;
  }
}

/** Connects the SDK in the page and keeps the current call (placed or received) on window.callTest. */
async function connect(b: BrowserPage, token: string): Promise<void> {
  await b.page.evaluate(async (token) => {
    const parley = await window.Parley.ParleyClient.connect({ url: location.origin, token });
    // A call rings users who share a room with the caller (CALL_POLICY=shared-room, the default):
    // both pages sit in the lobby, as demo users call each other from a channel's member list.
    await parley.signaling.joinRoom('lobby');
    const t: CallPage = { parley, call: null, ended: [], states: [] };
    window.callTest = t;
    parley.calls.on('incoming', (call) => {
      t.call = call;
      call.on('stateChanged', (s) => t.states.push(s));
      call.on('ended', ({ reason }) => t.ended.push(reason));
    });
  }, token);
}

const stats = (b: BrowserPage) =>
  b.page.evaluate(async () => {
    const s = await window.callTest.call?.getAudioStats();
    return {
      sent: s?.packetsSent ?? 0,
      received: s?.packetsReceived ?? 0,
      pair: s?.selectedCandidatePair ?? null,
    };
  });

describe('1:1 call between two Chromium pages (Perfect Negotiation)', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    // P2P only: no SFU needed. No STUN servers: loopback host candidates are all there is.
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' }, manifest: { stunUrls: [] } });
    [alice, bob] = await Promise.all([openSdkPage(srv), openSdkPage(srv)]);
    await connect(alice, await srv.token('alice', 'Alice'));
    await connect(bob, await srv.token('bob', 'Bob'));
  });

  afterAll(async () => {
    const errors = [...(alice?.errors ?? []), ...(bob?.errors ?? [])];
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('rings, is accepted, carries audio both ways, survives glare, and hangs up cleanly on both sides', async () => {
    // ---- ring ----
    await alice.page.evaluate(async () => {
      const t = window.callTest;
      const call = await t.parley.calls.call('bob', { name: 'Bob' });
      t.call = call;
      call.on('stateChanged', (s) => t.states.push(s));
      call.on('ended', ({ reason }) => t.ended.push(reason));
    });
    await bob.page.waitForFunction(() => window.callTest.call?.state === 'ringing');
    const ringing = await bob.page.evaluate(() => ({
      from: window.callTest.call?.peer,
      direction: window.callTest.call?.direction,
    }));
    expect(ringing).toEqual({ from: { userId: 'alice', name: 'Alice' }, direction: 'incoming' });
    expect(await alice.page.evaluate(() => window.callTest.call?.state)).toBe('ringing');

    // ---- accept: both sides reach `active` ----
    const t0 = Date.now();
    await bob.page.evaluate(() => window.callTest.call?.accept());
    await Promise.all(
      [alice, bob].map((p) => p.page.waitForFunction(() => window.callTest.call?.state === 'active')),
    );
    const setupMs = Date.now() - t0;
    expect(await alice.page.evaluate(() => window.callTest.states)).toEqual(['connecting', 'active']);
    expect(await bob.page.evaluate(() => window.callTest.states)).toEqual(['connecting', 'active']);

    // ---- audio both ways ----
    const before = await Promise.all([stats(alice), stats(bob)]);
    let after = before;
    const got = (i: number) => after[i].received - before[i].received;
    // 30 packets each way (Opus: 50 packets/s); the deadline only bounds the wait.
    await waitUntil(
      async () => {
        after = await Promise.all([stats(alice), stats(bob)]);
        return got(0) > 30 && got(1) > 30;
      },
      'audio both ways',
      10_000,
      50,
    );
    const [aliceGot, bobGot] = [got(0), got(1)];
    expect(after[0].pair?.localType).toBe('host');

    // ---- glare: both sides add a track at the same instant, so both make an offer ----
    let collisions = 0;
    for (let round = 0; round < 3 && collisions === 0; round++) {
      const at = Date.now() + 400;
      await Promise.all(
        [alice, bob].map((p) =>
          p.page.evaluate(async (at) => {
            const pcm = window.callTest.call?.peerConnection;
            const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
            const track = stream.getAudioTracks()[0];
            if (!pcm || !track) throw new Error('no call or no track');
            await new Promise((r) => setTimeout(r, at - Date.now()));
            pcm.addTrack(track, stream);
          }, at),
        ),
      );
      // Converged: both stable, connected, every transceiver sending and receiving.
      await waitUntil(
        async () => {
          const s = await Promise.all(
            [alice, bob].map((p) =>
              p.page.evaluate(() => {
                const pcm = window.callTest.call?.peerConnection;
                const pc = pcm?.pc;
                return {
                  stable: pc?.signalingState === 'stable',
                  connected: pc?.connectionState === 'connected',
                  directions: pc?.getTransceivers().map((t) => t.currentDirection) ?? [],
                  makingOffer: pcm?.negotiationStateForTesting.makingOffer ?? true,
                };
              }),
            ),
          );
          return s.every(
            (x) =>
              x.stable &&
              x.connected &&
              !x.makingOffer &&
              x.directions.length === 2 + round &&
              x.directions.every((d) => d === 'sendrecv'),
          );
        },
        'both peers to converge after glare',
        8_000,
        50,
      );
      const counters = await Promise.all(
        [alice, bob].map((p) => p.page.evaluate(() => window.callTest.call?.peerConnection?.counters)),
      );
      // Alice (caller) is impolite: she ignores Bob's offer; Bob (polite) rolls his back and answers.
      collisions = (counters[0]?.ignoredOffers ?? 0) + (counters[1]?.rollbacks ?? 0);
      console.info(
        `glare round ${round + 1}: alice ${JSON.stringify(counters[0])}, bob ${JSON.stringify(counters[1])}`,
      );
    }
    expect(collisions).toBeGreaterThan(0);
    const g0 = await Promise.all([stats(alice), stats(bob)]);
    await waitUntil(
      async () => {
        const g1 = await Promise.all([stats(alice), stats(bob)]);
        return g1[0].received - g0[0].received > 30 && g1[1].received - g0[1].received > 30;
      },
      'audio both ways after glare',
      10_000,
      50,
    );

    // ---- hang up: both sides clean up, and so does the server ----
    await alice.page.evaluate(() => window.callTest.call?.hangup());
    await bob.page.waitForFunction(() => window.callTest.ended.length > 0);
    const cleanup = await Promise.all(
      [alice, bob].map((p) =>
        p.page.evaluate(() => ({
          ended: window.callTest.ended,
          pc: window.callTest.call?.peerConnection?.pc.connectionState,
          closed: window.callTest.call?.peerConnection?.closed,
          calls: window.callTest.parley.calls.calls.length,
          remoteTracks: window.callTest.call?.remoteStream.getTracks().length,
        })),
      ),
    );
    expect(cleanup[0]).toEqual({ ended: ['hangup'], pc: 'closed', closed: true, calls: 0, remoteTracks: 0 });
    expect(cleanup[1]).toEqual({
      ended: ['remote-hangup'],
      pc: 'closed',
      closed: true,
      calls: 0,
      remoteTracks: 0,
    });
    expect(srv.server.internalsForTesting.relay.calls.size).toBe(0);
    console.info(
      `call: setup ${setupMs} ms (accept → active both sides); packets: alice got ${aliceGot}, bob got ${bobGot}`,
    );
  });

  it('rejecting, and calling someone who shares no room (here: offline), end the call with the right reason', async () => {
    await alice.page.evaluate(async () => {
      const t = window.callTest;
      t.ended = [];
      const call = await t.parley.calls.call('bob', { name: 'Bob' });
      t.call = call;
      call.on('ended', ({ reason }) => t.ended.push(reason));
    });
    await bob.page.waitForFunction(() => window.callTest.call?.state === 'ringing');
    await bob.page.evaluate(() => window.callTest.call?.reject());
    await alice.page.waitForFunction(() => window.callTest.ended.length > 0);
    expect(await alice.page.evaluate(() => window.callTest.ended)).toEqual(['rejected']);

    // CALL_POLICY=shared-room: "nobody" shares no room with Alice, and the server does not say
    // whether they are online.
    const stranger = await alice.page.evaluate(async () => {
      const call = await window.callTest.parley.calls.call('nobody');
      return new Promise<string>((resolve) => call.on('ended', ({ reason }) => resolve(reason)));
    });
    expect(stranger).toBe('not-allowed');
  });
});
