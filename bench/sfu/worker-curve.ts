/**
 * Per-worker SFU capacity, driving mediasoup directly (no Parley code in the path): one worker,
 * one router, one Opus producer fed through a PlainTransport with generated RTP at 50 packets/s,
 * and N consumers on SRTP PlainTransports (AES_CM_128_HMAC_SHA1_80, what WebRTC uses) sending to
 * the sink process, which also sends the RTP (so it knows each packet's send time). Grown step by
 * step; at each step exactly `packets` packets are sent, so each consumer's delivery is
 * received-in-time / sent.
 */
import { randomBytes } from 'node:crypto';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../src/server/media/codecs.js';
import { serve } from '../lib/ipc.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80' as const;
const PT = 100;
const SSRC = 0x1234_5678;

let worker: types.Worker;
let router: types.Router;
let producer: types.Producer;
let ingressPort = 0;
let sinkPorts: number[] = [];
const consumers: { transport: types.PlainTransport; consumer: types.Consumer; ssrc: number }[] = [];

serve({
  async setup(a: { sinkPorts: number[] }) {
    sinkPorts = a.sinkPorts;
    worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 40_000, rtcMaxPort: 49_999 });
    router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    const ingress = await router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: true,
    });
    ingressPort = ingress.tuple.localPort;
    producer = await ingress.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: PT, clockRate: 48_000, channels: 2 }],
        encodings: [{ ssrc: SSRC }],
      },
    });
    return { workerPid: worker.pid, ingressPort, ssrc: SSRC, pt: PT };
  },

  /** Adds consumers until there are `n`. */
  async grow(a: { n: number }) {
    while (consumers.length < a.n) {
      const transport = await router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
        rtcpMux: true,
        comedia: false,
        enableSrtp: true,
        srtpCryptoSuite: SUITE,
      });
      await transport.connect({
        ip: '127.0.0.1',
        port: sinkPorts[consumers.length % sinkPorts.length],
        srtpParameters: { cryptoSuite: SUITE, keyBase64: randomBytes(30).toString('base64') },
      });
      const consumer = await transport.consume({
        producerId: producer.id,
        rtpCapabilities: router.rtpCapabilities,
      });
      consumers.push({ transport, consumer, ssrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0 });
    }
    return { consumers: consumers.length };
  },

  ssrcs() {
    return consumers.map((c) => c.ssrc);
  },

  close() {
    worker?.close();
    return null;
  },
});
