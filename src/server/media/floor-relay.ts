import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { Logger } from '../logger.js';
import { FLOOR_PAYLOAD_TYPE } from './codecs.js';

const OPUS_CLOCK_PER_MS = 48;

/** What the relay consumes from a speaker: plain Opus, no header extensions to rewrite. */
const RELAY_CAPS: types.RtpCapabilities = {
  codecs: [
    {
      kind: 'audio',
      mimeType: 'audio/opus',
      clockRate: 48_000,
      channels: 2,
      preferredPayloadType: FLOOR_PAYLOAD_TYPE,
      parameters: {},
      rtcpFeedback: [],
    },
  ],
  headerExtensions: [],
};

/**
 * A PTT room's single outgoing voice: the "floor producer". Listeners consume it once; whoever
 * holds the floor is switched in behind it. Without it, every listener would consume every
 * member's (paused) producer: N² consumers for N members, which no worker carries at 1,600.
 *
 * The speaker's producer is consumed over a DirectTransport, and each RTP packet is re-stamped
 * (SSRC, payload type, sequence number and timestamp offsets kept continuous across speakers) and
 * fed to the floor producer. At 50 packets/s per talking room this costs next to nothing.
 *
 * The floor is enforced here, not in clients: only the granted speaker's packets reach listeners.
 */
export class FloorRelay {
  readonly producer: types.Producer;
  readonly #transport: types.DirectTransport;
  readonly #ssrc: number;
  readonly #log: Logger;
  #consumer: types.Consumer | null = null;
  /** The speaker's producer currently switched in. */
  #sourceId: string | null = null;
  #lastSeq = randomInt(0, 0xffff);
  #lastTs = randomInt(0, 0x7fffffff);
  #lastAt = 0;
  #seqOffset = 0;
  #tsOffset = 0;
  #needsOffsets = true;
  #closed = false;
  /** Packets forwarded, for tests and metrics. */
  forwarded = 0;

  private constructor(transport: types.DirectTransport, producer: types.Producer, ssrc: number, log: Logger) {
    this.#transport = transport;
    this.producer = producer;
    this.#ssrc = ssrc;
    this.#log = log;
  }

  static async create(router: types.Router, roomId: string, log: Logger): Promise<FloorRelay> {
    const transport = await router.createDirectTransport({
      maxMessageSize: 262_144,
      appData: { roomId, role: 'floor' },
    });
    const ssrc = randomInt(1, 0xffffffff);
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [
          {
            mimeType: 'audio/opus',
            payloadType: FLOOR_PAYLOAD_TYPE,
            clockRate: 48_000,
            channels: 2,
            parameters: { useinbandfec: 1 },
          },
        ],
        encodings: [{ ssrc }],
        rtcp: { cname: `parley-floor-${roomId}`, reducedSize: true },
      },
      appData: { roomId, role: 'floor' },
    });
    return new FloorRelay(transport, producer, ssrc, log);
  }

  get sourceId(): string | null {
    return this.#sourceId;
  }

  /** Switches the floor to a speaker's producer (closing the previous source). */
  async attach(source: types.Producer): Promise<void> {
    if (this.#closed || this.#sourceId === source.id) return;
    this.detach();
    this.#sourceId = source.id;
    const consumer = await this.#transport.consume({ producerId: source.id, rtpCapabilities: RELAY_CAPS });
    if (this.#closed || this.#sourceId !== source.id) {
      consumer.close();
      return;
    }
    this.#consumer = consumer;
    this.#needsOffsets = true;
    consumer.on('rtp', (packet) => this.#forward(packet));
    consumer.on('producerclose', () => {
      if (this.#consumer === consumer) this.detach();
    });
  }

  /** Nobody speaks: stop forwarding. */
  detach(): void {
    this.#sourceId = null;
    const c = this.#consumer;
    this.#consumer = null;
    c?.close();
  }

  #forward(packet: Buffer): void {
    if (packet.length < 12 || this.#closed) return;
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    const now = performance.now();
    if (this.#needsOffsets) {
      // Continue the outgoing stream where the last speaker left it, as if time had passed in
      // between, so receivers' jitter buffers see one continuous stream.
      const gapSamples =
        this.#lastAt === 0 ? 960 : Math.max(960, Math.round((now - this.#lastAt) * OPUS_CLOCK_PER_MS));
      this.#seqOffset = (this.#lastSeq + 1 - seq) & 0xffff;
      this.#tsOffset = (this.#lastTs + gapSamples - ts) >>> 0;
      this.#needsOffsets = false;
    }
    const outSeq = (seq + this.#seqOffset) & 0xffff;
    const outTs = (ts + this.#tsOffset) >>> 0;
    packet[1] = (packet[1] & 0x80) | FLOOR_PAYLOAD_TYPE;
    packet.writeUInt16BE(outSeq, 2);
    packet.writeUInt32BE(outTs, 4);
    packet.writeUInt32BE(this.#ssrc, 8);
    this.#lastSeq = outSeq;
    this.#lastTs = outTs;
    this.#lastAt = now;
    try {
      this.producer.send(packet);
      this.forwarded++;
    } catch (err) {
      this.#log.warn({ err }, 'floor relay send failed');
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.detach();
    this.#transport.close();
  }
}
