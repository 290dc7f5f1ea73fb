import type { BusEntry } from '../../cluster/bus.js';

/**
 * Messages for other nodes gathered over one event-loop turn and published together: one Redis
 * command (one write on this node, one read and one pub/sub delivery on the other) per node
 * and turn instead of one per message. Several client sockets become readable in one poll phase,
 * so a relay under load hands several frames to the same node in one turn.
 *
 * Order: each key's (receiving node's) messages leave in the order they were added; `flush()` sends everything
 * pending at once, so a publish that bypasses the batch flushes it first and keeps the order of
 * the calls. Nothing waits beyond the turn: the flush is a `setImmediate`, which runs right after
 * the poll phase that read the messages.
 */
export class PublishBatch {
  readonly #send: (key: string, entries: BusEntry[]) => void;
  #pending = new Map<string, BusEntry[]>();
  #scheduled = false;

  /** `send` publishes one key's messages (one or more, in order) and handles its own failure. */
  constructor(send: (key: string, entries: BusEntry[]) => void) {
    this.#send = send;
  }

  add(key: string, entry: BusEntry): void {
    const list = this.#pending.get(key);
    if (list) list.push(entry);
    else this.#pending.set(key, [entry]);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onImmediate);
    }
  }

  /** Sends what is pending now, key by key. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [key, entries] of pending) this.#send(key, entries);
  }

  /** Messages waiting for the end of the turn (for tests). */
  get pendingForTesting(): number {
    let n = 0;
    for (const list of this.#pending.values()) n += list.length;
    return n;
  }

  readonly #onImmediate = (): void => {
    this.#scheduled = false;
    this.flush();
  };
}
