import type { CallRelayType } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { CallRecord, CallStep } from '../state/state-store.js';

/** Where call records live: the state store, through a node-local cache (call-records.ts). */
export interface CallRecordStore {
  get(callKey: string): Promise<CallRecord | null>;
  /** The record as this node already knows it (null: known absent), or undefined. */
  peek(callKey: string): CallRecord | null | undefined;
  update(callKey: string, step: CallStep, ttlMs: number): Promise<CallRecord | null>;
}

/** Who gets one call message, once the multi-device rules have looked at it. */
export interface CallPlan {
  /**
   * `everyone`: every session of the recipient but the sender's (the call rings, or the server has
   * no record of it); `only`: just these sessions; null: nobody (absorbed).
   */
  deliver: 'everyone' | { only: readonly string[] } | null;
  /** The other devices of the sender's user that rang: they get `call:answered-elsewhere`. */
  answeredElsewhere?: { sessions: string[]; callerId: string; outcome: 'accepted' | 'rejected' };
}

/** The sender of a call message: one session of one user. */
export interface CallSender {
  id: string;
  userId: string;
}

const EVERYONE: CallPlan = { deliver: 'everyone' };
const NOBODY: CallPlan = { deliver: null };
const only = (session: string): CallPlan => ({ deliver: { only: [session] } });

/** Names a call and its two users, whichever of them sends (the state store's key for it). */
export function callKeyOf(callId: string, x: string, y: string): string {
  return x < y ? `${callId}\u0000${x}\u0000${y}` : `${callId}\u0000${y}\u0000${x}`;
}

/**
 * Multi-device rules of 1:1 calls, for any client. The first offer of a callId records the
 * caller's session and rings every session of the callee. The first callee session to accept
 * (or answer, reject, hang up) wins: from then on the call is between those two sessions only,
 * the other devices that rang get `call:answered-elsewhere`, and their own messages for the call
 * are refused with CALL_ANSWERED_ELSEWHERE. A `reject` with reason `busy` declines only that device;
 * the caller hears `busy` once every device that rang (and is still online) declined so.
 *
 * The record is in the state store, so the rule holds when the devices sit on different nodes;
 * an answered call's record no longer changes, so each node keeps the ones it routes in memory.
 */
export class CallAnswering {
  readonly #store: CallRecordStore;
  /** Answered calls, oldest first (a Map keeps insertion order). */
  readonly #answered = new Map<string, CallRecord>();

  constructor(store: CallRecordStore) {
    this.#store = store;
  }

  /**
   * Decides who gets `type` from `sender` to `recipientId`, applying its step to the call's record.
   * `rung()` lists the recipient's sessions an offer reaches (for the first offer); `online()`
   * lists the sender's user's live sessions (for a busy decline); `mayRing()` says whether the
   * sender may start a call with the recipient (CALL_POLICY). Throws CALL_ANSWERED_ELSEWHERE,
   * CALL_NOT_FOUND (no call, and not an offer) and CALL_NOT_ALLOWED.
   */
  async plan(
    sender: CallSender,
    msg: { type: CallRelayType; recipientId: string; callId: string; reason?: string | undefined },
    rung: () => string[],
    online: () => Promise<ReadonlySet<string>>,
    mayRing: () => boolean | Promise<boolean>,
  ): Promise<CallPlan> {
    const { type, recipientId, callId } = msg;
    const key = callKeyOf(callId, sender.userId, recipientId);
    let rec = this.#answered.get(key) ?? (await this.#store.get(key));
    if (!rec) {
      const none = noCall(msg);
      if (none) return none;
      // Asked before anything about the recipient's presence, so a refusal says nothing about it.
      if (!(await mayRing())) {
        throw new ParleyError('CALL_NOT_ALLOWED', `you may not call "${recipientId}"`, { recipientId });
      }
      const rang = rung();
      if (rang.length === 0) return EVERYONE; // nobody to ring: RECIPIENT_OFFLINE, and no record
      const step = { op: 'ring', callerId: sender.userId, callerSession: sender.id, rung: rang } as const;
      rec = await this.#store.update(key, step, defaults.callRecordTtlMs);
      if (!rec || rec.callerSession === sender.id) return EVERYONE;
    }
    const now = this.#decide(key, rec, sender, msg);
    if (now !== undefined) return now;
    // What #decide leaves is a change to the record: a call that ends, or a ringing call answered.
    if (sender.id === rec.callerSession) {
      await this.end(key);
      return rec.callee !== null ? only(rec.callee) : EVERYONE;
    }
    if (rec.callee !== null) {
      await this.end(key);
      return only(rec.callerSession);
    }
    const ends = type === 'call:hangup' || type === 'call:reject';
    if (type === 'call:reject' && msg.reason === 'busy') return this.#busy(key, sender, online);
    const after = await this.#store.update(
      key,
      { op: 'answer', session: sender.id },
      defaults.callRecordTtlMs,
    );
    if (!after) return only(rec.callerSession); // expired in between: nothing left to decide
    if (after.ended) return over(msg); // ended in between, on another node
    if (after.callee !== sender.id) return refuse(type);
    this.#remember(key, after);
    if (ends) await this.end(key);
    return {
      deliver: { only: [after.callerSession] },
      answeredElsewhere: {
        sessions: after.rung.filter((s) => s !== sender.id),
        callerId: after.callerId,
        outcome: ends ? 'rejected' : 'accepted',
      },
    };
  }

  /**
   * `plan` without waiting, when the call's record (or its absence) is known on this node and the
   * message changes nothing in it: an offer, answer or candidate in a known call, a candidate for
   * no call, and the refusals. Undefined: only `plan` can decide (a record to read from the state
   * store, or to change). Same plans and same refusals as `plan`, which runs the same decision.
   */
  planNow(
    sender: CallSender,
    msg: { type: CallRelayType; recipientId: string; callId: string },
  ): CallPlan | undefined {
    const key = callKeyOf(msg.callId, sender.userId, msg.recipientId);
    const rec = this.#answered.get(key) ?? this.#store.peek(key);
    if (rec === undefined) return undefined;
    if (rec === null) return noCall(msg) ?? undefined;
    return this.#decide(key, rec, sender, msg);
  }

  /**
   * The plan for a message of a call whose record is `rec`, when it changes nothing in the record;
   * undefined when it does (the call ends, or a ringing call is answered, rejected or hung up).
   */
  #decide(
    key: string,
    rec: CallRecord,
    sender: CallSender,
    msg: { type: CallRelayType; recipientId: string; callId: string },
  ): CallPlan | undefined {
    const { type, recipientId } = msg;
    if (rec.ended) {
      // A device the call rang and another one answered heard `call:answered-elsewhere`: it is
      // still told so. Every other session of either user (the call's own two, a returning user's
      // new session, another device of the caller) is told the call ended.
      if (rec.callee !== null && rec.callee !== sender.id && rec.rung.includes(sender.id))
        return refuse(type);
      return over(msg);
    }
    if (rec.callee !== null) this.#remember(key, rec);
    const ends = type === 'call:hangup' || type === 'call:reject';
    if (sender.id === rec.callerSession) {
      if (ends) return undefined;
      return rec.callee !== null ? only(rec.callee) : EVERYONE;
    }
    // Not the caller's session: the callee's side, unless it is another device of the caller (a
    // user calling themselves has both sides).
    if (sender.userId === rec.callerId && sender.userId !== recipientId) return refuse(type);
    if (rec.callee !== null) {
      if (rec.callee !== sender.id) return refuse(type);
      if (ends) return undefined;
      return only(rec.callerSession);
    }
    // The call rings: this device may answer it.
    if (type === 'call:ice-candidate' || type === 'call:offer') return only(rec.callerSession);
    return undefined;
  }

  /**
   * Another node changed the call's record (the bus): an answered call this node routes from
   * memory may have ended there, so its next message reads the record again.
   */
  forget(callKey: string): void {
    this.#answered.delete(callKey);
  }

  /** Calls this node routes from memory (tests). */
  get answeredCountForTesting(): number {
    return this.#answered.size;
  }

  async #busy(
    key: string,
    sender: CallSender,
    online: () => Promise<ReadonlySet<string>>,
  ): Promise<CallPlan> {
    const after = await this.#store.update(key, { op: 'busy', session: sender.id }, defaults.callRecordTtlMs);
    if (!after || after.callee !== null || after.ended) return NOBODY;
    const live = await online();
    const ringing = after.rung.filter((s) => s !== sender.id && !after.busy.includes(s) && live.has(s));
    if (ringing.length > 0) return NOBODY; // another device still rings: it may answer
    await this.end(key);
    return only(after.callerSession);
  }

  /**
   * Marks the call ended (its record kept `endedCallTtlMs`, and the other nodes told through the
   * records' bus): also when one side left for good, so that a late message of the call is
   * refused as ended rather than routed to a session that is gone.
   */
  async end(key: string): Promise<void> {
    this.#answered.delete(key);
    await this.#store.update(key, { op: 'end' }, defaults.endedCallTtlMs);
  }

  #remember(key: string, rec: CallRecord): void {
    if (this.#answered.has(key)) return;
    this.#answered.set(key, rec);
    if (this.#answered.size > defaults.answeredCallCacheSize) {
      const oldest = this.#answered.keys().next().value;
      if (oldest !== undefined) this.#answered.delete(oldest);
    }
  }
}

/**
 * A message for a call that does not exist. Only an offer starts a call (issue 13): anything else
 * needs one between the two users, and trickled candidates for no call are noise, dropped silently
 * like those for someone gone. Null: an offer, which may start one.
 */
function noCall(msg: { type: CallRelayType; recipientId: string; callId: string }): CallPlan | null {
  if (msg.type === 'call:ice-candidate') return NOBODY;
  if (msg.type !== 'call:offer') {
    throw new ParleyError('CALL_NOT_FOUND', `no call "${msg.callId}" between you and "${msg.recipientId}"`);
  }
  return null;
}

/**
 * A message of a call that has ended, from one of its two sessions, while its record lives
 * (`endedCallTtlMs`). Its late candidates and hang-ups (both sides hanging up at once) are noise,
 * dropped silently; an offer, answer or accept is refused: a call id names one call, and a new
 * call needs a new one. Neither side hears of it again, and the call is not tracked again.
 */
function over(msg: { type: CallRelayType; recipientId: string; callId: string }): CallPlan {
  const { type, callId, recipientId } = msg;
  if (type === 'call:ice-candidate' || type === 'call:hangup' || type === 'call:reject') return NOBODY;
  throw new ParleyError(
    'CALL_NOT_FOUND',
    `call "${callId}" with "${recipientId}" has ended; a new call needs a new callId`,
    { callId, recipientId, ended: true },
  );
}

/** Another device's call: its candidates are dropped silently, anything else is refused. */
function refuse(type: CallRelayType): CallPlan {
  if (type === 'call:ice-candidate') return NOBODY;
  throw new ParleyError(
    'CALL_ANSWERED_ELSEWHERE',
    'this call was answered on another of your devices, or is handled there',
  );
}
