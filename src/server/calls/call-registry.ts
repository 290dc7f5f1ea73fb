import type { CallRelayType } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../time/clock.js';
import { callKeyOf } from './call-answering.js';

/** Most concurrent calls one user may have tracked; the oldest is forgotten beyond it. */
const MAX_CALLS_PER_USER = defaults.maxCallsPerUser;

interface CallEntry {
  callId: string;
  /** The call's record in shared state (call-answering.ts's `callKeyOf`). */
  recordKey: string;
  /** Who sent the first message this node saw (the caller when that was the offer). */
  a: string;
  b: string;
  startedAt: number;
  answeredAt: number | null;
}

/** A call as the server API and call events see it. `key` names it across nodes. */
export interface CallInfo {
  key: string;
  callId: string;
  callerId: string;
  calleeId: string;
  startedAt: number;
  answeredAt: number | null;
}

export type CallEndReason = 'hangup' | 'rejected' | 'disconnected';

/** What a tracked message changed about a call (on this node). */
export type CallChange =
  | { kind: 'started'; call: CallInfo }
  | { kind: 'answered'; call: CallInfo }
  | { kind: 'ended'; call: CallInfo; reason: CallEndReason; at: number };

/**
 * Remembers which 1:1 calls are up, only so the other side hears a hang-up when a user
 * disappears without one. Keyed by (callId, user pair): another pair reusing a callId is a
 * different call.
 */
export class CallRegistry {
  readonly #calls = new Map<string, CallEntry>();
  readonly #byUser = new Map<string, Set<string>>();
  /** Record key → this registry's key, for a call's end seen by another node. */
  readonly #byRecord = new Map<string, string>();
  readonly #log: Logger;
  readonly #clock: Clock;
  #epoch = 0;

  constructor(log: Logger, clock: Clock) {
    this.#log = log;
    this.#clock = clock;
  }

  get size(): number {
    return this.#calls.size;
  }

  /**
   * Changes whenever what `track` would do for some message changes: a call is added, answered or
   * removed (ended, forgotten). The call relay's kept routes (call-routes.ts) skip `track` only
   * while it holds.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Notes a call message `from` sent to `to` and returns what it changed here, if anything. A
   * node learns of a call from what its own user sends, which is what matters when the two sides
   * sit on different nodes: the callee's node first hears of it from the callee's answer.
   */
  track(type: CallRelayType, from: string, to: string, callId: string): CallChange | null {
    if (type === 'call:hangup' || type === 'call:reject') {
      return this.end(from, to, callId, type === 'call:reject' ? 'rejected' : 'hangup');
    }
    if (type === 'call:ice-candidate') return null;
    const key = keyOf(from, to, callId);
    const now = this.#clock.now();
    const answer = type === 'call:answer' || type === 'call:accept';
    let entry = this.#calls.get(key);
    if (!entry) {
      // An answer first: this is the callee's node, and `to` is the caller.
      const recordKey = callKeyOf(callId, from, to);
      entry = answer
        ? { callId, recordKey, a: to, b: from, startedAt: now, answeredAt: null }
        : { callId, recordKey, a: from, b: to, startedAt: now, answeredAt: null };
      this.#calls.set(key, entry);
      this.#byRecord.set(recordKey, key);
      this.#epoch++;
      this.#index(from, key);
      this.#index(to, key);
      if (!answer) return { kind: 'started', call: infoOf(key, entry) };
    }
    if (answer && entry.answeredAt === null && from === entry.b) {
      entry.answeredAt = now;
      this.#epoch++;
      return { kind: 'answered', call: infoOf(key, entry) };
    }
    return null;
  }

  /** Ends a call; returns the change when this node knew it, or a bare one when only the end was seen. */
  end(from: string, to: string, callId: string, reason: CallEndReason = 'hangup'): CallChange | null {
    const key = keyOf(from, to, callId);
    const at = this.#clock.now();
    const entry = this.#calls.get(key);
    this.#remove(key);
    if (entry) return { kind: 'ended', call: infoOf(key, entry), reason, at };
    if (reason !== 'rejected') return null;
    // A rejection on the callee's node, which never tracked the ringing call: still the call's end.
    const bare = { callId, a: to, b: from };
    return { kind: 'ended', call: infoOf(key, { ...bare, startedAt: at, answeredAt: null }), reason, at };
  }

  /** Forgets every call of a user and returns them with the other party's id. */
  endAllOf(userId: string): { callId: string; peerId: string; change: CallChange }[] {
    const keys = this.#byUser.get(userId);
    if (!keys) return [];
    const at = this.#clock.now();
    const out: { callId: string; peerId: string; change: CallChange }[] = [];
    for (const key of [...keys]) {
      const entry = this.#calls.get(key);
      if (entry) {
        const change = {
          kind: 'ended' as const,
          call: infoOf(key, entry),
          reason: 'disconnected' as const,
          at,
        };
        out.push({ callId: entry.callId, peerId: entry.a === userId ? entry.b : entry.a, change });
      }
      this.#remove(key);
    }
    return out;
  }

  /** Whether this node tracks the call whose shared-state record is `recordKey`. */
  tracksRecord(recordKey: string): boolean {
    return this.#byRecord.has(recordKey);
  }

  /**
   * Forgets a call that ended on another node (that node tracked and announced its end): its users
   * leaving later must not end it again.
   */
  forgetRecord(recordKey: string): void {
    const key = this.#byRecord.get(recordKey);
    if (key !== undefined) this.#remove(key);
  }

  /** The calls this node tracks (the server API merges every node's, minus those ended elsewhere). */
  list(): CallInfo[] {
    return [...this.#calls].map(([key, entry]) => infoOf(key, entry));
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
    this.#byRecord.delete(entry.recordKey);
    this.#epoch++;
    for (const user of [entry.a, entry.b]) {
      const keys = this.#byUser.get(user);
      keys?.delete(key);
      if (keys?.size === 0) this.#byUser.delete(user);
    }
  }
}

function infoOf(key: string, e: Omit<CallEntry, 'recordKey'>): CallInfo {
  return {
    key,
    callId: e.callId,
    callerId: e.a,
    calleeId: e.b,
    startedAt: e.startedAt,
    answeredAt: e.answeredAt,
  };
}

function keyOf(x: string, y: string, callId: string): string {
  return x < y ? `${x}\u0000${y}\u0000${callId}` : `${y}\u0000${x}\u0000${callId}`;
}
