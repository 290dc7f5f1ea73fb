import type { Participant } from '../../../protocol/index.js';
import type { JoinOutcome, ResumeRecord, StateStore } from '../state-store.js';

/** Single-node state in process memory. The default. */
export class MemoryState implements StateStore {
  readonly kind = 'memory' as const;
  readonly #rooms = new Map<string, Map<string, Participant>>();
  readonly #resume = new Map<string, { record: ResumeRecord; expiresAt: number }>();

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
    const members = this.#rooms.get(roomId);
    const entry = members?.get(sessionId) ?? null;
    if (members && entry) {
      members.delete(sessionId);
      if (members.size === 0) this.#rooms.delete(roomId);
    }
    return Promise.resolve(entry);
  }

  participants(roomId: string): Promise<Participant[]> {
    return Promise.resolve([...(this.#rooms.get(roomId)?.values() ?? [])]);
  }

  roomCount(): Promise<number> {
    return Promise.resolve(this.#rooms.size);
  }

  putResumeToken(tokenHash: string, record: ResumeRecord, ttlMs: number): Promise<void> {
    this.#sweepResume();
    this.#resume.set(tokenHash, { record, expiresAt: Date.now() + ttlMs });
    return Promise.resolve();
  }

  getResumeToken(tokenHash: string): Promise<ResumeRecord | null> {
    const entry = this.#resume.get(tokenHash);
    if (!entry || entry.expiresAt <= Date.now()) return Promise.resolve(null);
    return Promise.resolve(entry.record);
  }

  takeResumeToken(tokenHash: string): Promise<boolean> {
    const entry = this.#resume.get(tokenHash);
    this.#resume.delete(tokenHash);
    return Promise.resolve(entry !== undefined && entry.expiresAt > Date.now());
  }

  close(): Promise<void> {
    this.#rooms.clear();
    this.#resume.clear();
    return Promise.resolve();
  }

  /** Expired tokens are dropped lazily, amortised over inserts. */
  #sweepResume(): void {
    if (this.#resume.size < 1_024) return;
    const now = Date.now();
    for (const [hash, entry] of this.#resume) if (entry.expiresAt <= now) this.#resume.delete(hash);
  }
}
