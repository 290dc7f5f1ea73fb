import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { types } from 'mediasoup';
import type { Recording } from '../../protocol/index.js';
import type { RecordingConfig } from '../config/env.js';
import { defaults } from '../config/defaults.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import type { Logger } from '../logger.js';
import type { MediaSession } from '../media/media-room.js';
import type { ChannelResolver } from '../rooms/room-catalog.js';
import type { RoomFanout } from '../rooms/room-fanout.js';
import { publicRecording, type RecordingIndex, type RecordingRecord } from '../state/recording-index.js';
import type { StateStore } from '../state/state-store.js';
import { systemClock, type Clock } from '../time/clock.js';
import { frame } from '../wire/frame.js';
import { BurstRecorder } from './burst-recorder.js';

/** What the recorder tells the rest of the server (webhooks). */
export type RecorderEvents = {
  /** A burst was stored: its members were sent `ptt:recording`. */
  ready: [recording: Recording];
};

interface ActiveBurst {
  readonly record: RecordingRecord;
  readonly sessionId: string;
  /** The speaker's producer this burst consumes. */
  readonly producerId: string;
  /** Null until the consumer exists. */
  recorder: BurstRecorder | null;
  /** The `recording` record is written (finishing waits for it, so `ready` always lands last). */
  saved: Promise<void>;
  ended: boolean;
}

export interface PttRecorderOptions {
  config: RecordingConfig;
  catalog: ChannelResolver;
  index: RecordingIndex;
  /** The speaker lock names whoever holds the floor (the name the room knows them by). */
  store: Pick<StateStore, 'currentSpeaker'>;
  rooms: RoomFanout;
  /**
   * Resolves once the floor change of the room under way on this node (the ptt:stop, pre-emption
   * or leave that ended a burst) has been answered and announced: `ptt:recording` goes after it
   * (SPEC §9, a request's reply before any broadcast it causes). Default: no wait.
   */
  floorSettled?: (roomId: string) => Promise<void>;
  nodeId: string;
  log: Logger;
  clock?: Clock;
}

/**
 * Records every talk burst of the channels with `"record": true`, on the node that hosts the
 * room's media (the media service there tells it when the floor's audio goes live and when it
 * stops). A burst ends at ptt:stop, pre-emption, revocation, or when the speaker's producer or the
 * room's media goes away (a disconnect); the pre-empting speaker's burst is a new recording.
 * Each finished burst is stored in the RecordingIndex and announced with `ptt:recording`.
 */
export class PttRecorder {
  readonly #opts: PttRecorderOptions;
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** roomId → the burst being recorded there. */
  readonly #active = new Map<string, ActiveBurst>();
  /** Finishing bursts (metadata being written), so close() can wait for them. */
  readonly #finishing = new Set<Promise<void>>();
  #closed = false;
  readonly hooks: Hooks<RecorderEvents>;

  constructor(opts: PttRecorderOptions) {
    this.#opts = opts;
    this.#dir = resolve(opts.config.dir);
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log;
    this.hooks = new Hooks('recorder', opts.log);
  }

  /** The directory recordings are written to (absolute). */
  get dir(): string {
    return this.#dir;
  }

  /** Ids of the bursts being written on this node (the sweeper leaves them alone). */
  activeIds(): Set<string> {
    return new Set([...this.#active.values()].map((b) => b.record.id));
  }

  /** Media hook: the speaker's producer goes live through the floor. Starts a burst if the channel records. */
  readonly onFloorOn = async (
    roomId: string,
    session: MediaSession,
    producer: types.Producer,
    router: types.Router,
  ): Promise<void> => {
    if (this.#closed || this.#opts.catalog.resolve(roomId)?.record !== true) return;
    // A pre-emption arrives as the new speaker's grant: the old burst ends here.
    this.#end(roomId);
    const id = randomUUID();
    const record: RecordingRecord = {
      id,
      roomId,
      speaker: { userId: session.userId, name: session.userId },
      startedAt: this.#clock.now(),
      durationMs: 0,
      bytes: 0,
      file: `${id}.ogg`,
      nodeId: this.#opts.nodeId,
      status: 'recording',
    };
    const burst: ActiveBurst = {
      record,
      sessionId: session.id,
      producerId: producer.id,
      recorder: null,
      saved: Promise.resolve(),
      ended: false,
    };
    this.#active.set(roomId, burst);
    burst.saved = this.#nameSpeaker(burst).then(() => this.#opts.index.put(record));
    try {
      mkdirSync(this.#dir, { recursive: true });
      burst.recorder = await BurstRecorder.start(router, producer, join(this.#dir, record.file), {
        packetsPerPage: defaults.recordingPacketsPerPage,
        maxGapSamples: defaults.recordingMaxGapMs * 48,
        log: this.#log,
        onEnded: () => {
          if (this.#active.get(roomId) === burst) this.#end(roomId);
        },
      });
    } catch (err) {
      this.#log.error({ err, roomId }, 'could not start recording the burst');
      if (this.#active.get(roomId) === burst) this.#active.delete(roomId);
      burst.ended = true;
      this.#track(burst.saved.then(() => this.#discard(record)));
      return;
    }
    // Ended (released, or the producer closed) while the consumer was being created.
    if (burst.ended || producer.closed) {
      burst.ended = false;
      this.#finish(burst);
    }
  };

  /** Media hook: the speaker's audio stops going through the floor. Ends their burst. */
  readonly onFloorOff = (roomId: string, sessionId: string): void => {
    const burst = this.#active.get(roomId);
    if (burst?.sessionId === sessionId) this.#end(roomId);
  };

  /** Media hook: the room's media closed (worker died, released, shutdown). */
  readonly onMediaClosed = (roomId: string): void => {
    this.#end(roomId);
  };

  /** Shutdown: finalises every burst and waits for their metadata. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const roomId of [...this.#active.keys()]) this.#end(roomId);
    }
    await Promise.all([...this.#finishing]);
  }

  #end(roomId: string): void {
    const burst = this.#active.get(roomId);
    if (!burst) return;
    this.#active.delete(roomId);
    if (!burst.recorder) {
      burst.ended = true; // onFloorOn finishes it once its consumer exists
      return;
    }
    this.#finish(burst);
  }

  #finish(burst: ActiveBurst): void {
    if (burst.ended || !burst.recorder) return;
    burst.ended = true;
    const result = burst.recorder.stop();
    const record = burst.record;
    this.#track(
      (async () => {
        await burst.saved;
        if (!result.hasAudio) return this.#discard(record);
        const done: RecordingRecord = {
          ...record,
          durationMs: result.durationMs,
          bytes: result.bytes,
          status: 'ready',
        };
        await this.#opts.index.put(done);
        const recording = publicRecording(done);
        await this.#opts.floorSettled?.(record.roomId);
        this.#opts.rooms.broadcast(record.roomId, frame('ptt:recording', recording));
        await this.hooks.emit('ready', recording);
        this.#log.debug({ id: record.id, roomId: record.roomId, ms: result.durationMs }, 'burst recorded');
      })(),
    );
  }

  async #nameSpeaker(burst: ActiveBurst): Promise<void> {
    const lock = await this.#opts.store.currentSpeaker(burst.record.roomId).catch(() => null);
    if (lock && lock.sessionId === burst.sessionId) burst.record.speaker.name = lock.name;
  }

  async #discard(record: RecordingRecord): Promise<void> {
    await rm(join(this.#dir, record.file), { force: true });
    await this.#opts.index.remove(record.id);
  }

  #track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.#log.error({ err }, 'recording metadata not stored'));
    this.#finishing.add(p);
    void p.finally(() => this.#finishing.delete(p));
    background(p, this.#log, 'recording finish');
  }
}
