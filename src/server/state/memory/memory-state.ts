import type { Participant } from '../../../protocol/index.js';
import type {
  AcquireOutcome,
  CallRecord,
  CallStep,
  FloorHolder,
  HeldLock,
  JoinOutcome,
  LeaveOutcome,
  ResumeRecord,
  StateStore,
} from '../state-store.js';
import { defaults } from '../../config/defaults.js';
import { systemClock, type Clock } from '../../time/clock.js';

/** Single-node state in process memory. The default. */
export class MemoryState implements StateStore {
  readonly kind = 'memory' as const;
  readonly #rooms = new Map<string, Map<string, Participant>>();
  readonly #resume = new Map<string, { record: ResumeRecord; expiresAt: number }>();
  readonly #locks = new Map<string, { lock: HeldLock; expiresAt: number }>();
  /** claimOnce keys → expiry (ms); expired ones are swept once the map doubles. */
  readonly #claims = new Map<string, number>();
  #nextClaimSweepAt: number = defaults.memoryStateSweepAtEntries;
  readonly #calls = new Map<string, { record: CallRecord; expiresAt: number }>();
  /** Size of #calls at which the next sweep of expired call records runs. */
  #nextCallSweepAt: number = defaults.memoryStateSweepAtEntries;
  /** Size of #resume at which the next sweep of expired tokens runs. */
  #nextSweepAt: number = defaults.memoryStateSweepAtEntries;
  /** Last fence handed out per room; never reset, so fences only grow. */
  readonly #fences = new Map<string, number>();
  readonly #clock: Clock;

  /** @param clock expiry of resume tokens and speaker locks. Default: the system clock. */
  constructor({ clock = systemClock }: { clock?: Clock } = {}) {
    this.#clock = clock;
  }

  joinRoom(roomId: string, participant: Participant, maxParticipants: number): Promise<JoinOutcome> {
    let members = this.#rooms.get(roomId);
    if (!members) {
      members = new Map();
      this.#rooms.set(roomId, members);
    }
    if (!members.has(participant.sessionId) && members.size >= maxParticipants) {
      return Promise.resolve({ status: 'full' });
    }
    members.set(participant.sessionId, participant);
    return Promise.resolve({ status: 'joined', participants: [...members.values()] });
  }

  leaveRoom(roomId: string, sessionId: string): Promise<Participant | null> {
    return this.leaveRoomCounted(roomId, sessionId).then((o) => o?.participant ?? null);
  }

  leaveRoomCounted(roomId: string, sessionId: string): Promise<LeaveOutcome | null> {
    const members = this.#rooms.get(roomId);
    const entry = members?.get(sessionId) ?? null;
    if (!members || !entry) return Promise.resolve(null);
    members.delete(sessionId);
    if (members.size === 0) this.#rooms.delete(roomId);
    return Promise.resolve({ participant: entry, remaining: members.size });
  }

  roomIds(): Promise<string[]> {
    return Promise.resolve([...this.#rooms.keys()]);
  }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    if (this.#claimLive(key)) return Promise.resolve(false);
    this.#claims.set(key, this.#clock.now() + ttlMs);
    if (this.#claims.size >= this.#nextClaimSweepAt) {
      for (const k of [...this.#claims.keys()]) this.#claimLive(k);
      this.#nextClaimSweepAt = Math.max(defaults.memoryStateSweepAtEntries, this.#claims.size * 2);
    }
    return Promise.resolve(true);
  }

  hasClaim(key: string): Promise<boolean> {
    return Promise.resolve(this.#claimLive(key));
  }

  #claimLive(key: string): boolean {
    const expiresAt = this.#claims.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.#clock.now()) return true;
    this.#claims.delete(key);
    return false;
  }

  participants(roomId: string): Promise<Participant[]> {
    return Promise.resolve([...(this.#rooms.get(roomId)?.values() ?? [])]);
  }

  roomCount(): Promise<number> {
    return Promise.resolve(this.#rooms.size);
  }

  putResumeToken(tokenHash: string, record: ResumeRecord, ttlMs: number): Promise<void> {
    this.#sweepResume();
    this.#resume.set(tokenHash, { record, expiresAt: this.#clock.now() + ttlMs });
    return Promise.resolve();
  }

  getResumeToken(tokenHash: string): Promise<ResumeRecord | null> {
    const entry = this.#resume.get(tokenHash);
    if (!entry || entry.expiresAt <= this.#clock.now()) return Promise.resolve(null);
    return Promise.resolve(entry.record);
  }

  takeResumeToken(tokenHash: string): Promise<boolean> {
    const entry = this.#resume.get(tokenHash);
    this.#resume.delete(tokenHash);
    return Promise.resolve(entry !== undefined && entry.expiresAt > this.#clock.now());
  }

  acquireSpeaker(
    roomId: string,
    holder: FloorHolder,
    ttlMs: number,
    replaceFence?: number,
  ): Promise<AcquireOutcome> {
    const current = this.#liveLock(roomId);
    if (current && current.fence !== replaceFence) return Promise.resolve({ granted: false, current });
    const fence = (this.#fences.get(roomId) ?? 0) + 1;
    this.#fences.set(roomId, fence);
    this.#locks.set(roomId, { lock: { ...holder, fence }, expiresAt: this.#clock.now() + ttlMs });
    return Promise.resolve({ granted: true, fence });
  }

  renewSpeaker(roomId: string, fence: number, ttlMs: number): Promise<boolean> {
    const entry = this.#locks.get(roomId);
    if (!entry || entry.lock.fence !== fence || entry.expiresAt <= this.#clock.now())
      return Promise.resolve(false);
    entry.expiresAt = this.#clock.now() + ttlMs;
    return Promise.resolve(true);
  }

  releaseSpeaker(roomId: string, fence: number): Promise<boolean> {
    const entry = this.#locks.get(roomId);
    if (!entry || entry.lock.fence !== fence) return Promise.resolve(false);
    this.#locks.delete(roomId);
    return Promise.resolve(entry.expiresAt > this.#clock.now());
  }

  currentSpeaker(roomId: string): Promise<HeldLock | null> {
    return Promise.resolve(this.#liveLock(roomId));
  }

  #liveLock(roomId: string): HeldLock | null {
    const entry = this.#locks.get(roomId);
    if (!entry) return null;
    if (entry.expiresAt <= this.#clock.now()) {
      this.#locks.delete(roomId);
      return null;
    }
    return entry.lock;
  }

  getCall(callKey: string): Promise<CallRecord | null> {
    const record = this.#liveCall(callKey);
    return Promise.resolve(record ? copyCall(record) : null);
  }

  updateCall(callKey: string, step: CallStep, ttlMs: number): Promise<CallRecord | null> {
    let record = this.#liveCall(callKey);
    if (!record) {
      if (step.op !== 'ring') return Promise.resolve(null);
      this.#sweepCalls();
      const { callerId, callerSession, rung } = step;
      record = { callerId, callerSession, rung: [...rung], callee: null, busy: [], ended: false };
    } else if (record.ended) {
      return Promise.resolve(copyCall(record)); // as it ended, and until then
    } else if (step.op === 'answer') {
      record.callee ??= step.session;
    } else if (step.op === 'busy') {
      if (record.callee === null && !record.busy.includes(step.session)) record.busy.push(step.session);
    } else if (step.op === 'end') {
      record.ended = true;
    }
    this.#calls.set(callKey, { record, expiresAt: this.#clock.now() + ttlMs });
    return Promise.resolve(copyCall(record));
  }

  #liveCall(callKey: string): CallRecord | null {
    const entry = this.#calls.get(callKey);
    if (!entry) return null;
    if (entry.expiresAt <= this.#clock.now()) {
      this.#calls.delete(callKey);
      return null;
    }
    return entry.record;
  }

  /** As #sweepResume: amortised over inserts. */
  #sweepCalls(): void {
    if (this.#calls.size < this.#nextCallSweepAt) return;
    const now = this.#clock.now();
    for (const [key, entry] of this.#calls) if (entry.expiresAt <= now) this.#calls.delete(key);
    this.#nextCallSweepAt = Math.max(defaults.memoryStateSweepAtEntries, this.#calls.size * 2);
  }

  close(): Promise<void> {
    this.#locks.clear();
    this.#calls.clear();
    this.#rooms.clear();
    this.#resume.clear();
    this.#claims.clear();
    return Promise.resolve();
  }

  /**
   * Expired tokens are dropped lazily, amortised over inserts: a sweep runs once the map has doubled
   * since the last one. (It used to run on every insert past 1,024 entries, and every live session
   * holds a token, so each connect walked all of them: quadratic, 2.5% of the server's CPU in a
   * 6k-connection ramp and growing with the square of the node's size; bench/ scenario 2.)
   */
  #sweepResume(): void {
    if (this.#resume.size < this.#nextSweepAt) return;
    const now = this.#clock.now();
    for (const [hash, entry] of this.#resume) if (entry.expiresAt <= now) this.#resume.delete(hash);
    this.#nextSweepAt = Math.max(defaults.memoryStateSweepAtEntries, this.#resume.size * 2);
  }
}

function copyCall(r: CallRecord): CallRecord {
  return { ...r, rung: [...r.rung], busy: [...r.busy] };
}
