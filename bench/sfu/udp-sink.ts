/**
 * RTP sink for the SFU scenarios, in its own process: a few UDP sockets on 127.0.0.1 that the
 * consumers' (SRTP) PlainTransports send to. Counts RTP packets per SSRC (the RTP header is in the
 * clear under SRTP) and, from the sequence numbers, how many each stream should have had in the
 * window: loss = gaps in a consumer's sequence, wherever they arose (ingress, worker, pipe, sink).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { serve } from '../lib/ipc.js';
import { sleep } from '../lib/stats.js';

/** A packet later than this behind its stream's own pace misses any jitter buffer: it counts as lost. */
const LATE_MS = 100;

const PACKET_MS = 20;

interface Stream {
  received: number;
  /** Per packet: arrival minus its due time (send time, or the stream's own 20 ms pace). */
  offsets: number[];
  firstAt: number;
  /** Extended sequence numbers (with wrap-arounds) of the first and highest packet seen. */
  first: number;
  highest: number;
  cycles: number;
  lastSeq: number;
}

let sockets: Socket[] = [];
/** When this process is also the sender (per-worker curve): send time of the k-th packet of the burst. */
let sentAt: number[] | null = null;
let out: Socket | null = null;
let blackhole: Socket | null = null;
let streams = new Map<number, Stream>();
let rtcp = 0;
let rtpTotal = 0;
/** RTP packets per 250 ms since the last reset (all streams): shows stalls in a window. */
let timeline: number[] = [];
let resetAt = performance.now();

function onPacket(msg: Buffer): void {
  if (msg.length < 12) return;
  const pt = msg[1] & 0x7f;
  if (pt >= 72 && pt <= 76) {
    rtcp++; // RTCP (SR/RR/SDES/BYE/APP share the first header bytes)
    return;
  }
  const ssrc = msg.readUInt32BE(8);
  const seq = msg.readUInt16BE(2);
  let s = streams.get(ssrc);
  if (!s) {
    const at = performance.now();
    s = {
      received: 0,
      offsets: [sentAt ? at - sentAt[0] : 0],
      firstAt: at,
      first: seq,
      highest: seq,
      cycles: 0,
      lastSeq: seq,
    };
    streams.set(ssrc, s);
  } else {
    if (seq < 0x1000 && s.lastSeq > 0xf000) s.cycles += 0x10000;
    const ext = s.cycles + seq;
    if (ext > s.highest) s.highest = ext;
    s.lastSeq = seq;
    // When this process sent the packets, lateness is against each packet's send time (the
    // stream's first packet after a reset is packet 0 of the burst); otherwise against the
    // stream's own 20 ms pace, taking its earliest packet as on time (as a jitter buffer would).
    const k = ext - s.first;
    const now = performance.now();
    s.offsets.push(sentAt && k < sentAt.length ? now - sentAt[k] : now - s.firstAt - k * PACKET_MS);
  }
  s.received++;
  rtpTotal++;
  const slot = Math.floor((performance.now() - resetAt) / 250);
  timeline[slot] = (timeline[slot] ?? 0) + 1;
}

serve({
  async open(a: { count: number }) {
    sockets = await Promise.all(
      Array.from(
        { length: a.count },
        () =>
          new Promise<Socket>((resolve) => {
            const s = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
            s.on('message', onPacket);
            s.bind(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    // A black hole for the streams that are not sampled (channel test): bound, but never read, with
    // a minimal receive buffer, so the kernel takes each packet and drops it without waking anyone.
    // Node has no public way to stop reading a UDP socket; its handle's recvStop() does exactly that.
    const hole = createSocket({ type: 'udp4', recvBufferSize: 2_048 });
    await new Promise<void>((r) => hole.bind(0, '127.0.0.1', () => r()));
    (Reflect.get(hole, '_handle') as { recvStop(): number }).recvStop();
    blackhole = hole;
    return { ports: sockets.map((s) => s.address().port), blackholePort: hole.address().port };
  },

  /**
   * Sends `packets` Opus-sized RTP packets (payload type `pt`, `ssrc`) to 127.0.0.1:`port` at 50/s,
   * paced on the clock, recording each send time; marks bracket the burst.
   */
  async burst(a: { port: number; packets: number; ssrc: number; pt: number; seq0: number }, emit) {
    // One source socket for the process's life: a comedia transport locks onto the first source.
    if (!out) {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      out = sock;
    }
    const payload = randomBytes(100);
    sentAt = [];
    emit('mark', 'start');
    const t0 = performance.now();
    for (let i = 0; i < a.packets; i++) {
      const wait = t0 + i * PACKET_MS - performance.now();
      if (wait > 1) await sleep(wait);
      const pkt = Buffer.allocUnsafe(12 + payload.length);
      pkt[0] = 0x80;
      pkt[1] = a.pt;
      pkt.writeUInt16BE((a.seq0 + i) & 0xffff, 2);
      pkt.writeUInt32BE(((a.seq0 + i) * 960) >>> 0, 4);
      pkt.writeUInt32BE(a.ssrc, 8);
      payload.copy(pkt, 12);
      sentAt.push(performance.now());
      out.send(pkt, a.port, '127.0.0.1');
    }
    emit('mark', 'end');
    const jitter = sentAt.map((t, i) => t - (t0 + i * PACKET_MS));
    return { sent: a.packets, maxSendLagMs: Math.round(Math.max(...jitter)) };
  },

  reset() {
    sentAt = null;
    streams = new Map();
    rtcp = 0;
    rtpTotal = 0;
    timeline = [];
    resetAt = performance.now();
    return null;
  },

  /**
   * Per SSRC: [ssrc, received, expected-from-sequence-span, late (> 100 ms), max lateness ms], once no RTP has arrived for `quietMs`
   * (the sink may lag behind the senders; what is queued in its socket buffers is not lost).
   */
  async stats(a: { quietMs?: number } = {}) {
    const quiet = a.quietMs ?? 300;
    const deadline = quiet > 0 ? performance.now() + 10_000 : 0;
    let last = -1;
    let quietSince = performance.now();
    while (performance.now() < deadline) {
      if (rtpTotal !== last) {
        last = rtpTotal;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= quiet) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const rows: [number, number, number, number, number][] = [];
    for (const [ssrc, s] of streams) {
      const base = sentAt ? 0 : Math.min(...s.offsets);
      let late = 0;
      let maxLate = 0;
      for (const o of s.offsets) {
        const l = o - base;
        if (l > LATE_MS) late++;
        if (l > maxLate) maxLate = l;
      }
      rows.push([ssrc, s.received, s.highest - s.first + 1, late, Math.round(maxLate)]);
    }
    return { rows, rtcp, timeline: Array.from(timeline, (n) => n ?? 0) };
  },

  close() {
    for (const s of sockets) s.close();
    sockets = [];
    out?.close();
    out = null;
    blackhole?.close();
    blackhole = null;
    return null;
  },
});
