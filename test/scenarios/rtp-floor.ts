import * as mediasoup from 'mediasoup';
import { expect } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { expectReply } from '../helpers/media.js';
import type { TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';

/*
 * Real RTP end to end, shared by test/media/rtp.test.ts (behaviour: who hears whom, one continuous
 * stream across a change of speaker) and test/stress/rtp.stress.ts (pacing against the wall clock,
 * jitter): libwebrtc peers (@roamhq/wrtc) on loopback, signaling over the server's WebSocket, media
 * through a real mediasoup worker. A sends a continuous tone from the start; the SFU lets it reach B
 * (and the pure listener C) only while A holds the PTT floor, through the room's floor producer,
 * which then switches to B when B takes the floor.
 */

/** Every consumer the server's workers create, by id (mediasoup's observer API; read-only). */
const consumers = new Map<string, mediasoup.types.Consumer>();
export function watchConsumers(): void {
  mediasoup.observer.on('newworker', (w) =>
    w.observer.on('newrouter', (r) =>
      r.observer.on('newtransport', (t) =>
        t.observer.on('newconsumer', (c) => {
          consumers.set(c.id, c);
          c.observer.once('close', () => consumers.delete(c.id));
        }),
      ),
    ),
  );
}

export interface SentRtp {
  seq: number;
  ts: number;
  ssrc: number;
  pt: number;
  /** worker clock, ms */
  at: number;
}

/**
 * The RTP headers a consumer sends to its peer, from mediasoup's 'rtp' trace events: exactly the
 * stream the peer receives. (libwebrtc's own stats cannot show a broken splice: it treats a large
 * sequence jump as a stream restart instead of loss, and ignores timestamp jumps over ~5 s in its
 * jitter estimate.)
 */
async function tapRtp(consumerId: string): Promise<SentRtp[]> {
  const consumer = consumers.get(consumerId);
  if (!consumer) throw new Error(`consumer ${consumerId} not seen`);
  const sent: SentRtp[] = [];
  await consumer.enableTraceEvent(['rtp']);
  consumer.on('trace', (trace) => {
    const p = (trace.info as { rtpPacket?: Record<string, number> } | undefined)?.rtpPacket;
    if (trace.type !== 'rtp' || trace.direction !== 'out' || !p) return;
    // The worker reports each packet more than once; keep one entry per sequence number.
    if (sent.at(-1)?.seq === p.sequenceNumber) return;
    sent.push({
      seq: p.sequenceNumber,
      ts: p.timestamp,
      ssrc: p.ssrc,
      pt: p.payloadType,
      at: trace.timestamp,
    });
  });
  return sent;
}

/**
 * Where a stream is not one continuous RTP stream: another SSRC or payload type, a sequence gap
 * (a lost packet or two on loopback is tolerated; a splice without rewriting jumps by thousands),
 * or an RTP timestamp that does not move forward (mod 2^32), also across the gap between bursts.
 */
export function streamBreaks(sent: SentRtp[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < sent.length; i++) {
    const [p, q] = [sent[i - 1], sent[i]];
    const dSeq = (q.seq - p.seq) & 0xffff;
    const dTs = (q.ts - p.ts) >>> 0;
    if (q.ssrc !== p.ssrc || q.pt !== p.pt) out.push(`#${i}: ssrc/pt ${p.ssrc}/${p.pt} -> ${q.ssrc}/${q.pt}`);
    if (dSeq < 1 || dSeq > 3) out.push(`#${i}: seq ${p.seq} -> ${q.seq}`);
    if (dTs === 0 || dTs >= 2 ** 31) out.push(`#${i}: timestamp ${p.ts} -> ${q.ts} does not increase`);
  }
  return out;
}

/** Where the RTP clock does not advance like the worker's wall clock (within `toleranceMs`). */
export function pacingErrors(sent: SentRtp[], toleranceMs = 100): string[] {
  const out: string[] = [];
  for (let i = 1; i < sent.length; i++) {
    const [p, q] = [sent[i - 1], sent[i]];
    const dTsMs = ((q.ts - p.ts) >>> 0) / 48;
    const dWallMs = q.at - p.at;
    if (Math.abs(dTsMs - dWallMs) > toleranceMs) {
      out.push(`#${i}: timestamp +${dTsMs.toFixed(0)} ms over ${dWallMs} ms of wall clock`);
    }
  }
  return out;
}

export const manifest = {
  allowAdHocRooms: false,
  channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 10 }],
};
const ROOM = 'dispatch';

export interface Window {
  /** Packets received, and lost (by RTP sequence number), during the window. */
  packets: number;
  lost: number;
  /** Highest RTP interarrival jitter (s) and decoded audio level (0..1) seen in the window. */
  maxJitter: number;
  maxLevel: number;
}

/**
 * Watches a peer's inbound audio over `ms`, sampling every 100 ms; with `minPackets`, goes on
 * (up to 10 s) until that many have arrived, so that a slow machine cannot fail a count.
 */
async function watch(peer: WebRtcPeer, ms: number, minPackets = 0): Promise<Window> {
  const first = await peer.inbound();
  let last = first;
  let maxJitter = first.jitter;
  let maxLevel = 0;
  const end = Date.now() + ms;
  const deadline = Date.now() + Math.max(ms, 10_000);
  const enough = () => last.packetsReceived - first.packetsReceived >= minPackets;
  while (Date.now() < end || (!enough() && Date.now() < deadline)) {
    await sleep(100); // sampling interval
    last = await peer.inbound();
    maxJitter = Math.max(maxJitter, last.jitter);
    maxLevel = Math.max(maxLevel, last.audioLevel);
  }
  return {
    packets: last.packetsReceived - first.packetsReceived,
    lost: last.packetsLost - first.packetsLost,
    maxJitter,
    maxLevel,
  };
}

/** Waits (up to `timeoutMs`) for audio to start arriving at `peer`; resolves with the delay. */
async function firstPacket(peer: WebRtcPeer, who: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const start = await peer.packetsReceived();
  await waitUntil(
    async () => (await peer.packetsReceived()) > start,
    `audio reaching ${who} (${peer.states()})`,
    timeoutMs,
    20,
  );
  return Date.now() - t0;
}

export interface FloorRtpOutcome {
  /** What the SFU sent the pure listener C over both talk bursts. */
  toC: SentRtp[];
  /** C's view over both bursts (loss, and the highest interarrival jitter in s). */
  spanC: { packets: number; lost: number; maxJitter: number };
}

/**
 * A and B talk in turn while C listens; asserts who hears whom on the way (behaviour), and returns
 * C's stream for the caller's checks. `clients` and `peers` collect what the caller closes.
 */
export async function floorRtpScenario(
  srv: TestServer,
  clients: TestClient[],
  peers: WebRtcPeer[],
): Promise<FloorRtpOutcome> {
  const connect = async (sub: string) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: `User ${sub}` }));
    clients.push(c);
    return c;
  };
  const started = Date.now();
  const a = await connect('A');
  const b = await connect('B');
  // C only listens, through both talk bursts: it checks the floor producer's stream stays one
  // continuous, decodable RTP stream across a change of speaker (A's and B's consumers are
  // paused while they talk, so mediasoup re-syncs those on resume; C's never pauses).
  const c = await connect('C');
  for (const x of [a, b, c]) expectReply(await x.request('room:join', { roomId: ROOM }), 'room:state');

  const pa = await WebRtcPeer.open(a, ROOM);
  const pb = await WebRtcPeer.open(b, ROOM);
  const pc = await WebRtcPeer.open(c, ROOM);
  peers.push(pa, pb, pc);
  expect(pa.caps.floorProducerId).toEqual(expect.any(String));
  expect(pb.caps.floorProducerId).toBe(pa.caps.floorProducerId);

  // A publishes a tone from the start; in a ptt room its producer starts paused.
  const producedA = await pa.produceTone();
  expect(producedA.paused).toBe(true);
  for (const p of [pa, pb, pc]) await p.consumeFloor();
  const toC = await tapRtp(pc.consumed!.consumerId);
  await waitUntil(
    () =>
      pa.sendPc?.connectionState === 'connected' &&
      [pa, pb, pc].every((p) => p.recvPc?.connectionState === 'connected'),
    `ICE+DTLS connected (A: ${pa.states()}; B: ${pb.states()}; C: ${pc.states()})`,
    5_000,
    20,
  );
  const setupMs = Date.now() - started;

  // ---- 1. A sends, but does not hold the floor: nothing reaches B. ----
  const sentBefore = await pa.packetsSent();
  // A window in which nothing may reach B or C: nobody holds the floor.
  const [idleB, idleC] = await Promise.all([watch(pb, 1_000), watch(pc, 1_000)]);
  const sentIdle = (await pa.packetsSent()) - sentBefore;
  console.log(
    `[rtp] setup ${setupMs} ms; phase 1 (no floor): A sent ${sentIdle}, B received ${idleB.packets}, C ${idleC.packets}`,
  );
  expect(sentIdle).toBeGreaterThanOrEqual(30); // A really is sending all along
  expect(idleB.packets).toBeLessThanOrEqual(5);
  expect(idleC.packets).toBeLessThanOrEqual(5);

  // ---- 2. A takes the floor: B hears A, A does not hear itself. ----
  const baseC = await pc.inbound();
  expectReply(await a.request('ptt:start', { roomId: ROOM }), 'ptt:granted');
  const changed = await b.waitFor(
    (m) => m.type === 'ptt:speaker-changed' && m.payload.speaker !== null,
    3_000,
    'ptt:speaker-changed {speaker: A}',
  );
  expect(changed).toMatchObject({ payload: { roomId: ROOM, speaker: { userId: 'A' } } });
  const firstB = await firstPacket(pb, 'B', 2_000);
  const [talkA_B, talkA_A, talkA_C] = await Promise.all([
    watch(pb, 1_000, 30),
    watch(pa, 1_000),
    watch(pc, 1_000, 30),
  ]);
  console.log(
    `[rtp] phase 2 (A holds floor): first packet at B after ${firstB} ms; in 1 s B received ${talkA_B.packets} ` +
      `(lost ${talkA_B.lost}, level ${talkA_B.maxLevel.toFixed(2)}), C ${talkA_C.packets}; A heard itself: ${talkA_A.packets}`,
  );
  expect(talkA_B.packets).toBeGreaterThanOrEqual(30);
  expect(talkA_C.packets).toBeGreaterThanOrEqual(30);
  expect(talkA_A.packets).toBeLessThanOrEqual(5);

  // ---- 3. A releases the floor: B hears nothing more. ----
  expect(expectReply(await a.request('ptt:stop', { roomId: ROOM }), 'ptt:stopped').payload.held).toBe(true);
  await b.waitFor(
    (m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null,
    3_000,
    'ptt:speaker-changed {speaker: null}',
  );
  await sleep(300); // packets already in flight when the floor was released
  const quietB = await watch(pb, 1_000);
  console.log(`[rtp] phase 3 (floor free): B received ${quietB.packets} in 1 s`);
  expect(quietB.packets).toBeLessThanOrEqual(5);

  // ---- 4. B publishes and takes the floor: the same floor producer now carries B. ----
  const producedB = await pb.produceTone();
  expect(producedB.paused).toBe(true);
  await waitUntil(
    () => pb.sendPc?.connectionState === 'connected',
    `B's send PC connected (${pb.states()})`,
    5_000,
    20,
  );
  expectReply(await b.request('ptt:start', { roomId: ROOM }), 'ptt:granted');
  const changedB = await a.waitFor(
    (m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'B',
    3_000,
    'ptt:speaker-changed {speaker: B}',
  );
  expect(changedB).toMatchObject({ payload: { speaker: { userId: 'B' } } });
  const firstA = await firstPacket(pa, 'A', 2_000);
  const [talkB_A, talkB_B, talkB_C] = await Promise.all([
    watch(pa, 1_000, 30),
    watch(pb, 1_000),
    watch(pc, 1_000, 30),
  ]);
  const endC = await pc.inbound();
  const spanC = {
    packets: endC.packetsReceived - baseC.packetsReceived,
    lost: endC.packetsLost - baseC.packetsLost,
    maxJitter: Math.max(talkA_C.maxJitter, talkB_C.maxJitter),
  };
  console.log(
    `[rtp] phase 4 (B holds floor): first packet at A after ${firstA} ms; in 1 s A received ${talkB_A.packets} ` +
      `(lost ${talkB_A.lost}, level ${talkB_A.maxLevel.toFixed(2)}); B heard itself: ${talkB_B.packets}; ` +
      `C over both bursts: ${spanC.packets} received, ${spanC.lost} lost, max jitter ${(spanC.maxJitter * 1000).toFixed(1)} ms, ` +
      `level in B's burst ${talkB_C.maxLevel.toFixed(2)}`,
  );
  expect(talkB_A.packets).toBeGreaterThanOrEqual(30);
  expect(talkB_A.lost).toBeLessThan(0.2 * talkB_A.packets);
  expect(talkB_B.packets).toBeLessThanOrEqual(5);
  // Across the change of speaker, C sees one stream: no sequence gap counted as loss, no
  // timestamp jump (which would show as a jitter spike of the size of the jump), and the tone
  // (amplitude 8000/32768 ≈ 0.24) decodes from both speakers.
  expect(talkB_C.packets).toBeGreaterThanOrEqual(30);
  expect(spanC.lost).toBeLessThan(0.2 * spanC.packets);
  expect(talkA_C.maxLevel).toBeGreaterThan(0.1);
  expect(talkB_C.maxLevel).toBeGreaterThan(0.1);
  // What the SFU sent C: one SSRC, consecutive sequence numbers, and an RTP clock that follows
  // the wall clock, across both bursts and the silence between them.
  const splice = toC.findIndex((x, i) => i > 0 && x.at - toC[i - 1].at > 500);
  console.log(
    `[rtp] C's stream as sent by the SFU: ${toC.length} packets, ssrc ${toC[0]?.ssrc}, pt ${toC[0]?.pt}; at the change ` +
      `of speaker: seq ${toC[splice - 1]?.seq} -> ${toC[splice]?.seq}, timestamp +${(((toC[splice]?.ts ?? 0) - (toC[splice - 1]?.ts ?? 0)) >>> 0) / 48} ms ` +
      `over ${(toC[splice]?.at ?? 0) - (toC[splice - 1]?.at ?? 0)} ms`,
  );
  expect(splice).toBeGreaterThan(0);
  expect(toC.length).toBeGreaterThanOrEqual(60);
  expectReply(await b.request('ptt:stop', { roomId: ROOM }), 'ptt:stopped');

  // ---- 5. Everyone leaves: the SFU holds nothing any more. ----
  for (const p of [pa, pb, pc]) p.close();
  await Promise.all([a, b, c].map((x) => x.close(1000)));
  const { media } = srv.server.internalsForTesting;
  await waitUntil(
    () => {
      const st = media.stats();
      return st.rooms === 0 && st.transports === 0 && st.producers === 0 && st.consumers === 0;
    },
    `media released (${JSON.stringify(media.stats())})`,
    2_000,
    20,
  );
  console.log(
    `[rtp] phase 5: media stats after close ${JSON.stringify(media.stats())}; total ${Date.now() - started} ms`,
  );
  return { toC, spanC };
}
