import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Participant, Recording, WebhookEventInput } from '../../protocol/index.js';
import type { CallEndReason, CallInfo } from '../calls/call-registry.js';
import type { WebhookConfig } from '../config/env.js';
import type { Logger } from '../logger.js';
import type { FloorEvents } from '../ptt/floor-control.js';
import type { DepartureReason, RoomRef } from '../rooms/room-service.js';
import type { Clock } from '../time/clock.js';
import { WebhookQueue } from './webhook-queue.js';

type Who = { userId: string; name: string };

/**
 * Turns what the components announce (their hooks, wired in index.ts) into webhook events and
 * queues them. Each event is announced by exactly one node of the cluster (see the components'
 * hooks), so each is delivered once per URL (plus retries, which repeat its id). Without
 * WEBHOOK_URLS it does nothing.
 */
export class Webhooks {
  readonly #queue: WebhookQueue | null;
  readonly #nodeId: string;
  readonly #clock: Clock;

  constructor(deps: {
    config: WebhookConfig;
    nodeId: string;
    registry: Registry;
    log: Logger;
    clock: Clock;
  }) {
    const { urls, secret } = deps.config;
    this.#nodeId = deps.nodeId;
    this.#clock = deps.clock;
    this.#queue =
      urls.length > 0 && secret
        ? new WebhookQueue({ urls, secret, registry: deps.registry, log: deps.log, clock: deps.clock })
        : null;
  }

  /** Queues one event (id, time and node are added). `orderKey`: events of one key arrive in order. */
  emit(event: WebhookEventInput, orderKey: string): void {
    if (!this.#queue) return;
    const id = `evt_${randomUUID()}`;
    const body = JSON.stringify({ id, createdAt: this.#clock.now(), node: this.#nodeId, ...event });
    this.#queue.enqueue(id, event.event, body, orderKey);
  }

  // ---- listeners (declared in index.ts) ---------------------------------------------------------------

  readonly memberJoined = (room: RoomRef, participant: Participant, first: boolean): void => {
    if (first) this.emit({ event: 'room.started', room }, room.roomId);
    this.emit({ event: 'participant.joined', roomId: room.roomId, participant }, room.roomId);
  };

  readonly memberLeft = (
    room: RoomRef,
    participant: Participant,
    reason: DepartureReason,
    last: boolean,
  ): void => {
    this.emit({ event: 'participant.left', roomId: room.roomId, participant, reason }, room.roomId);
    if (last) this.emit({ event: 'room.finished', room }, room.roomId);
  };

  readonly floorGranted = (...[roomId, speaker, sessionId]: FloorEvents['granted']): void => {
    this.emit({ event: 'ptt.granted', roomId, speaker, sessionId }, roomId);
  };

  readonly floorReleased = (...[roomId, speaker, sessionId, heldMs]: FloorEvents['released']): void => {
    this.emit({ event: 'ptt.released', roomId, speaker, sessionId, heldMs }, roomId);
  };

  readonly floorRevoked = (...[roomId, speaker, sessionId, heldMs, reason]: FloorEvents['revoked']): void => {
    this.emit({ event: 'ptt.revoked', roomId, speaker, sessionId, heldMs, reason }, roomId);
  };

  readonly floorPreempted = (roomId: string, speaker: Who, by: Who): void => {
    this.emit({ event: 'ptt.preempted', roomId, speaker, by }, roomId);
  };

  readonly callStarted = (call: CallInfo): void => {
    this.emit({ event: 'call.started', ...parties(call), startedAt: call.startedAt }, `call:${call.key}`);
  };

  readonly callAnswered = (call: CallInfo, at: number): void => {
    this.emit({ event: 'call.answered', ...parties(call), answeredAt: at }, `call:${call.key}`);
  };

  readonly callEnded = (call: CallInfo, reason: CallEndReason, at: number, answered: boolean): void => {
    const durationMs = Math.max(0, at - call.startedAt);
    this.emit(
      { event: 'call.ended', ...parties(call), endedAt: at, durationMs, answered, reason },
      `call:${call.key}`,
    );
  };

  /** Sent by the node that recorded the burst (the one hosting the room's media). */
  readonly recordingReady = (recording: Recording): void => {
    this.emit({ event: 'recording.ready', recording }, recording.roomId);
  };

  nodeUp(address: string, startedAt: number): void {
    this.emit({ event: 'node.up', address, startedAt }, 'node');
  }

  readonly nodeDown = (nodeId: string, reason: 'shutdown' | 'dead'): void => {
    this.emit({ event: 'node.down', nodeId, reason }, 'node');
  };

  /** Shutdown: what is queued (node.down among it) gets `flushMs` to go out. Idempotent. */
  close(flushMs: number): Promise<void> {
    return this.#queue?.close(flushMs) ?? Promise.resolve();
  }
}

function parties(call: CallInfo) {
  return { callId: call.callId, callerId: call.callerId, calleeId: call.calleeId };
}
