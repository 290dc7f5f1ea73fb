import type { types } from 'mediasoup';
import type { Logger } from '../logger.js';
import type { Identity } from '../auth/claims.js';
import type { Clock } from '../time/clock.js';
import type { Frame } from '../wire/frame.js';
import { ActiveSpeakerDebouncer, type ActiveSpeaker } from './active-speaker.js';
import { MEDIA_CODECS } from './codecs.js';
import { FloorRelay } from './floor-relay.js';
import type { PoolWorker, WorkerPool } from './worker-pool.js';

/**
 * What the media plane needs of a session: a local `Session`, or a `RemoteSession` standing in for
 * a session on another node whose room's media lives here.
 */
export interface MediaSession {
  readonly id: string;
  readonly userId: string;
  readonly identity: Pick<Identity, 'canPublish' | 'canSubscribe' | 'admin'> & {
    /** The sources the session may publish; null or absent: every source. */
    readonly publishSources?: ReadonlySet<string> | readonly string[] | null;
  };
  readonly rooms: { has(roomId: string): boolean };
  readonly ended: boolean;
  deliver(f: Frame): void;
}

/** This room's router on one worker, and which of the room's producers are piped into it. */
export interface RouterSlot {
  readonly router: types.Router;
  readonly worker: PoolWorker;
  readonly piped: Map<string, Promise<void>>;
}

/** One member's media objects in the room. */
export interface Peer {
  readonly session: MediaSession;
  readonly transports: Map<
    string,
    { transport: types.WebRtcTransport; slot: RouterSlot; direction: 'send' | 'recv' }
  >;
  readonly producers: Map<string, types.Producer>;
  readonly consumers: Map<string, types.Consumer>;
}

/** How a conference room finds and announces its active speaker. */
export interface ActiveSpeakerOptions {
  clock: Clock;
  /** See defaults.activeSpeakerHoldMs. */
  holdMs: number;
  /** mediasoup ActiveSpeakerObserver interval. */
  intervalMs: number;
  announce: (roomId: string, speaker: ActiveSpeaker | null) => void;
}

/** The speaker a producer carries, from the ids the media service put in its appData. */
function speakerOf(producer: types.Producer): ActiveSpeaker | null {
  const { userId, sessionId } = producer.appData;
  if (typeof userId !== 'string' || typeof sessionId !== 'string') return null;
  return { userId, sessionId, producerId: producer.id };
}

/**
 * A room's media: a primary router (where every producer lives) plus, when the primary's worker
 * nears its consumer budget, routers on other workers fed by pipeToRouter. Owns the peers' objects;
 * `close()` tears everything down, once.
 */
export class MediaRoom {
  readonly roomId: string;
  readonly mode: 'ptt' | 'conference';
  readonly primary: RouterSlot;
  readonly slots = new Map<number, RouterSlot>();
  readonly peers = new Map<string, Peer>();
  readonly floor: FloorRelay | null;
  /** Conference rooms: the announced active speaker (debounced dominant speaker). */
  readonly activeSpeaker: ActiveSpeakerDebouncer | null;
  /** Video producers being created (counted against the room's cap before they exist). */
  videoReserved = 0;
  readonly #speech: types.ActiveSpeakerObserver | null;
  /** The observer's last dominant speaker (it reports changes only; a resumed one counts again). */
  #dominant: types.Producer | null = null;
  /** Audio producers that take part in speaker detection (while not paused). */
  readonly #voices = new Set<string>();
  readonly #pool: WorkerPool;
  /** Router creations in flight, by worker index (see slotForReceiver). */
  readonly #creatingSlot = new Map<number, Promise<RouterSlot | null>>();
  #closed = false;

  private constructor(
    roomId: string,
    mode: 'ptt' | 'conference',
    primary: RouterSlot,
    floor: FloorRelay | null,
    pool: WorkerPool,
    speech: types.ActiveSpeakerObserver | null,
    speaker: ActiveSpeakerOptions | undefined,
  ) {
    this.roomId = roomId;
    this.mode = mode;
    this.primary = primary;
    this.floor = floor;
    this.#pool = pool;
    this.slots.set(primary.worker.index, primary);
    this.#speech = speech;
    this.activeSpeaker =
      speech && speaker
        ? new ActiveSpeakerDebouncer({
            clock: speaker.clock,
            holdMs: speaker.holdMs,
            announce: (s) => speaker.announce(roomId, s),
          })
        : null;
    speech?.on('dominantspeaker', ({ producer }) => {
      this.#dominant = producer;
      if (!producer.paused && !producer.closed) this.activeSpeaker?.propose(speakerOf(producer));
    });
  }

  static async create(
    roomId: string,
    mode: 'ptt' | 'conference',
    pool: WorkerPool,
    log: Logger,
    speaker?: ActiveSpeakerOptions,
  ): Promise<MediaRoom> {
    // Under budget with a free port if any worker is (a new room's first transports must bind).
    const worker = pool.leastLoaded(true) ?? pool.leastLoaded();
    if (!worker) throw new Error('no mediasoup worker available');
    const primary = await MediaRoom.#slotOn(worker, roomId);
    const floor = mode === 'ptt' ? await FloorRelay.create(primary.router, roomId, log) : null;
    const speech =
      mode === 'conference' && speaker
        ? await primary.router.createActiveSpeakerObserver({ interval: speaker.intervalMs })
        : null;
    return new MediaRoom(roomId, mode, primary, floor, pool, speech, speaker);
  }

  /** A new audio producer of a conference room (not a screen's audio) takes part in speaker detection. */
  async observeSpeech(producer: types.Producer): Promise<void> {
    if (!this.#speech || this.#speech.closed || producer.kind !== 'audio') return;
    if (producer.appData.source === 'screen') return;
    this.#voices.add(producer.id);
    if (!producer.paused) await this.#speech.addProducer({ producerId: producer.id });
  }

  /**
   * A producer paused, resumed or closed: a muted or gone speaker is no longer the active one.
   * A muted voice also leaves the observer until it is resumed: its scores would freeze at their
   * last (speaking) values, and nobody else could then out-talk it.
   */
  speechChanged(producer: types.Producer): void {
    const speaker = this.activeSpeaker;
    const speech = this.#speech;
    if (!speaker || !speech || !this.#voices.has(producer.id)) return;
    if (producer.closed) this.#voices.delete(producer.id);
    if (this.#dominant === producer && (producer.closed || producer.paused)) this.#dominant = null;
    if (producer.paused || producer.closed) {
      speaker.retract(producer.id);
      if (!producer.closed && !speech.closed)
        void speech.removeProducer({ producerId: producer.id }).catch(() => undefined);
    } else if (!speech.closed) {
      void speech.addProducer({ producerId: producer.id }).catch(() => undefined);
    }
  }

  static async #slotOn(worker: PoolWorker, roomId: string): Promise<RouterSlot> {
    const router = await worker.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { roomId } });
    return { router, worker, piped: new Map() };
  }

  get closed(): boolean {
    return this.#closed;
  }

  usesWorker(worker: PoolWorker): boolean {
    for (const slot of this.slots.values()) if (slot.worker === worker) return true;
    return false;
  }

  peer(session: MediaSession): Peer {
    let p = this.peers.get(session.id);
    if (!p) {
      p = { session, transports: new Map(), producers: new Map(), consumers: new Map() };
      this.peers.set(session.id, p);
    }
    return p;
  }

  /**
   * Where a new receive transport goes: the first of this room's routers whose worker is under the
   * consumer budget and has a free port, else a new router on the least loaded such worker. null:
   * all full. A conference receiver will carry video, so it first looks the same way among workers
   * also under the video consumer budget (MAX_VIDEO_CONSUMERS_PER_WORKER): a new viewer spills onto
   * another worker instead of having every camera refused on a worker full of video; only when
   * every worker is full of video does it fall back to one with audio budget left (its cameras then
   * get CAPACITY_EXCEEDED, its audio still plays).
   */
  async slotForReceiver(): Promise<RouterSlot | null> {
    if (this.mode === 'conference') {
      const slot = await this.#openSlot(true);
      if (slot) return slot;
    }
    return this.#openSlot(false);
  }

  async #openSlot(forVideo: boolean): Promise<RouterSlot | null> {
    for (const slot of this.slots.values()) if (this.#pool.isOpen(slot.worker, forVideo)) return slot;
    const worker = this.#pool.leastLoaded(true, forVideo);
    if (!worker) return null;
    const existing = this.slots.get(worker.index);
    if (existing?.worker === worker) return existing;
    // Receivers that spill over at the same moment must share ONE new router per worker (found by
    // bench/ scenario 5, 16 concurrent joins at the budget edge): with two, each pipes the same
    // producer into that worker, mediasoup refuses the second producer id ("already exists"), and
    // every later consume on the router that won the `slots` entry failed with CONSUME_ERROR.
    let creating = this.#creatingSlot.get(worker.index);
    if (!creating) {
      creating = MediaRoom.#slotOn(worker, this.roomId)
        .then((slot) => {
          if (this.#closed) {
            slot.router.close();
            return null;
          }
          this.slots.set(worker.index, slot);
          return slot;
        })
        .finally(() => this.#creatingSlot.delete(worker.index));
      this.#creatingSlot.set(worker.index, creating);
    }
    return creating;
  }

  /** Makes a producer of the primary router available on `slot` (once per producer and slot). */
  ensurePiped(producerId: string, slot: RouterSlot): Promise<void> {
    if (slot === this.primary) return Promise.resolve();
    let p = slot.piped.get(producerId);
    if (!p) {
      p = this.primary.router.pipeToRouter({ producerId, router: slot.router }).then(() => undefined);
      p.catch(() => slot.piped.delete(producerId));
      slot.piped.set(producerId, p);
    }
    return p;
  }

  /** Closes one member's objects (leave, disconnect). */
  closePeer(sessionId: string): void {
    const p = this.peers.get(sessionId);
    if (!p) return;
    this.peers.delete(sessionId);
    for (const { transport } of p.transports.values()) transport.close();
  }

  /** Idempotent: closes every router (and with them every transport, producer and consumer). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.activeSpeaker?.close();
    this.floor?.close();
    for (const slot of this.slots.values()) slot.router.close();
    this.peers.clear();
  }
}
