import type { types } from 'mediasoup';
import type { Logger } from '../logger.js';
import { OggOpusWriter } from './ogg-opus-writer.js';
import { parseRtp } from './rtp-packet.js';

/** What the recorder consumes: plain Opus, no header extensions (mediasoup strips them). */
const RECORDER_CAPS: types.RtpCapabilities = {
  codecs: [
    {
      kind: 'audio',
      mimeType: 'audio/opus',
      clockRate: 48_000,
      channels: 2,
      preferredPayloadType: 100,
      parameters: {},
      rtcpFeedback: [],
    },
  ],
  headerExtensions: [],
};

export interface BurstRecorderOptions {
  packetsPerPage: number;
  maxGapSamples: number;
  log: Logger;
  /** The consumer closed by itself (the producer or the router went): the burst is over. */
  onEnded: () => void;
}

export interface BurstResult {
  bytes: number;
  durationMs: number;
  /** False when no audio arrived (nothing worth keeping). */
  hasAudio: boolean;
}

/**
 * One talk burst being written: a DirectTransport consumer of the speaker's producer on the room's
 * router hands each RTP packet to the Node process ('rtp' event, no ports), whose Opus payload goes
 * into the Ogg file as it arrives. No transcoding.
 */
export class BurstRecorder {
  readonly #transport: types.DirectTransport;
  readonly #consumer: types.Consumer;
  readonly #writer: OggOpusWriter;
  #result: BurstResult | null = null;
  /** Packets received and written, for tests and the benchmark. */
  packets = 0;

  private constructor(transport: types.DirectTransport, consumer: types.Consumer, writer: OggOpusWriter) {
    this.#transport = transport;
    this.#consumer = consumer;
    this.#writer = writer;
  }

  static async start(
    router: types.Router,
    producer: types.Producer,
    path: string,
    opts: BurstRecorderOptions,
  ): Promise<BurstRecorder> {
    const transport = await router.createDirectTransport({
      maxMessageSize: 262_144,
      appData: { role: 'recorder' },
    });
    let consumer: types.Consumer;
    try {
      consumer = await transport.consume({ producerId: producer.id, rtpCapabilities: RECORDER_CAPS });
    } catch (err) {
      transport.close();
      throw err;
    }
    const writer = new OggOpusWriter(path, {
      packetsPerPage: opts.packetsPerPage,
      maxGapSamples: opts.maxGapSamples,
    });
    const burst = new BurstRecorder(transport, consumer, writer);
    consumer.on('rtp', (packet) => {
      const rtp = parseRtp(packet);
      if (!rtp) return;
      try {
        if (writer.push(rtp.timestamp, rtp.payload)) burst.packets++;
      } catch (err) {
        // A full disk: the burst keeps what was written, and stops.
        opts.log.error({ err, path }, 'recording write failed');
        consumer.close();
        opts.onEnded();
      }
    });
    consumer.observer.once('close', () => {
      if (!burst.#result) opts.onEnded();
    });
    return burst;
  }

  /** Ends the burst: stops consuming and finalises the file. Idempotent. */
  stop(): BurstResult {
    if (this.#result) return this.#result;
    this.#result = { bytes: 0, durationMs: 0, hasAudio: false }; // set first: close events see it
    this.#consumer.close();
    this.#transport.close();
    this.#writer.close();
    this.#result = {
      bytes: this.#writer.bytes,
      durationMs: Math.round(this.#writer.samples / 48),
      hasAudio: this.#writer.started,
    };
    return this.#result;
  }
}
