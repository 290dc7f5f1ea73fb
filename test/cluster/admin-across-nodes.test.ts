import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookEvent } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import type { ParleyAdminError } from '../../src/server-sdk/index.js';
import { ParleyAdmin } from '../../src/server-sdk/index.js';
import { TestClient } from '../helpers/client.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'webhook-secret-0123456789';
const API_KEY = 'admin-api-key-0123456789';
const issuer = new TokenIssuer({ secret: TEST_SECRET });

/** The server API and webhooks on two node processes sharing one Redis. */
describe('server API and webhooks across two nodes', () => {
  let redis: TestRedis;
  let receiver: WebhookReceiver;
  let n1: NodeProcess;
  let n2: NodeProcess;
  let admin1: ParleyAdmin;
  const clients: TestClient[] = [];
  const tokens = new Map<string, string>();
  const on = async (node: NodeProcess, sub: string) => {
    const token = await issuer.issue({ sub, name: sub.toUpperCase() });
    tokens.set(sub, token);
    const c = await TestClient.connect(node.wsUrl, token);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    [redis, receiver] = await Promise.all([startRedis(), WebhookReceiver.start(SECRET)]);
    const env = {
      REDIS_URL: redis.url,
      NODE_TTL_MS: '1000',
      RESUME_GRACE_MS: '1000',
      PTT_LOCK_TTL_MS: '1500',
      RATE_LIMIT_BURST: '1000',
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET: SECRET,
      ADMIN_API_KEY: API_KEY,
      CALL_POLICY: 'any', // calls between users who share no room
    };
    // Generous start deadlines: tsx compiles on start, and the machine may be busy with other tests.
    [n1, n2] = await Promise.all([
      startNodeProcess({ ...env, NODE_ID: 'node-1' }, 40_000),
      startNodeProcess({ ...env, NODE_ID: 'node-2' }, 40_000),
    ]);
    admin1 = new ParleyAdmin({ baseUrl: n1.httpUrl, credential: API_KEY });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await Promise.all([redis?.stop(), receiver?.close()]);
  });

  it('lists a room’s members on both nodes, with the node of each', async () => {
    const a = await on(n1, 'x-a');
    const b = await on(n2, 'x-b');
    await a.request('room:join', { roomId: 'lobby' });
    await b.request('room:join', { roomId: 'lobby' });
    const { rooms } = await admin1.listRooms();
    expect(rooms.find((r) => r.roomId === 'lobby')).toMatchObject({ members: 2, mode: 'conference' });
    const { participants } = await admin1.getRoom({ roomId: 'lobby' });
    expect(participants.map((p) => [p.userId, p.node])).toEqual([
      ['x-a', 'node-1'],
      ['x-b', 'node-2'],
    ]);
    expect(await admin1.sendUserMessage({ userId: 'x-b', body: { data: { ping: true } } })).toEqual({
      userId: 'x-b',
      sessions: 1,
    });
    expect(await b.next('user:message')).toMatchObject({ payload: { data: { ping: true } } });
  });

  it('removes a participant connected to the other node', async () => {
    const b = clients[1];
    const a = clients[0];
    const removed = await admin1.removeParticipant({ roomId: 'lobby', userId: 'x-b' });
    expect(removed.sessions).toHaveLength(1);
    expect((await b.closed).code).toBe(4410);
    expect(await a.next('room:participant-left')).toMatchObject({
      payload: { participant: { userId: 'x-b' }, reason: 'removed' },
    });
    await expect(admin1.removeParticipant({ roomId: 'lobby', userId: 'x-b' })).rejects.toMatchObject({
      status: 404,
      code: 'NOT_IN_ROOM',
    } satisfies Partial<ParleyAdminError>);
    // The ban is shared: the same token cannot rejoin through the other node either.
    const again = await TestClient.connect(n1.wsUrl, tokens.get('x-b') ?? '');
    clients.push(again);
    expect(await again.request('room:join', { roomId: 'lobby' })).toMatchObject({
      type: 'error',
      payload: { code: 'FORBIDDEN' },
    });
    again.ws.terminate();
  });

  it('ends a room with members on both nodes: everyone is told', async () => {
    const c = await on(n2, 'x-c');
    await c.request('room:join', { roomId: 'lobby' });
    expect(await admin1.endRoom({ roomId: 'lobby' })).toEqual({ roomId: 'lobby', removed: 2 });
    expect(await clients[0].next('room:ended')).toMatchObject({ payload: { roomId: 'lobby' } });
    expect(await c.next('room:ended')).toMatchObject({ payload: { roomId: 'lobby' } });
    expect((await admin1.listRooms()).rooms.find((r) => r.roomId === 'lobby')).toBeUndefined();
  });

  it('lists a call across nodes once, and no more once it ends', async () => {
    const p = await on(n1, 'x-caller');
    const q = await on(n2, 'x-callee');
    p.send('call:offer', { recipientId: 'x-callee', callId: 'xc', sdp: 'v=0' });
    await q.next('call:offer');
    q.send('call:answer', { recipientId: 'x-caller', callId: 'xc', sdp: 'v=0' });
    await p.next('call:answer');
    const { calls } = await admin1.listCalls();
    expect(calls.filter((c) => c.callId === 'xc')).toEqual([
      { callId: 'xc', users: ['x-caller', 'x-callee'], startedAt: expect.any(Number) as number },
    ]);
    p.send('call:hangup', { recipientId: 'x-callee', callId: 'xc' });
    await q.next('call:hangup');
    expect((await admin1.listCalls()).calls.filter((c) => c.callId === 'xc')).toEqual([]);
  });

  it('delivers each event exactly once across the cluster, in order per room', async () => {
    await receiver.waitFor((e) => e.event === 'call.ended', 'call.ended');
    await receiver.waitFor((e) => e.event === 'room.finished', 'room.finished');
    const events = receiver.events;
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const count = (name: WebhookEvent['event']) => events.filter((e) => e.event === name).length;
    expect(count('node.up')).toBe(2);
    expect(count('room.started')).toBe(1);
    expect(count('room.finished')).toBe(1);
    expect(count('participant.joined')).toBe(3);
    expect(count('participant.left')).toBe(3);
    expect(count('call.started')).toBe(1);
    expect(count('call.answered')).toBe(1);
    expect(count('call.ended')).toBe(1);
    const lobby = events.filter(
      (e) => ('roomId' in e && e.roomId === 'lobby') || ('room' in e && e.room.roomId === 'lobby'),
    );
    // In order per room as each node saw it (docs/server-api.md): one node's events of a room arrive
    // in the order it emitted them. Two nodes deliver side by side, so across nodes arrival order is
    // not promised (room.finished from one node may overtake the other's last participant.left).
    for (const node of new Set(lobby.map((e) => e.node))) {
      const mine = lobby.filter((e) => e.node === node).map((e) => e.event);
      if (mine.includes('room.started')) expect(mine[0]).toBe('room.started');
      if (mine.includes('room.finished')) expect(mine.at(-1)).toBe('room.finished');
    }
    const reasons = lobby.flatMap((e) => (e.event === 'participant.left' ? [e.reason] : []));
    expect(reasons.sort()).toEqual(['ended', 'ended', 'removed']);
  });

  it('revokes the floor of a speaker on the other node and sends a room message to both nodes; floor events go out once', async () => {
    const p = await on(n1, 'x-p1');
    const q = await on(n2, 'x-q2');
    await p.request('room:join', { roomId: 'dispatch' });
    await q.request('room:join', { roomId: 'dispatch' });
    expect(await q.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({ type: 'ptt:granted' });
    await p.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'x-q2');
    expect((await admin1.listRooms()).rooms.find((r) => r.roomId === 'dispatch')).toMatchObject({
      mode: 'ptt',
      members: 2,
      speaker: { userId: 'x-q2' },
    });

    expect(await admin1.revokeFloor({ roomId: 'dispatch' })).toMatchObject({
      roomId: 'dispatch',
      revoked: { userId: 'x-q2' },
    });
    expect(await q.next('ptt:revoked')).toMatchObject({ payload: { roomId: 'dispatch', reason: 'admin' } });
    await p.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);

    expect(
      await admin1.sendRoomMessage({ roomId: 'dispatch', body: { data: { all: 'hands' }, topic: 'ops' } }),
    ).toEqual({ roomId: 'dispatch', members: 2 });
    for (const c of [p, q]) {
      expect(await c.next('room:message')).toMatchObject({
        payload: { roomId: 'dispatch', topic: 'ops', data: { all: 'hands' } },
      });
    }
    // An unknown room and an oversize message are refused the same way on a cluster.
    await expect(admin1.revokeFloor({ roomId: 'no-such-room' })).rejects.toMatchObject({
      status: 404,
      code: 'ROOM_NOT_FOUND',
    } satisfies Partial<ParleyAdminError>);
    await expect(
      admin1.sendRoomMessage({ roomId: 'dispatch', body: { data: 'x'.repeat(20_000) } }),
    ).rejects.toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' } satisfies Partial<ParleyAdminError>);

    const [revoked] = await receiver.waitFor((e) => e.event === 'ptt.revoked', 'ptt.revoked');
    expect(revoked).toMatchObject({ roomId: 'dispatch', speaker: { userId: 'x-q2' }, reason: 'admin' });
    const floor = receiver.events.filter((e) => e.event.startsWith('ptt.'));
    expect(floor.map((e) => e.event)).toEqual(['ptt.granted', 'ptt.revoked']);
  });

  it('a node killed: one node.down {dead} from the survivor and its member leaves once; a stopped node says node.down {shutdown}', async () => {
    await n2.kill9();
    const [down] = await receiver.waitFor(
      (e) => e.event === 'node.down' && e.nodeId === 'node-2',
      'node.down for node-2',
    );
    expect(down).toMatchObject({ node: 'node-1', nodeId: 'node-2', reason: 'dead' });
    const [left] = await receiver.waitFor(
      (e) => e.event === 'participant.left' && e.participant.userId === 'x-q2',
      'participant.left for the member of the dead node',
    );
    expect(left).toMatchObject({ roomId: 'dispatch', reason: 'disconnected', node: 'node-1' });

    await n1.stop();
    const [stopped] = await receiver.waitFor(
      (e) => e.event === 'node.down' && e.nodeId === 'node-1',
      'node.down for node-1',
    );
    expect(stopped).toMatchObject({ node: 'node-1', reason: 'shutdown' });
    const events = receiver.events;
    expect(events.filter((e) => e.event === 'node.down')).toHaveLength(2);
    expect(
      events.filter((e) => e.event === 'participant.left' && e.participant.userId === 'x-q2'),
    ).toHaveLength(1);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });
});
