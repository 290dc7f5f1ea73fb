import type { Participant } from '../../protocol/index.js';

/** A leave, with how many members the room has after it (0: it just emptied). */
export interface LeaveOutcome {
  participant: Participant;
  remaining: number;
}

export type JoinOutcome =
  { status: 'joined'; participants: Participant[] } | { status: 'full'; participants?: undefined };

export interface ResumeRecord {
  sessionId: string;
  userId: string;
}

/** Who holds a room's PTT floor, as stored with the speaker lock (so any node can name them). */
export interface FloorHolder {
  sessionId: string;
  userId: string;
  name: string;
  /** false: `name` was chosen by the client (see Participant.nameVerified). */
  nameVerified?: false;
  /** PTT priority from the holder's token. */
  priority: number;
  /** Server time (ms) the floor was granted. */
  since: number;
}

/** A held lock: the holder and its fencing token (strictly increasing per room). */
export interface HeldLock extends FloorHolder {
  fence: number;
}

export type AcquireOutcome = { granted: true; fence: number } | { granted: false; current: HeldLock };

/**
 * Which sessions hold the two ends of a 1:1 call, so that of a callee's devices exactly one answers,
 * whichever nodes they are on (see calls/call-answering.ts).
 */
export interface CallRecord {
  callerId: string;
  callerSession: string;
  /** The callee's sessions the first offer rang. */
  rung: string[];
  /** The callee session that accepted or rejected first; null while the call rings. */
  callee: string | null;
  /** Callee sessions that declined because they are busy in another call. */
  busy: string[];
  /**
   * The call ended (hang-up, rejection, or every device busy). An ended record never changes again
   * and is not kept longer by later steps: it lives `endedCallTtlMs`, so that the call's late
   * messages are told from a new call's (call-answering.ts).
   */
  ended: boolean;
}

/**
 * One atomic change to a {@link CallRecord}. Every step but `ring` does nothing to a missing record,
 * and no step changes an ended one (nor its expiry).
 */
export type CallStep =
  /** The first offer: creates the record unless it exists. */
  | { op: 'ring'; callerId: string; callerSession: string; rung: readonly string[] }
  /** A callee session accepts or rejects: becomes `callee` unless another already is. */
  | { op: 'answer'; session: string }
  /** A callee session declines as busy (ignored once someone answered). */
  | { op: 'busy'; session: string }
  /** The call ended: marked `ended`, the record lives on for `ttlMs` only, so late messages are still refused. */
  | { op: 'end' };

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
  /**
   * The same, also saying how many members remain (atomically: exactly one leave sees 0, so a
   * room's end is observed once across the cluster).
   */
  leaveRoomCounted(roomId: string, sessionId: string): Promise<LeaveOutcome | null>;
  participants(roomId: string): Promise<Participant[]>;
  /** Rooms that currently have at least one member. */
  roomCount(): Promise<number>;
  /** Ids of the rooms that currently have at least one member (the server API lists them). */
  roomIds(): Promise<string[]>;

  /**
   * Marks `key` for `ttlMs` if it is not marked yet (SET NX PX). True only for the one caller that
   * marked it: events seen by several nodes are emitted once, bans and tombstones are recorded.
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Whether `key` is marked (and not expired). */
  hasClaim(key: string): Promise<boolean>;

  /** Stores a resume token's hash for a session until it is taken or the ttl passes. */
  putResumeToken(tokenHash: string, record: ResumeRecord, ttlMs: number): Promise<void>;
  getResumeToken(tokenHash: string): Promise<ResumeRecord | null>;
  /** Deletes a token; true only for the one caller that deleted it (single use under races). */
  takeResumeToken(tokenHash: string): Promise<boolean>;

  /**
   * Takes the room's speaker lock if it is free (SET NX PX semantics), for `ttlMs`. Each grant gets
   * a fencing token greater than every earlier one for the room. If `replaceFence` is given and
   * equals the current holder's fence, the lock is taken over from that holder (pre-emption).
   */
  acquireSpeaker(
    roomId: string,
    holder: FloorHolder,
    ttlMs: number,
    replaceFence?: number,
  ): Promise<AcquireOutcome>;
  /** Extends the lock only if it is still held with `fence`. False: it was lost (expired, taken over). */
  renewSpeaker(roomId: string, fence: number, ttlMs: number): Promise<boolean>;
  /** Releases only if still held with `fence` (compare-and-delete): a stale holder cannot free another's lock. */
  releaseSpeaker(roomId: string, fence: number): Promise<boolean>;
  currentSpeaker(roomId: string): Promise<HeldLock | null>;

  /** A 1:1 call's record (null: unknown, or expired). `callKey` names the call and its two users. */
  getCall(callKey: string): Promise<CallRecord | null>;
  /** Applies `step` atomically, (re)arms the record's expiry to `ttlMs`, and returns it after. */
  updateCall(callKey: string, step: CallStep, ttlMs: number): Promise<CallRecord | null>;

  close(): Promise<void>;
}
