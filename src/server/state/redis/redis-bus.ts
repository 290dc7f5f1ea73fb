import type { Redis } from 'ioredis';
import {
  decodeBusMessages,
  encodeBus,
  encodeBusBatch,
  type Bus,
  type BusEntry,
  type BusHeader,
  type BusMessage,
} from '../../cluster/bus.js';
import type { Logger } from '../../logger.js';
import type { Frame } from '../../wire/frame.js';
import { PublishBatch } from './publish-batch.js';
import type { RedisState } from './redis-state.js';
import { ReplyLessPublisher } from './reply-less-publisher.js';

/**
 * Redis pub/sub between nodes: `<prefix>node:<nodeId>` for messages to one node's users,
 * `<prefix>room:<roomId>` for room broadcasts, subscribed only by nodes with members in the room,
 * and `<prefix>nodes` for the few messages every node hears (directory changes).
 * Publishing uses the state client (fail fast); subscribing needs a connection of its own, which
 * ioredis re-subscribes after a reconnect. Publications go through a connection of their own that
 * reads no replies (reply-less-publisher.ts) while it is up, through the state client otherwise.
 * Relayed frames (`sendToNode`) go out once per
 * event-loop turn and node, several in one publication (publish-batch.ts); every other publish
 * first sends what is batched, so the bus keeps the order of the calls.
 */
export class RedisBus implements Bus {
  readonly #state: RedisState;
  readonly #sub: Redis;
  readonly #nodeId: string;
  readonly #prefix: string;
  readonly #log: Logger;
  /** The one subscriber (the BusRouter). */
  #handler: ((msg: BusMessage) => void) | null = null;
  readonly #rooms = new Set<string>();
  readonly #batch = new PublishBatch((channel, entries) => this.#sendBatch(channel, entries));
  /** Publishes without reading replies while it is ready; the state client otherwise. */
  readonly #publisher: ReplyLessPublisher | null;

  private constructor(state: RedisState, sub: Redis, nodeId: string, log: Logger) {
    this.#state = state;
    this.#sub = sub;
    this.#publisher = ReplyLessPublisher.forClient(state.client as Redis, log);
    this.#nodeId = nodeId;
    this.#prefix = state.prefix;
    this.#log = log;
    sub.on('messageBuffer', (_channel: Buffer, data: Buffer) => {
      const msgs = decodeBusMessages(data);
      if (!msgs) {
        this.#log.warn('ignoring malformed bus message');
        return;
      }
      // One publication has one sender; our own was delivered locally already.
      if (msgs[0].from === this.#nodeId) return;
      // The BusRouter isolates and logs a failing handler, so one message cannot lose the rest.
      for (const msg of msgs) this.#handler?.(msg);
    });
    sub.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'redis subscriber error'));
  }

  static async create(state: RedisState, nodeId: string, log: Logger): Promise<RedisBus> {
    const client = state.client;
    if (client.isCluster) throw new Error('RedisBus on a Cluster client is not supported yet');
    // The subscriber queues while offline (unlike the fail-fast publisher) and re-subscribes itself.
    const sub = (client as Redis).duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    const bus = new RedisBus(state, sub, nodeId, log);
    await sub.subscribe(bus.#nodeChannel(nodeId), bus.#allChannel());
    return bus;
  }

  publishToNode(nodeId: string, header: BusHeader, frame: Frame | null): Promise<number> {
    return this.#publish(this.#nodeChannel(nodeId), header, frame);
  }

  sendToNode(nodeId: string, header: BusHeader, frame: Frame | null): void {
    this.#batch.add(this.#nodeChannel(nodeId), { header, frame });
  }

  async publishToRoom(roomId: string, header: BusHeader, frame: Frame | null): Promise<void> {
    await this.#publish(this.#roomChannel(roomId), header, frame);
  }

  async publishToAll(header: BusHeader, frame: Frame | null): Promise<void> {
    await this.#publish(this.#allChannel(), header, frame);
  }

  subscribeRoom(roomId: string): void {
    if (this.#rooms.has(roomId)) return;
    this.#rooms.add(roomId);
    this.#sub.subscribe(this.#roomChannel(roomId)).catch((err: unknown) => {
      this.#log.warn({ err, roomId }, 'room subscribe failed');
    });
  }

  unsubscribeRoom(roomId: string): void {
    if (!this.#rooms.delete(roomId)) return;
    this.#sub.unsubscribe(this.#roomChannel(roomId)).catch(() => undefined);
  }

  onMessage(handler: (msg: BusMessage) => void): void {
    if (this.#handler) throw new Error('the bus has one subscriber (the BusRouter); it is already set');
    this.#handler = handler;
  }

  async close(): Promise<void> {
    this.#batch.flush();
    this.#publisher?.close();
    await this.#sub.quit().catch(() => this.#sub.disconnect());
  }

  /** Resolves with the number of subscribers that received it. */
  #publish(channel: string, header: BusHeader, frame: Frame | null): Promise<number> {
    this.#batch.flush(); // what was sent before this goes before it
    const data = encodeBus(this.#nodeId, header, frame);
    if (this.#publisher?.ready) return this.#publisher.publishCounted(channel, data);
    return this.#state.run('publish', (c) => c.publish(channel, data));
  }

  /** One channel's batched messages in one publication; nobody awaits them, so a failure is logged. */
  #sendBatch(channel: string, entries: BusEntry[]): void {
    const data =
      entries.length === 1
        ? encodeBus(this.#nodeId, entries[0].header, entries[0].frame)
        : encodeBusBatch(this.#nodeId, entries);
    if (this.#publisher?.ready) return this.#publisher.publish(channel, data);
    this.#state
      .run('publish', (c) => c.publish(channel, data))
      .catch((err: unknown) =>
        this.#log.warn({ err, channel, messages: entries.length }, 'cross-node delivery failed'),
      );
  }

  #nodeChannel(nodeId: string): string {
    return `${this.#prefix}node:${nodeId}`;
  }

  #allChannel(): string {
    return `${this.#prefix}nodes`;
  }

  #roomChannel(roomId: string): string {
    return `${this.#prefix}room:${roomId}`;
  }
}
