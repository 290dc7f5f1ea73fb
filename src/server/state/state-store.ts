import type { Participant } from '../../protocol/index.js';

export type JoinOutcome =
  { status: 'joined'; participants: Participant[] } | { status: 'full'; participants?: undefined };

export interface ResumeRecord {
  sessionId: string;
  userId: string;
}

/**
 * Shared state: what every node must agree on. `memory` (one node) and `redis` (many nodes)
 * implement it side by side and pass the same contract suite. Methods are async because the
 * Redis implementation is; the memory one resolves at once.
 */
export interface StateStore {
  readonly kind: 'memory' | 'redis';

  /**
   * Adds a participant unless the room already has `maxParticipants` (atomic check-and-add).
   * Re-adding the same sessionId replaces its entry. Returns the members after the join.
   */
  joinRoom(roomId: string, participant: Participant, maxParticipants: number): Promise<JoinOutcome>;
  /** Removes a session from a room. Returns the removed entry, or null if it was not a member. */
  leaveRoom(roomId: string, sessionId: string): Promise<Participant | null>;
  participants(roomId: string): Promise<Participant[]>;
  /** Rooms that currently have at least one member. */
  roomCount(): Promise<number>;

  /** Stores a resume token's hash for a session until it is taken or the ttl passes. */
  putResumeToken(tokenHash: string, record: ResumeRecord, ttlMs: number): Promise<void>;
  getResumeToken(tokenHash: string): Promise<ResumeRecord | null>;
  /** Deletes a token; true only for the one caller that deleted it (single use under races). */
  takeResumeToken(tokenHash: string): Promise<boolean>;

  close(): Promise<void>;
}
