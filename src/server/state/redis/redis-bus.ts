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
 * event-loop turn and node, several in one publication (publish-batch.ts) to a node that reads
 * batches, one publication each to a node of an earlier release (bus-peers.ts); every other
 * publish first sends what is batched, so the bus keeps the order of the calls.
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
  /** Keyed by the receiving node's id. */
  readonly #batch = new PublishBatch((nodeId, entries) => this.#sendBatch(nodeId, entries));
  /** Which nodes read batches (the others, of an earlier release, get single messages). */
  readonly #peers: { readsBatches(nodeId: string): boolean };
  /** Publishes sent through the state client that Redis has not answered yet. */
  #fallbackInFlight = 0;
  /** Publications waiting for those answers before the switch back to the reply-less connection. */
  readonly #held: (() => void)[] = [];
  readonly #stats = { replyLess: 0, fallback: 0, held: 0 };
  /** Publishes without reading replies while it is ready; the state client otherwise. */
  readonly #publisher: ReplyLessPublisher | null;

  private constructor(
    state: RedisState,
    sub: Redis,
    nodeId: string,
    log: Logger,
    peers: { readsBatches(nodeId: string): boolean },
  ) {
    this.#state = state;
    this.#peers = peers;
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
    // Re-subscribing after a reconnect is ours, not ioredis's: its autoResubscribe drops the
    // promise of its SUBSCRIBE, which rejects ("Connection is closed.") unhandled when the node
    // shuts down right after Redis came back. Subscribing again to a channel is harmless.
    sub.on('ready', () => {
      const channels = [this.#nodeChannel(nodeId), this.#allChannel()];
      for (const roomId of this.#rooms) channels.push(this.#roomChannel(roomId));
      sub.subscribe(...channels).catch((err: unknown) => {
        this.#log.debug({ err }, 'redis re-subscribe failed (the connection closed or will retry)');
      });
    });
  }

  /** `peers`: which nodes read batched publications (bus-peers.ts); a node it does not vouch for gets single messages. */
  static async create(
    state: RedisState,
    nodeId: string,
    log: Logger,
    peers: { readsBatches(nodeId: string): boolean },
  ): Promise<RedisBus> {
    const client = state.client;
    if (client.isCluster) throw new Error('RedisBus on a Cluster client is not supported yet');
    // The subscriber queues while offline (unlike the fail-fast publisher); it re-subscribes on
    // every 'ready' (the constructor).
    const sub = (client as Redis).duplicate({
      enableOfflineQueue: true,
      commandTimeout: undefined,
      autoResubscribe: false,
    });
    const bus = new RedisBus(state, sub, nodeId, log, peers);
    await sub.subscribe(bus.#nodeChannel(nodeId), bus.#allChannel());
    return bus;
  }

  publishToNode(nodeId: string, header: BusHeader, frame: Frame | null): Promise<number> {
    return this.#publish(this.#nodeChannel(nodeId), header, frame);
  }

  sendToNode(nodeId: string, header: BusHeader, frame: Frame | null): void {
    this.#batch.add(nodeId, { header, frame });
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
    return this.#out(channel, encodeBus(this.#nodeId, header, frame), true);
  }

  /**
   * One node's messages of this turn: one publication if that node reads batches, else (a node of
   * an earlier release, or one not known yet) one single message each, in order. Nobody awaits
   * them, so a failure is logged.
   */
  #sendBatch(nodeId: string, entries: BusEntry[]): void {
    const channel = this.#nodeChannel(nodeId);
    // Asked even for one message: the first contact with a node not known yet starts its lookup.
    if (this.#peers.readsBatches(nodeId) && entries.length > 1) {
      this.#out(channel, encodeBusBatch(this.#nodeId, entries), false)?.catch(
        this.#failed(channel, entries.length),
      );
      return;
    }
    for (const { header, frame } of entries)
      this.#out(channel, encodeBus(this.#nodeId, header, frame), false)?.catch(this.#failed(channel, 1));
  }

  /** A publication nobody awaits failed (only through the state client: a reply-less one cannot). */
  #failed(channel: string, messages: number) {
    return (err: unknown) => this.#log.warn({ err, channel, messages }, 'cross-node delivery failed');
  }

  /**
   * Every publication leaves here, in call order, through the reply-less connection while it is
   * ready and through the state client otherwise. Two connections have no order between them, so
   * the switch back to the reply-less one waits until Redis has answered every publish sent
   * through the state client: what comes meanwhile is held, in order, and released then.
   * `counted`: the subscriber count is wanted (else a publish through the reply-less connection
   * returns nothing).
   */
  #out(channel: string, data: Buffer, counted: true): Promise<number>;
  #out(channel: string, data: Buffer, counted: false): Promise<number> | undefined;
  #out(channel: string, data: Buffer, counted: boolean): Promise<number> | undefined {
    const p = this.#publisher;
    if (this.#held.length > 0 || (p?.ready && this.#fallbackInFlight > 0)) {
      this.#stats.held++;
      if (!counted) {
        this.#held.push(() => void this.#out(channel, data, false)?.catch(this.#failed(channel, 1)));
        return undefined;
      }
      return new Promise<number>((resolve, reject) =>
        this.#held.push(() => void this.#out(channel, data, true).then(resolve, reject)),
      );
    }
    if (p?.ready) {
      this.#stats.replyLess++;
      if (counted) return p.publishCounted(channel, data);
      p.publish(channel, data);
      return undefined;
    }
    this.#stats.fallback++;
    this.#fallbackInFlight++;
    return this.#state
      .run('publish', (c) => c.publish(channel, data))
      .finally(() => {
        if (--this.#fallbackInFlight === 0) this.#release();
      });
  }

  /** The state client has answered everything: what was held goes out, in order, by the route of now. */
  #release(): void {
    const held = this.#held.splice(0);
    for (const send of held) send();
  }

  /** How publications went out (for tests): reply-less, through the state client, or held for the switch back. */
  get routesForTesting(): { replyLess: number; fallback: number; held: number } {
    return { ...this.#stats };
  }

  /** The reply-less connection (for tests), null when this Redis cannot have one. */
  get publisherForTesting(): ReplyLessPublisher | null {
    return this.#publisher;
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
