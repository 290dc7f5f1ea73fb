import { Device, type types } from 'mediasoup-client';
import { TypedEmitter } from './emitter.js';
import { ParleyError } from './errors.js';
import type { SignalingClient } from './signaling-client.js';

type Direction = 'send' | 'recv';

export interface SfuSessionOptions {
  signaling: SignalingClient;
  roomId: string;
  /** ICE servers for the transports; rarely needed (the SFU announces a reachable address). */
  iceServers?: RTCIceServer[];
  /** `'relay'` forces the transports through TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Builds the mediasoup-client Device (e.g. a handler name for a specific engine). */
  createDevice?: () => Device;
}

export type SfuSessionEvents = {
  /** A transport's ICE+DTLS state. */
  transportStateChanged: [direction: Direction, state: types.ConnectionState];
  /** The server closed one of our consumers (its producer went away). */
  consumerClosed: [consumer: types.Consumer];
  closed: [];
};

/**
 * The media engine of one room (LiveKit's RTCEngine, on mediasoup-client): loads the router's
 * capabilities into a Device, creates the send and receive transports, wires their `connect` and
 * `produce` events to `transport:connect` / `produce`, consumes producers, and restarts ICE when a
 * transport fails. PttChannel builds on it.
 */
export class SfuSession extends TypedEmitter<SfuSessionEvents> {
  readonly roomId: string;
  readonly device: Device;
  /** PTT rooms: the room's single floor producer. Null in conference rooms. */
  readonly floorProducerId: string | null;
  readonly sendTransport: types.Transport | null;
  readonly recvTransport: types.Transport | null;
  readonly #signaling: SignalingClient;
  readonly #consumers = new Map<string, types.Consumer>();
  #closed = false;

  private constructor(
    signaling: SignalingClient,
    roomId: string,
    device: Device,
    floorProducerId: string | null,
    send: types.Transport | null,
    recv: types.Transport | null,
  ) {
    super();
    this.#signaling = signaling;
    this.roomId = roomId;
    this.device = device;
    this.floorProducerId = floorProducerId;
    this.sendTransport = send;
    this.recvTransport = recv;
    for (const [direction, t] of [
      ['send', send],
      ['recv', recv],
    ] as const) {
      t?.on('connectionstatechange', (state) => {
        this.emit('transportStateChanged', direction, state);
        if (state === 'failed') void this.restartIce(direction).catch(() => undefined);
      });
    }
  }

  /**
   * `media:capabilities` → Device.load → both transports. A token without `canPublish` (or
   * `canSubscribe`) gets no send (recv) transport instead of an error.
   */
  static async open(options: SfuSessionOptions): Promise<SfuSession> {
    const { signaling, roomId } = options;
    const caps = (await signaling.request('media:capabilities', { roomId })).payload;
    const device = options.createDevice ? options.createDevice() : new Device();
    try {
      await device.load({ routerRtpCapabilities: caps.rtpCapabilities as unknown as types.RtpCapabilities });
    } catch (err) {
      throw ParleyError.from(err, 'MEDIA_ERROR');
    }
    const [send, recv] = await Promise.all(
      (['send', 'recv'] as const).map((direction) => SfuSession.#createTransport(options, device, direction)),
    );
    return new SfuSession(signaling, roomId, device, caps.floorProducerId, send ?? null, recv ?? null);
  }

  static async #createTransport(
    { signaling, roomId, iceServers, iceTransportPolicy }: SfuSessionOptions,
    device: Device,
    direction: Direction,
  ): Promise<types.Transport | null> {
    let created;
    try {
      created = (await signaling.request('transport:create', { roomId, direction })).payload;
    } catch (err) {
      if (err instanceof ParleyError && err.code === 'FORBIDDEN') return null; // no grant for it
      throw err;
    }
    const init: types.TransportOptions = {
      id: created.id,
      iceParameters: created.iceParameters as unknown as types.IceParameters,
      iceCandidates: created.iceCandidates as unknown as types.IceCandidate[],
      dtlsParameters: created.dtlsParameters as unknown as types.DtlsParameters,
      ...(iceServers ? { iceServers } : {}),
      ...(iceTransportPolicy ? { iceTransportPolicy } : {}),
    };
    const transport =
      direction === 'send' ? device.createSendTransport(init) : device.createRecvTransport(init);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      signaling
        .request('transport:connect', { transportId: transport.id, dtlsParameters })
        .then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        signaling
          .request('produce', {
            transportId: transport.id,
            kind,
            rtpParameters: rtpParameters,
            appData,
          })
          .then(({ payload }) => callback({ id: payload.producerId }), errback);
      });
    }
    return transport;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Publishes a track. Voice defaults: mono Opus with in-band FEC; no RTP at all while paused. */
  async produce(
    track: MediaStreamTrack,
    options: Partial<types.ProducerOptions> = {},
  ): Promise<types.Producer> {
    if (!this.sendTransport) throw new ParleyError('FORBIDDEN', 'your token does not grant publishing');
    try {
      return await this.sendTransport.produce({
        track,
        stopTracks: false,
        zeroRtpOnPause: true,
        codecOptions: { opusStereo: false, opusFec: true, opusDtx: false },
        ...options,
      });
    } catch (err) {
      throw ParleyError.from(err, 'PRODUCE_ERROR');
    }
  }

  /**
   * Mutes a track: pauses it here (no RTP leaves) and on the server, which tells the other members
   * `producer:paused`. Conference rooms; in a ptt room the floor does this.
   */
  async pauseProducer(producer: types.Producer): Promise<void> {
    producer.pause();
    try {
      await this.#signaling.request('producer:pause', { producerId: producer.id });
    } catch (err) {
      producer.resume(); // refused (e.g. a ptt room): the track stays as it was
      throw err;
    }
  }

  /** Unmutes a track paused with `pauseProducer`; the other members get `producer:resumed`. */
  async resumeProducer(producer: types.Producer): Promise<void> {
    await this.#signaling.request('producer:resume', { producerId: producer.id });
    producer.resume();
  }

  /** Unpublishes a track: closes it here and on the server (the others get `producer:closed`). */
  async closeProducer(producer: types.Producer): Promise<void> {
    producer.close();
    await this.#signaling.request('producer:close', { producerId: producer.id });
  }

  /** Subscribes to a producer of the room and resumes the consumer once it is set up. */
  async consume(producerId: string): Promise<types.Consumer> {
    const recv = this.recvTransport;
    if (!recv) throw new ParleyError('FORBIDDEN', 'your token does not grant subscribing');
    const reply = (
      await this.#signaling.request('consume', {
        producerId,
        transportId: recv.id,
        rtpCapabilities: this.device.recvRtpCapabilities,
      })
    ).payload;
    let consumer: types.Consumer;
    try {
      consumer = await recv.consume({
        id: reply.consumerId,
        producerId: reply.producerId,
        kind: reply.kind,
        rtpParameters: reply.rtpParameters as unknown as types.RtpParameters,
        // Whether its producer is paused (muted) right now; producer:paused/resumed tell changes.
        appData: { producerPaused: reply.producerPaused },
      });
    } catch (err) {
      throw ParleyError.from(err, 'CONSUME_ERROR');
    }
    this.#consumers.set(consumer.id, consumer);
    consumer.observer.once('close', () => this.#consumers.delete(consumer.id));
    await this.#signaling.request('consumer:resume', { consumerId: consumer.id });
    return consumer;
  }

  /**
   * Stops receiving a consumer's media (e.g. its video tile is hidden): paused here and on the
   * server, so the SFU stops sending it. `resumeConsumer` starts it again.
   */
  async pauseConsumer(consumer: types.Consumer): Promise<void> {
    consumer.pause();
    await this.#signaling.request('consumer:pause', { consumerId: consumer.id });
  }

  /** Receives a consumer paused with `pauseConsumer` again. */
  async resumeConsumer(consumer: types.Consumer): Promise<void> {
    await this.#signaling.request('consumer:resume', { consumerId: consumer.id });
    consumer.resume();
  }

  /**
   * Which simulcast layer a video consumer receives (0: the lowest). Resolves with the layers the
   * server now prefers; rejects with CONSUME_ERROR for a consumer without layers.
   */
  async setPreferredLayers(
    consumer: types.Consumer,
    spatialLayer: number,
    temporalLayer?: number,
  ): Promise<{ spatialLayer: number; temporalLayer: number | null }> {
    const { payload } = await this.#signaling.request('consumer:set-preferred-layers', {
      consumerId: consumer.id,
      spatialLayer,
      ...(temporalLayer === undefined ? {} : { temporalLayer }),
    });
    return { spatialLayer: payload.spatialLayer, temporalLayer: payload.temporalLayer };
  }

  /** The server closed a consumer (`consumer:closed`): close ours. */
  serverClosedConsumer(consumerId: string): void {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) return;
    consumer.close();
    this.emit('consumerClosed', consumer);
  }

  /** New ICE credentials from the server for one or both transports (after a network change). */
  async restartIce(direction?: Direction): Promise<void> {
    const transports = [
      direction !== 'recv' ? this.sendTransport : null,
      direction !== 'send' ? this.recvTransport : null,
    ].filter((t): t is types.Transport => t !== null && !t.closed);
    await Promise.all(
      transports.map(async (t) => {
        const { iceParameters } = (
          await this.#signaling.request('transport:restart-ice', { transportId: t.id })
        ).payload;
        await t.restartIce({ iceParameters: iceParameters as unknown as types.IceParameters });
      }),
    );
  }

  /** Closes both transports (and with them every producer and consumer). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.#consumers.clear();
    this.emit('closed');
    this.removeAllListeners();
  }
}
