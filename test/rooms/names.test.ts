import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 13, Medium 6: a client-chosen displayName was shown to others in presence and in speaker
 * announcements, so anyone could appear as "Alice". The name others see is the token's; a
 * displayName counts only when the token has none, and is then marked `nameVerified: false`.
 */
describe('display names come from the token', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = async (claims: { sub: string; name?: string }) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token(claims));
    clients.push(c);
    return c;
  };
  const joinAs = async (c: TestClient, roomId: string, displayName?: string) => {
    const reply = await c.request('room:join', displayName ? { roomId, displayName } : { roomId });
    expect(reply.type).toBe('room:state');
    return reply as Extract<ServerMessage, { type: 'room:state' }>;
  };
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  it('a displayName cannot override the token’s name; without one it is shown as unverified, in presence and speaker announcements', async () => {
    const alice = await connect({ sub: 'alice', name: 'Alice' });
    const mallory = await connect({ sub: 'mallory', name: 'Mallory' });
    const anon = await connect({ sub: 'anon-7' });
    await joinAs(alice, 'dispatch', 'Dispatcher'); // her own token name wins too

    await joinAs(mallory, 'dispatch', 'Alice');
    const seenMallory = await alice.next('room:participant-joined');
    expect(seenMallory.payload.participant).toEqual({
      sessionId: expect.any(String) as string,
      userId: 'mallory',
      name: 'Mallory',
      joinedAt: expect.any(Number) as number,
    });

    await joinAs(anon, 'dispatch', 'Alice');
    const seenAnon = await alice.next('room:participant-joined');
    expect(seenAnon.payload.participant).toMatchObject({
      userId: 'anon-7',
      name: 'Alice',
      nameVerified: false,
    });

    const state = await joinAs(await connect({ sub: 'late', name: 'Late' }), 'dispatch');
    const byUser = new Map(state.payload.participants.map((p) => [p.userId, p]));
    expect(byUser.get('alice')).toMatchObject({ name: 'Alice' });
    expect(byUser.get('alice')!.nameVerified).toBeUndefined();
    expect(byUser.get('mallory')).toMatchObject({ name: 'Mallory' });
    expect(byUser.get('anon-7')).toMatchObject({ name: 'Alice', nameVerified: false });

    // Speaker announcements say the same.
    expect((await anon.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    const changed = await alice.waitFor(
      (m) => m.type === 'ptt:speaker-changed' && m.payload.speaker !== null,
    );
    expect(changed).toMatchObject({
      payload: { speaker: { userId: 'anon-7', name: 'Alice', nameVerified: false } },
    });
    expect((await anon.request('ptt:stop', { roomId: 'dispatch' })).type).toBe('ptt:stopped');
    await alice.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker === null);

    expect((await mallory.request('ptt:start', { roomId: 'dispatch' })).type).toBe('ptt:granted');
    const real = await alice.waitFor((m) => m.type === 'ptt:speaker-changed' && m.payload.speaker !== null);
    expect(real).toMatchObject({ payload: { speaker: { userId: 'mallory', name: 'Mallory' } } });
    expect(real.type === 'ptt:speaker-changed' && real.payload.speaker?.nameVerified).toBeUndefined();
    const denied = await alice.request('ptt:start', { roomId: 'dispatch' });
    expect(denied).toMatchObject({
      type: 'ptt:denied',
      payload: { speaker: { userId: 'mallory', name: 'Mallory' } },
    });
  });
});
