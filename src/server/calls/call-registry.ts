import type { CallRelayType } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../time/clock.js';

/** Most concurrent calls one user may have tracked; the oldest is forgotten beyond it. */
const MAX_CALLS_PER_USER = defaults.maxCallsPerUser;

interface CallEntry {
  callId: string;
  a: string;
  b: string;
  startedAt: number;
}

/**
 * Remembers which 1:1 calls are up, only so the other side hears a hang-up when a user
 * disappears without one. Keyed by (callId, user pair): another pair reusing a callId is a
 * different call.
 */
export class CallRegistry {
  readonly #calls = new Map<string, CallEntry>();
  readonly #byUser = new Map<string, Set<string>>();
  readonly #log: Logger;
  readonly #clock: Clock;

  constructor(log: Logger, clock: Clock) {
    this.#log = log;
    this.#clock = clock;
  }

  get size(): number {
    return this.#calls.size;
  }

  track(type: CallRelayType, from: string, to: string, callId: string): void {
    if (type === 'call:hangup' || type === 'call:reject') {
      this.end(from, to, callId);
      return;
    }
    // Offers, answers and accepts all mark a live call: each side's node learns of it from what its
    // own user sends, which is what matters when the two sides sit on different nodes.
    if (type === 'call:ice-candidate') return;
    const key = keyOf(from, to, callId);
    if (this.#calls.has(key)) return;
    this.#calls.set(key, { callId, a: from, b: to, startedAt: this.#clock.now() });
    this.#index(from, key);
    this.#index(to, key);
  }

  end(from: string, to: string, callId: string): void {
    this.#remove(keyOf(from, to, callId));
  }

  /** Forgets every call of a user and returns them with the other party's id. */
  endAllOf(userId: string): { callId: string; peerId: string }[] {
    const keys = this.#byUser.get(userId);
    if (!keys) return [];
    const out: { callId: string; peerId: string }[] = [];
    for (const key of [...keys]) {
      const entry = this.#calls.get(key);
      if (entry) out.push({ callId: entry.callId, peerId: entry.a === userId ? entry.b : entry.a });
      this.#remove(key);
    }
    return out;
  }

  #index(userId: string, key: string): void {
    let keys = this.#byUser.get(userId);
    if (!keys) {
      keys = new Set();
      this.#byUser.set(userId, keys);
    }
    keys.add(key);
    if (keys.size > MAX_CALLS_PER_USER) {
      const oldest = keys.values().next().value;
      if (oldest !== undefined) {
        this.#log.debug({ userId }, 'forgetting oldest tracked call');
        this.#remove(oldest);
      }
    }
  }

  #remove(key: string): void {
    const entry = this.#calls.get(key);
    if (!entry) return;
    this.#calls.delete(key);
    for (const user of [entry.a, entry.b]) {
      const keys = this.#byUser.get(user);
      keys?.delete(key);
      if (keys?.size === 0) this.#byUser.delete(user);
    }
  }
}

function keyOf(x: string, y: string, callId: string): string {
  return x < y ? `${x}\u0000${y}\u0000${callId}` : `${y}\u0000${x}\u0000${callId}`;
}
