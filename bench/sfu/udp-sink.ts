/**
 * RTP sink for the SFU scenarios, in its own process: a few UDP sockets on 127.0.0.1 that the
 * consumers' (SRTP) PlainTransports send to. Counts RTP packets per SSRC (the RTP header is in the
 * clear under SRTP) and, from the sequence numbers, how many each stream should have had in the
 * window: loss = gaps in a consumer's sequence, wherever they arose (ingress, worker, pipe, sink).
 * It is also the RTP source of the per-worker tests (Opus `burst`, VP8 `videoBurst`), so that it
 * knows when each packet was sent.
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
/**
 * Video bursts: send time of each frame, keyed by its RTP timestamp. mediasoup's SimpleConsumer
 * rewrites SSRC and sequence numbers but keeps the timestamp, and every producer's timestamps are
 * distinct (see videoBurst), so a consumer's packet finds the frame it belongs to.
 */
let frameSentAt: Map<number, number> | null = null;
let out: Socket | null = null;
/** Per video producer (SSRC), across bursts: next sequence number, next frame, timestamp index. */
const videoState = new Map<number, { seq: number; frame: number; index: number }>();
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
  const frameAt = frameSentAt?.get(msg.readUInt32BE(4));
  if (!s) {
    const at = performance.now();
    s = {
      received: 0,
      offsets: [frameSentAt ? at - (frameAt ?? at) : sentAt ? at - sentAt[0] : 0],
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
    s.offsets.push(
      frameSentAt
        ? now - (frameAt ?? now)
        : sentAt && k < sentAt.length
          ? now - sentAt[k]
          : now - s.firstAt - k * PACKET_MS,
    );
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

  /**
   * Synthetic VP8 video, one stream per producer, for `durationMs` at `fps`: each frame is sent as
   * back-to-back RTP packets of at most `maxPayload` bytes (marker bit on the last), so a frame
   * takes size / maxPayload packets. Each producer sends one key frame of `keyFrameBytes` per
   * burst: at frame 0 with `keyFrames: 'first'` (to prime: a consumer created since the last burst
   * forwards nothing until a key frame), else at a frame spread over the burst per producer, as
   * independent cameras would (all of them at once is a 1,700-packet spike that no real room
   * makes). The other frames vary ±30 % around the size that gives `kbps` over the burst.
   * Producers are also spread over the frame interval. The VP8 payload descriptor is real (X, S,
   * picture id; key-frame bit in the payload header) because mediasoup parses it.
   */
  async videoBurst(
    a: {
      producers: { port: number; ssrc: number }[];
      pt: number;
      durationMs: number;
      fps: number;
      kbps: number;
      keyFrameBytes: number;
      maxPayload: number;
      keyFrames: 'first' | 'spread';
    },
    emit,
  ) {
    if (!out) {
      const sock = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      out = sock;
    }
    const sock = out;
    const frames = Math.round((a.durationMs * a.fps) / 1000);
    const frameMs = 1000 / a.fps;
    const totalBytes = (a.kbps * 1000 * a.durationMs) / 1000 / 8;
    const deltaBytes = Math.max(200, (totalBytes - a.keyFrameBytes) / Math.max(1, frames - 1));
    const noise = randomBytes(a.maxPayload);
    const state = a.producers.map((p, i) => {
      let st = videoState.get(p.ssrc);
      if (!st) {
        // The producer's index makes its timestamps distinct from every other producer's
        // (timestamp = frame × 3000 + index, index < 3000).
        if (videoState.size >= 3000) throw new Error('more than 3000 video producers in one sink');
        st = { seq: 1, frame: 1, index: videoState.size };
        videoState.set(p.ssrc, st);
      }
      const keyFrame = a.keyFrames === 'first' ? 0 : Math.floor((i * frames) / a.producers.length) % frames;
      return { ...p, st, keyFrame, phase: ((i * 7919) % Math.round(frameMs * 1000)) / 1000 };
    });
    const events: { at: number; p: number; f: number }[] = [];
    for (let f = 0; f < frames; f++)
      for (let p = 0; p < state.length; p++) events.push({ at: state[p].phase + f * frameMs, p, f });
    events.sort((x, y) => x.at - y.at);
    sentAt = null;
    frameSentAt = new Map();
    const sent = new Map<number, number>();
    let bytes = 0;
    let maxLag = 0;
    emit('mark', 'start');
    const t0 = performance.now();
    for (const e of events) {
      const wait = t0 + e.at - performance.now();
      if (wait > 1) await sleep(wait);
      const s = state[e.p];
      const key = e.f === s.keyFrame;
      const size = key ? a.keyFrameBytes : Math.round(deltaBytes * (0.7 + 0.6 * Math.random()));
      const ts = (s.st.frame * 3000 + s.st.index) >>> 0;
      const now = performance.now();
      maxLag = Math.max(maxLag, now - (t0 + e.at));
      frameSentAt.set(ts, now);
      const count = Math.ceil(size / a.maxPayload);
      for (let k = 0; k < count; k++) {
        const len = k < count - 1 ? a.maxPayload : size - a.maxPayload * (count - 1);
        // RTP header (12) + VP8 payload descriptor (4: X=1, S on the first packet, I=1, 15-bit
        // picture id) + payload (its first byte, on the first packet, is the VP8 frame tag whose
        // low bit is 0 on a key frame).
        const pkt = Buffer.allocUnsafe(12 + 4 + len);
        pkt[0] = 0x80;
        pkt[1] = (k === count - 1 ? 0x80 : 0) | a.pt;
        pkt.writeUInt16BE(s.st.seq & 0xffff, 2);
        pkt.writeUInt32BE(ts, 4);
        pkt.writeUInt32BE(s.ssrc, 8);
        pkt[12] = k === 0 ? 0x90 : 0x80;
        pkt[13] = 0x80;
        pkt.writeUInt16BE(0x8000 | (s.st.frame & 0x7fff), 14);
        noise.copy(pkt, 16, 0, len);
        if (k === 0) pkt[16] = key ? 0x10 : 0x11;
        s.st.seq++;
        bytes += pkt.length;
        sock.send(pkt, s.port, '127.0.0.1');
      }
      sent.set(s.ssrc, (sent.get(s.ssrc) ?? 0) + count);
      s.st.frame++;
    }
    emit('mark', 'end');
    const wallMs = performance.now() - t0;
    return {
      sent: [...sent],
      frames,
      packets: [...sent.values()].reduce((x, y) => x + y, 0),
      kbpsPerStream: Math.round((bytes * 8) / (wallMs / 1000) / 1000 / Math.max(1, state.length)),
      maxSendLagMs: Math.round(maxLag),
    };
  },

  reset() {
    sentAt = null;
    frameSentAt = null;
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
    // Lateness of every packet of every stream, pooled (ms, rounded): its percentiles.
    const pooled: number[] = [];
    for (const [ssrc, s] of streams) {
      const base = sentAt || frameSentAt ? 0 : Math.min(...s.offsets);
      let late = 0;
      let maxLate = 0;
      for (const o of s.offsets) {
        const l = o - base;
        if (l > LATE_MS) late++;
        if (l > maxLate) maxLate = l;
        pooled.push(l);
      }
      rows.push([ssrc, s.received, s.highest - s.first + 1, late, Math.round(maxLate)]);
    }
    pooled.sort((x, y) => x - y);
    const at = (p: number) =>
      pooled.length
        ? Math.round(pooled[Math.min(pooled.length - 1, Math.floor(p * pooled.length))] * 10) / 10
        : -1;
    return {
      rows,
      rtcp,
      timeline: Array.from(timeline, (n) => n ?? 0),
      latenessMs: { p50: at(0.5), p99: at(0.99), p999: at(0.999) },
    };
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
