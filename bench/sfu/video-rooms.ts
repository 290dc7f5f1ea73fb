/**
 * Per-worker capacity for video rooms, driving mediasoup directly (no Parley code in the path):
 * one worker; each room is a router (as in Parley's MediaRoom); each participant has a send
 * PlainTransport carrying one VP8 producer (fed by the sink process, which sends synthetic VP8
 * RTP) and a receive SRTP PlainTransport (AES_CM_128_HMAC_SHA1_80, what WebRTC uses) carrying one
 * consumer of every other participant's video: N·(N−1) consumers per room. The receive transports
 * of one participant in `sampleEvery` send to the sink, which counts and times every packet; the
 * others send to a bound socket that is never read (the worker's cost is the same; the sink's
 * would otherwise grow as fast as the worker's on the same two cores).
 */
import { randomBytes } from 'node:crypto';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../src/server/media/codecs.js';
import { serve } from '../lib/ipc.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80' as const;
const VP8_PT = 101;

let worker: types.Worker | null = null;
let sinkPorts: number[] = [];
let blackholePort = 0;
let sampleEvery = 1;
let participants = 0;
let rooms = 0;
let nextSsrc = 0x2000_0000;
/** Every producer: where the sink sends its RTP. */
let producers: { port: number; ssrc: number }[] = [];
/** Sampled consumers: [its SSRC (what the sink sees), the SSRC of the producer it forwards]. */
let consumers: [number, number][] = [];
let consumerCount = 0;

async function addRoom(size: number): Promise<void> {
  if (!worker) throw new Error('no worker: call start first');
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  const members: { producer: types.Producer; ssrc: number; recv: types.PlainTransport; sampled: boolean }[] =
    [];
  for (let i = 0; i < size; i++) {
    const send = await router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: true,
    });
    const ssrc = nextSsrc++;
    const producer = await send.produce({
      kind: 'video',
      rtpParameters: {
        codecs: [
          {
            mimeType: 'video/VP8',
            payloadType: VP8_PT,
            clockRate: 90_000,
            rtcpFeedback: [
              { type: 'nack' },
              { type: 'nack', parameter: 'pli' },
              { type: 'ccm', parameter: 'fir' },
            ],
          },
        ],
        encodings: [{ ssrc }],
      },
    });
    const recv = await router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: false,
      enableSrtp: true,
      srtpCryptoSuite: SUITE,
    });
    const sampled = participants % sampleEvery === 0;
    await recv.connect({
      ip: '127.0.0.1',
      port: sampled ? sinkPorts[Math.floor(participants / sampleEvery) % sinkPorts.length] : blackholePort,
      srtpParameters: { cryptoSuite: SUITE, keyBase64: randomBytes(30).toString('base64') },
    });
    participants++;
    members.push({ producer, ssrc, recv, sampled });
    producers.push({ port: send.tuple.localPort, ssrc });
  }
  for (const m of members) {
    for (const other of members) {
      if (other === m) continue;
      const consumer = await m.recv.consume({
        producerId: other.producer.id,
        rtpCapabilities: router.rtpCapabilities,
      });
      consumerCount++;
      if (m.sampled) consumers.push([consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0, other.ssrc]);
    }
  }
  rooms++;
}

serve({
  /** A fresh worker (closing the previous one and everything on it). */
  async start(a: { sinkPorts: number[]; blackholePort: number; sampleEvery: number }) {
    worker?.close();
    sinkPorts = a.sinkPorts;
    blackholePort = a.blackholePort;
    sampleEvery = a.sampleEvery;
    rooms = 0;
    participants = 0;
    producers = [];
    consumers = [];
    consumerCount = 0;
    worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 40_000, rtcMaxPort: 49_999 });
    return { workerPid: worker.pid, pt: VP8_PT };
  },

  /** Adds rooms of `size` participants until there are `rooms`. */
  async grow(a: { rooms: number; size: number }) {
    while (rooms < a.rooms) await addRoom(a.size);
    return { rooms, producers, consumers, consumerCount };
  },

  close() {
    worker?.close();
    worker = null;
    return null;
  },
});
