import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { startServer, type TestServer } from '../helpers/server.js';

const manifest = {
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 200 },
    { id: 'short', name: 'Short', mode: 'ptt', maxParticipants: 10, maxTalkMs: 1_000 },
    { id: 'queued', name: 'Queued', mode: 'ptt', maxParticipants: 10, queue: true },
    { id: 'conf', name: 'Conf', mode: 'conference', maxParticipants: 10 },
  ],
};

describe('PTT floor control', () => {
  let srv: TestServer;
  let clients: TestClient[] = [];
  const member = async (sub: string, roomId: string, claims: Record<string, unknown> = {}) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: `Name ${sub}`, ...claims }));
    clients.push(c);
    const state = await c.request('room:join', { roomId });
    expect(state.type).toBe('room:state');
    return c;
  };
  beforeAll(async () => {
    srv = await startServer(
      { RESUME_GRACE_MS: '5000', PTT_LOCK_TTL_MS: '600', RATE_LIMIT_BURST: '1000' },
      manifest,
    );
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    await waitUntil(
      () => srv.server.internalsForTesting.gateway.connectionCount === 0,
      'the server has seen every close',
    );
  });
  afterAll(() => srv.close());

  it('grants a free floor, denies others with the speaker’s name, and frees it on ptt:stop', async () => {
    const a = await member('a1', 'dispatch');
    const b = await member('b1', 'dispatch');
    const granted = await a.request('ptt:start', { roomId: 'dispatch' });
    expect(granted).toMatchObject({
      type: 'ptt:granted',
      payload: { roomId: 'dispatch', maxTalkMs: 60_000 },
    });
    for (const c of [a, b]) {
      expect(await c.next('ptt:speaker-changed')).toMatchObject({
        payload: { roomId: 'dispatch', speaker: { userId: 'a1', name: 'Name a1' } },
      });
    }
    expect(await b.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
      type: 'ptt:denied',
      payload: { speaker: { userId: 'a1', name: 'Name a1' } },
    });
    // Asking again while holding it is harmless.
    expect((await a.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    // A late joiner sees the speaker in room:state.
    const late = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'late' }));
    clients.push(late);
    expect(await late.request('room:join', { roomId: 'dispatch' })).toMatchObject({
      payload: {
        speaker: {
          userId: 'a1',
          sessionId: expect.any(String) as string,
          since: expect.any(Number) as number,
        },
      },
    });
    // Someone who is not the speaker cannot stop them.
    expect(await b.request('ptt:stop', { roomId: 'dispatch' })).toMatchObject({ payload: { held: false } });
    expect(await a.request('ptt:stop', { roomId: 'dispatch' })).toMatchObject({
      type: 'ptt:stopped',
      payload: { held: true },
    });
    for (const c of [a, b, late]) {
      expect(
        await c.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null),
      ).toBeTruthy();
    }
    expect((await b.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
  });

  it('refuses ptt in conference rooms, in rooms you are not in, and with bad payloads', async () => {
    const a = await member('a2', 'conf');
    expect(await a.request('ptt:start', { roomId: 'conf' })).toMatchObject({
      payload: { code: 'NOT_PTT_ROOM' },
    });
    expect(await a.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
      payload: { code: 'NOT_IN_ROOM' },
    });
    expect(await a.request('ptt:start', { roomId: 42 })).toMatchObject({
      payload: { code: 'INVALID_MESSAGE' },
    });
    expect(await a.request('ptt:stop', {})).toMatchObject({ payload: { code: 'INVALID_MESSAGE' } });
  });

  it('concurrent ptt:start from many members: exactly one grant', async () => {
    const members = await Promise.all(Array.from({ length: 20 }, (_, i) => member(`race${i}`, 'dispatch')));
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(members.map((m) => m.request('ptt:start', { roomId: 'dispatch' })));
      const granted = replies.filter((r) => r.type === 'ptt:granted');
      expect(granted).toHaveLength(1);
      expect(replies.filter((r) => r.type === 'ptt:denied')).toHaveLength(19);
      const winner = members[replies.indexOf(granted[0])];
      expect((await winner.request('ptt:stop', { roomId: 'dispatch' })).payload).toMatchObject({
        held: true,
      });
    }
  });

  it('a speaker who disconnects (even resumably) or leaves frees the floor at once', async () => {
    const a = await member('a3', 'dispatch');
    const b = await member('b3', 'dispatch');
    await a.request('ptt:start', { roomId: 'dispatch' });
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'a3');
    a.ws.terminate(); // network drop: the session is suspended, but the floor must not stay held
    // RESUME_GRACE_MS is 5 s: freed within this deadline, it was the drop, not the session's end.
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null, 3_000);
    expect((await b.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    const c = await member('c3', 'dispatch');
    await b.request('room:leave', { roomId: 'dispatch' });
    await c.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
  });

  it('revokes the floor after the room’s max talk time', async () => {
    const a = await member('a4', 'short');
    const b = await member('b4', 'short');
    const granted = await a.request('ptt:start', { roomId: 'short' });
    expect(granted).toMatchObject({ type: 'ptt:granted', payload: { maxTalkMs: 1_000 } });
    const t0 = Date.now();
    expect(await a.next('ptt:revoked', 3_000)).toMatchObject({
      payload: { roomId: 'short', reason: 'max-duration' },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await b.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);
  });

  it('keeps the lock alive past its TTL while talking (renewal)', async () => {
    const a = await member('a5', 'dispatch');
    const b = await member('b5', 'dispatch');
    await a.request('ptt:start', { roomId: 'dispatch' });
    await sleep(1_500); // past PTT_LOCK_TTL_MS (600) twice over: the floor must NOT lapse
    expect(await b.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({ type: 'ptt:denied' });
    expect(a.received.find((m) => m.type === 'ptt:revoked')).toBeUndefined();
  });

  it('queues requests in order, grants automatically, updates positions, and ptt:stop leaves the queue', async () => {
    const [a, b, c, d] = await Promise.all(['qa', 'qb', 'qc', 'qd'].map((s) => member(s, 'queued')));
    expect((await a.request('ptt:start', { roomId: 'queued' })).type).toBe('ptt:granted');
    expect(await b.request('ptt:start', { roomId: 'queued' })).toMatchObject({
      type: 'ptt:queued',
      payload: { position: 1, speaker: { userId: 'qa' } },
    });
    expect(await c.request('ptt:start', { roomId: 'queued' })).toMatchObject({ payload: { position: 2 } });
    expect(await d.request('ptt:start', { roomId: 'queued' })).toMatchObject({ payload: { position: 3 } });
    // c gives up: d moves to 2.
    expect(await c.request('ptt:stop', { roomId: 'queued' })).toMatchObject({ payload: { held: false } });
    expect(await d.next('ptt:queued')).toMatchObject({ payload: { position: 2 } });
    // a releases: b is granted without asking again, d moves to 1.
    await a.request('ptt:stop', { roomId: 'queued' });
    expect(await b.next('ptt:granted')).toMatchObject({ payload: { roomId: 'queued' } });
    expect(await d.next('ptt:queued')).toMatchObject({
      payload: { position: 1, speaker: { userId: 'qb' } },
    });
    await a.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'qb');
  });

  it('a strictly higher priority pre-empts the speaker; equal priority does not', async () => {
    const low = await member('low', 'dispatch', { pttPriority: 1 });
    const peer = await member('peer', 'dispatch', { pttPriority: 1 });
    const boss = await member('boss', 'dispatch', { pttPriority: 9 });
    await low.request('ptt:start', { roomId: 'dispatch' });
    expect((await peer.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:denied');
    expect(await boss.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({ type: 'ptt:granted' });
    expect(await low.next('ptt:revoked')).toMatchObject({
      payload: { reason: 'preempted', by: { userId: 'boss' } },
    });
    await peer.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker?.userId === 'boss');
    // The pre-empted speaker's late stop does not free the boss's floor.
    expect(await low.request('ptt:stop', { roomId: 'dispatch' })).toMatchObject({ payload: { held: false } });
    expect(await peer.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
      type: 'ptt:denied',
      payload: { speaker: { userId: 'boss' } },
    });
  });

  it('a listen-only token cannot take the floor, nor pre-empt it with a high pttPriority (FORBIDDEN)', async () => {
    const speaker = await member('spk', 'dispatch', { pttPriority: 1 });
    const listener = await member('lst', 'dispatch', { canPublish: false, pttPriority: 9 });
    const noMic = await member('nomic', 'dispatch', { canPublishSources: ['camera'], pttPriority: 9 });
    // A free floor: refused.
    for (const c of [listener, noMic]) {
      expect(await c.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
        type: 'error',
        payload: { code: 'FORBIDDEN' },
      });
    }
    // A held floor: no pre-emption; the speaker keeps it and hears nothing.
    expect((await speaker.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    for (const c of [listener, noMic]) {
      expect(await c.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
        type: 'error',
        payload: { code: 'FORBIDDEN' },
      });
    }
    // The speaker still holds it: a fellow member is denied with the speaker's name.
    const peer = await member('peer2', 'dispatch');
    expect(await peer.request('ptt:start', { roomId: 'dispatch' })).toMatchObject({
      type: 'ptt:denied',
      payload: { speaker: { userId: 'spk' } },
    });
    expect(speaker.received.some((m) => m.type === 'ptt:revoked')).toBe(false);
  });

  it('floor events are timestamped with server time', async () => {
    const a = await member('a6', 'dispatch');
    const before = Date.now();
    const g = await a.request('ptt:start', { roomId: 'dispatch' });
    const changed = await a.next('ptt:speaker-changed');
    expect(g.type === 'ptt:granted' && g.payload.since).toBeGreaterThanOrEqual(before - 5);
    expect(changed.payload.at).toBeGreaterThanOrEqual(before - 5);
    expect(changed.payload.speaker?.since).toBe(g.type === 'ptt:granted' ? g.payload.since : -1);
  });
});
