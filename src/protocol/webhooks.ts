/**
 * The webhook event catalogue: what Parley POSTs to each `WEBHOOK_URLS` endpoint, one JSON body per
 * event. docs/server-api.md is generated from these schemas; the server builds every body with them
 * and the server SDK's `verifyWebhook` parses with them.
 *
 * Signing (documented in docs/server-api.md): the header `Parley-Signature: t=<unix seconds>,v1=<hex>`
 * where `<hex>` is HMAC-SHA256 of `<t>.<raw body>` with `WEBHOOK_SECRET`. A receiver recomputes it
 * over the raw bytes, compares in constant time, and rejects a `t` older than its tolerance (replay).
 * `Parley-Webhook-Id` repeats the event id for deduplication (retries carry the same id).
 */
import { z } from 'zod';
import { Participant, Recording, RoomId, RoomMode, UserId } from './common.js';

export const WEBHOOK_SIGNATURE_HEADER = 'parley-signature';
export const WEBHOOK_ID_HEADER = 'parley-webhook-id';
/** A receiver should refuse signatures older (or newer) than this. 5 minutes. */
export const WEBHOOK_TOLERANCE_S = 300;

/** The string that is signed: `<unix seconds>.<raw body>`. */
export function webhookSignedPayload(timestampS: number, body: string): string {
  return `${timestampS}.${body}`;
}

const Who = z.object({ userId: UserId, name: z.string() });
const RoomRef = z.object({ roomId: RoomId, name: z.string(), mode: RoomMode });
const CallParties = {
  callId: z.string(),
  callerId: UserId.describe('who sent the first offer'),
  calleeId: UserId,
};

/** Builds one event's schema: the envelope every event shares, plus its own fields. */
function event<E extends string, S extends z.ZodRawShape>(name: E, shape: S, description: string) {
  return z
    .object({
      id: z.string().describe('unique per event; retries repeat it: deduplicate on it'),
      event: z.literal(name),
      createdAt: z.number().describe('server time (ms) the event happened'),
      node: z.string().describe('the node that emitted it'),
      ...shape,
    })
    .describe(description);
}

export const WebhookEvent = z.discriminatedUnion('event', [
  event('room.started', { room: RoomRef }, 'The first member joined a room that had none.'),
  event('room.finished', { room: RoomRef }, 'The last member left a room (or it was ended).'),
  event(
    'participant.joined',
    { roomId: RoomId, participant: Participant },
    'A session joined a room (after room.started for the first one).',
  ),
  event(
    'participant.left',
    {
      roomId: RoomId,
      participant: Participant,
      reason: z.enum(['left', 'disconnected', 'removed', 'ended']),
    },
    'A session left a room: on purpose, by disconnecting without resuming, removed or ended through the server API. Before room.finished for the last one.',
  ),
  event(
    'call.started',
    { ...CallParties, startedAt: z.number() },
    'A 1:1 call rang: the first call:offer of a callId reached the callee.',
  ),
  event(
    'call.answered',
    { ...CallParties, answeredAt: z.number() },
    'The callee accepted (call:accept) or answered (call:answer) the call.',
  ),
  event(
    'call.ended',
    {
      ...CallParties,
      endedAt: z.number(),
      durationMs: z.number().describe('from the start (first offer) to the end'),
      answered: z.boolean(),
      reason: z.enum(['hangup', 'rejected', 'disconnected']),
    },
    'A call ended: hung up, rejected, or one side disappeared.',
  ),
  event(
    'ptt.granted',
    { roomId: RoomId, speaker: Who, sessionId: z.string() },
    'A member got the floor of a ptt room.',
  ),
  event(
    'ptt.released',
    { roomId: RoomId, speaker: Who, sessionId: z.string(), heldMs: z.number() },
    'The speaker released the floor (ptt:stop, leave or disconnect).',
  ),
  event(
    'ptt.revoked',
    {
      roomId: RoomId,
      speaker: Who,
      sessionId: z.string(),
      heldMs: z.number(),
      reason: z.enum(['max-duration', 'lock-lost', 'media-closed', 'admin']),
    },
    'The server took the floor from the speaker (not pre-emption: see ptt.preempted).',
  ),
  event(
    'ptt.preempted',
    { roomId: RoomId, speaker: Who.describe('who lost the floor'), by: Who.describe('who took it') },
    'A higher pttPriority took the floor from the speaker (e.g. a dispatcher or an emergency).',
  ),
  event(
    'recording.ready',
    {
      recording: Recording,
    },
    'A PTT burst was recorded and stored (channels with "record": true), sent by the node that recorded it; the same metadata as ptt:recording and GET /api/rooms/{roomId}/recordings.',
  ),
  event(
    'node.up',
    { address: z.string(), startedAt: z.number() },
    'A node started and serves (emitted by the node itself).',
  ),
  event(
    'node.down',
    { nodeId: z.string(), reason: z.enum(['shutdown', 'dead']) },
    'A node left the cluster: shut down gracefully (emitted by itself) or found dead (emitted by the one survivor that cleans up after it).',
  ),
]);
export type WebhookEvent = z.infer<typeof WebhookEvent>;
export type WebhookEventName = WebhookEvent['event'];
export type WebhookEventOf<E extends WebhookEventName> = Extract<WebhookEvent, { event: E }>;
/** What an emitter supplies: the event without its envelope (id, createdAt and node are added). */
export type WebhookEventInput = {
  [E in WebhookEventName]: Omit<WebhookEventOf<E>, 'id' | 'createdAt' | 'node'>;
}[WebhookEventName];
