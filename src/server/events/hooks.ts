import type { Logger } from '../logger.js';

/** An event map: event name → listener arguments, e.g. `{ left: [session: Session, roomId: string] }`. */
export type HookMap = { [event: string]: unknown[] };
export type HookListener<Args extends unknown[]> = (...args: Args) => void | Promise<void>;
/** A named listener: the name is what the log says when it fails. */
export type HookStep<Args extends unknown[]> = readonly [name: string, listener: HookListener<Args>];

/**
 * The one way server components tell each other what happened. One rule for every event:
 * listeners run one after another in the order they were declared (an async one is awaited before
 * the next starts), and a listener that throws or rejects is logged and isolated: the others
 * still run and the emitter never fails. Each event's listeners are declared together, in one
 * `on()` call, so their order is code (the wiring in index.ts), not an accident of registration.
 */
export class Hooks<Events extends HookMap> {
  readonly #steps = new Map<keyof Events, readonly HookStep<never>[]>();
  readonly #log: Logger;
  readonly #owner: string;

  constructor(owner: string, log: Logger) {
    this.#owner = owner;
    this.#log = log;
  }

  /** Declares the listeners of `event`, in the order they must run. Once per event. */
  on<K extends keyof Events>(event: K, steps: readonly HookStep<Events[K]>[]): void {
    if (this.#steps.has(event)) {
      throw new Error(`${this.#owner}: the listeners of "${String(event)}" are already declared`);
    }
    this.#steps.set(event, steps);
  }

  /** Runs the listeners of `event` in order. Never rejects. */
  async emit<K extends keyof Events>(event: K, ...args: Events[K]): Promise<void> {
    const steps = this.#steps.get(event) as readonly HookStep<Events[K]>[] | undefined;
    if (!steps) return;
    for (const [name, listener] of steps) {
      try {
        await listener(...args);
      } catch (err) {
        this.#log.error({ err, owner: this.#owner, event, listener: name }, 'listener failed');
      }
    }
  }
}
