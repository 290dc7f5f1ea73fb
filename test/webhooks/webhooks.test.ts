import { createHmac } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookEvent, WebhookEventName, WebhookEventOf } from '../../src/protocol/index.js';
import { createLogger } from '../../src/server/logger.js';
import { systemClock } from '../../src/server/time/clock.js';
import { WebhookQueue } from '../../src/server/webhooks/webhook-queue.js';
import type { WebhookVerificationError } from '../../src/server-sdk/index.js';
import { verifyWebhook } from '../../src/server-sdk/index.js';
import type { TestClient } from '../helpers/client.js';
import { connectAs } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'webhook-secret-0123456789';
const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'hall', name: 'Hall', mode: 'conference', maxParticipants: 10 },
    { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 10 },
    { id: 'brief', name: 'Brief', mode: 'ptt', maxParticipants: 10, maxTalkMs: 1_000 },
  ],
};

const named =
  (...names: WebhookEventName[]) =>
  (e: WebhookEvent) =>
    names.includes(e.event);

/** Webhooks from one node to a real HTTP receiver on 127.0.0.1. */
describe('webhooks', () => {
  let receiver: WebhookReceiver;
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string, claims: Record<string, unknown> = {}) => connectAs(srv, clients, sub, claims);

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(SECRET);
    srv = await startServer(
      {
        WEBHOOK_URLS: receiver.url,
        WEBHOOK_SECRET: SECRET,
        ADMIN_API_KEY: 'admin-api-key-0123456789',
        CALL_POLICY: 'any', // calls between users who share no room
      },
      manifest,
    );
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await srv.close();
    await receiver.close();
  });

  it('announces the node, signed so that verifyWebhook accepts it, with the event id in a header', async () => {
    const [up] = await receiver.waitFor(named('node.up'), 'node.up');
    expect(up).toMatchObject({
      event: 'node.up',
      node: srv.config.cluster.nodeId,
      id: expect.any(String) as string,
    });
    const raw = receiver.received.find((r) => r.event?.id === up.id);
    expect(raw?.headers['parley-webhook-id']).toBe(up.id);
    expect(raw?.headers['parley-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  });

  it('verifyWebhook refuses a tampered body, a wrong secret, a stale timestamp and a missing header', () => {
    const body = JSON.stringify({
      id: 'e1',
      event: 'node.up',
      createdAt: 1,
      node: 'n',
      address: 'a',
      startedAt: 1,
    });
    const t = Math.floor(Date.now() / 1000);
    const sign = (secret: string, ts: number, b = body) =>
      `t=${ts},v1=${createHmac('sha256', secret).update(`${ts}.${b}`).digest('hex')}`;
    expect(verifyWebhook(body, { 'parley-signature': sign(SECRET, t) }, SECRET)).toMatchObject({ id: 'e1' });
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as WebhookVerificationError).reason;
      }
      return 'accepted';
    };
    expect(reason(() => verifyWebhook(body + ' ', { 'parley-signature': sign(SECRET, t) }, SECRET))).toBe(
      'bad-signature',
    );
    expect(
      reason(() => verifyWebhook(body, { 'parley-signature': sign('another-secret-xxxxxx', t) }, SECRET)),
    ).toBe('bad-signature');
    expect(reason(() => verifyWebhook(body, { 'parley-signature': sign(SECRET, t - 3600) }, SECRET))).toBe(
      'stale',
    );
    expect(reason(() => verifyWebhook(body, {}, SECRET))).toBe('missing-signature');
    expect(reason(() => verifyWebhook(body, { 'parley-signature': 'v1=zz' }, SECRET))).toBe(
      'malformed-signature',
    );
    const notEvent = '{"hello":1}';
    expect(
      reason(() => verifyWebhook(notEvent, { 'parley-signature': sign(SECRET, t, notEvent) }, SECRET)),
    ).toBe('invalid-body');
  });

  it('tells a room’s life in order: started, joined, joined, left, left (with reasons), finished', async () => {
    const a = await connect('wh-a');
    const b = await connect('wh-b');
    await a.request('room:join', { roomId: 'hall' });
    await b.request('room:join', { roomId: 'hall' });
    await a.request('room:leave', { roomId: 'hall' });
    await b.close();
    const inHall = (e: WebhookEvent) =>
      ('roomId' in e && e.roomId === 'hall') || ('room' in e && e.room.roomId === 'hall');
    await receiver.waitFor(named('room.finished'), 'room.finished');
    const seq = receiver.events.filter(inHall);
    expect(seq.map((e) => e.event)).toEqual([
      'room.started',
      'participant.joined',
      'participant.joined',
      'participant.left',
      'participant.left',
      'room.finished',
    ]);
    expect(seq[1]).toMatchObject({ participant: { userId: 'wh-a' } });
    expect(seq[3]).toMatchObject({ participant: { userId: 'wh-a' }, reason: 'left' });
    expect(seq[4]).toMatchObject({ participant: { userId: 'wh-b' }, reason: 'left' });
    expect(seq[5]).toMatchObject({ room: { roomId: 'hall', name: 'Hall', mode: 'conference' } });
  });

  it('retries a delivery answered 500, with the same event id, until it is accepted', async () => {
    receiver.respond = (body, attempt) => (body.includes('"retry-me"') && attempt === 1 ? 500 : 200);
    const c = await connect('retry-me');
    await c.request('room:join', { roomId: 'hall' });
    const [joined] = await receiver.waitFor(
      (e) => e.event === 'participant.joined' && e.participant.userId === 'retry-me',
      'the retried participant.joined',
    );
    const attempts = receiver.received.filter((r) => r.event?.id === joined.id);
    expect(attempts.map((r) => r.status)).toEqual([500, 200]);
    receiver.respond = () => 200;
    await c.request('room:leave', { roomId: 'hall' });
  });

  it('tells the floor: granted, released, pre-empted (who by whom), revoked', async () => {
    const a = await connect('ptt-a');
    const boss = await connect('ptt-boss', { pttPriority: 9 });
    await a.request('room:join', { roomId: 'radio' });
    await boss.request('room:join', { roomId: 'radio' });
    await a.request('ptt:start', { roomId: 'radio' });
    await a.request('ptt:stop', { roomId: 'radio' });
    await a.request('ptt:start', { roomId: 'radio' });
    await boss.request('ptt:start', { roomId: 'radio' });
    await a.next('ptt:revoked');
    const res = await fetch(`${srv.httpUrl}/api/admin/rooms/radio/floor/revoke`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-api-key-0123456789' },
    });
    expect(res.status).toBe(200);
    await receiver.waitFor(named('ptt.revoked'), 'ptt.revoked');
    const floor = receiver.events.filter(
      named('ptt.granted', 'ptt.released', 'ptt.preempted', 'ptt.revoked'),
    );
    expect(floor.map((e) => e.event)).toEqual([
      'ptt.granted',
      'ptt.released',
      'ptt.granted',
      'ptt.preempted',
      'ptt.granted',
      'ptt.revoked',
    ]);
    expect(floor[3]).toMatchObject({ speaker: { userId: 'ptt-a' }, by: { userId: 'ptt-boss' } });
    expect(floor[5]).toMatchObject({ speaker: { userId: 'ptt-boss' }, reason: 'admin' });
  });

  it('tells a floor taken back at the channel’s maxTalkMs: ptt.revoked with reason max-duration', async () => {
    const talker = await connect('ptt-long');
    await talker.request('room:join', { roomId: 'brief' });
    await talker.request('ptt:start', { roomId: 'brief' });
    expect(await talker.next('ptt:revoked')).toMatchObject({
      payload: { roomId: 'brief', reason: 'max-duration' },
    });
    const [revoked] = await receiver.waitFor(
      (e) => e.event === 'ptt.revoked' && e.roomId === 'brief',
      'ptt.revoked in brief',
    );
    expect(revoked).toMatchObject({ speaker: { userId: 'ptt-long' }, reason: 'max-duration' });
    const brief = receiver.events.filter(
      (e) => named('ptt.granted', 'ptt.released', 'ptt.revoked')(e) && 'roomId' in e && e.roomId === 'brief',
    );
    // Revoked once, and not also reported as released.
    expect(brief.map((e) => e.event)).toEqual(['ptt.granted', 'ptt.revoked']);
  });

  it('tells a call: started, answered, ended with its duration', async () => {
    const a = await connect('call-x');
    const b = await connect('call-y');
    a.send('call:offer', { recipientId: 'call-y', callId: 'k1', sdp: 'v=0' });
    await b.next('call:offer');
    b.send('call:accept', { recipientId: 'call-x', callId: 'k1' });
    await a.next('call:accept');
    a.send('call:hangup', { recipientId: 'call-y', callId: 'k1' });
    await b.next('call:hangup');
    await receiver.waitFor(named('call.ended'), 'call.ended');
    const calls = receiver.events.filter(named('call.started', 'call.answered', 'call.ended'));
    expect(calls.map((e) => e.event)).toEqual(['call.started', 'call.answered', 'call.ended']);
    expect(calls[2]).toMatchObject({
      callId: 'k1',
      callerId: 'call-x',
      calleeId: 'call-y',
      answered: true,
      reason: 'hangup',
      durationMs: expect.any(Number) as number,
    });
    // The duration is the time from the start to the end, as the two events tell them.
    const [started, , ended] = calls as [
      WebhookEventOf<'call.started'>,
      unknown,
      WebhookEventOf<'call.ended'>,
    ];
    expect(ended.durationMs).toBe(ended.endedAt - started.startedAt);
    expect(ended.durationMs).toBeGreaterThanOrEqual(0);

    // A rejected call ends unanswered.
    a.send('call:offer', { recipientId: 'call-y', callId: 'k2', sdp: 'v=0' });
    await b.next('call:offer');
    b.send('call:reject', { recipientId: 'call-x', callId: 'k2' });
    await a.next('call:reject');
    const [rejected] = await receiver.waitFor(
      (e) => e.event === 'call.ended' && e.callId === 'k2',
      'call.ended for the rejected call',
    );
    expect(rejected).toMatchObject({ answered: false, reason: 'rejected', callerId: 'call-x' });
  });

  it('never holds up signaling: with the receiver not answering, requests are answered and events queue', async () => {
    receiver.hold();
    const queued = async () => {
      const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
      return Number(/^parley_webhook_queue_depth (\d+)/m.exec(text)?.[1] ?? -1);
    };
    try {
      const c = await connect('while-held');
      expect(await c.request('room:join', { roomId: 'hall' })).toMatchObject({ type: 'room:state' });
      expect(await c.request('room:leave', { roomId: 'hall' })).toMatchObject({ type: 'room:left' });
      expect(await c.request('ping', {})).toMatchObject({ type: 'pong' });
      // room.started, participant.joined, participant.left, room.finished: waiting or in flight.
      await waitUntil(async () => (await queued()) >= 4, 'the four events queued');
    } finally {
      receiver.release();
    }
    await receiver.waitFor(
      (e) => e.event === 'participant.left' && e.participant.userId === 'while-held',
      'the held events delivered once the receiver answers',
    );
    await waitUntil(async () => (await queued()) === 0, 'the queue drained');
  });

  it('shows the queue in /metrics', async () => {
    const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    expect(text).toMatch(/parley_webhook_queue_depth \d+/);
    expect(text).toMatch(/parley_webhook_deliveries_total\{result="delivered"\} \d+/);
    expect(text).toMatch(/parley_webhook_deliveries_total\{result="retried"\} 1/);
  });
});

describe('webhook queue', () => {
  it('is bounded: past its size the oldest waiting delivery is dropped and counted; the rest go in order', async () => {
    const receiver = await WebhookReceiver.start(SECRET);
    const registry = new Registry();
    const queue = new WebhookQueue({
      urls: [receiver.url],
      secret: SECRET,
      registry,
      log: createLogger('silent'),
      clock: systemClock,
      maxQueued: 3,
    });
    try {
      receiver.hold();
      const body = (i: number) =>
        JSON.stringify({
          id: `q${i}`,
          event: 'node.up',
          createdAt: i,
          node: 'n',
          address: 'a',
          startedAt: i,
        });
      for (let i = 0; i < 10; i++) queue.enqueue(`q${i}`, 'node.up', body(i), 'one-room');
      // q0 is in flight (held); of the 9 waiting, the 6 oldest went.
      expect(queue.size).toBe(4);
      expect(await registry.getSingleMetricAsString('parley_webhook_dropped_total')).toMatch(/ 6$/m);
      await waitUntil(() => receiver.received.length === 0, 'nothing answered yet');
      receiver.release();
      await waitUntil(() => receiver.events.length === 4, 'the four kept deliveries', 5_000);
      expect(receiver.events.map((e) => e.id)).toEqual(['q0', 'q7', 'q8', 'q9']);
    } finally {
      await queue.close(0);
      await receiver.close();
    }
  });
});
