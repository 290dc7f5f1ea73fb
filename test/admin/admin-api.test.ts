import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_API,
  ADMIN_MESSAGE_MAX_BYTES,
  type AdminParticipant,
  type AdminRoom,
} from '../../src/protocol/index.js';
import { TestClient, connectAs } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const API_KEY = 'admin-api-key-0123456789';
const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 },
    { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 10 },
    { id: 'quiet', name: 'Quiet', mode: 'conference', maxParticipants: 10 },
  ],
};

/** The server API on one node (in-process server, real HTTP and WebSockets). */
describe('server API (/api/admin)', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string, claims: Record<string, unknown> = {}) => connectAs(srv, clients, sub, claims);
  const api = async (method: string, path: string, body?: unknown, auth: string | null = API_KEY) => {
    const res = await fetch(`${srv.httpUrl}${path}`, {
      method,
      headers: {
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    srv = await startServer(
      {
        ADMIN_API_KEY: API_KEY,
        RATE_LIMIT_BURST: '1000',
        CALL_POLICY: 'any' /* calls between users who share no room */,
      },
      manifest,
    );
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await srv.close();
  });

  it('serves an OpenAPI 3.1 document with every endpoint, without authentication', async () => {
    const res = await fetch(`${srv.httpUrl}/api/admin/openapi.json`);
    expect(res.status).toBe(200);
    type Operation = {
      operationId: string;
      requestBody?: { content: { 'application/json': { schema: { required?: string[] } } } };
    };
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, Operation>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const [op, ep] of Object.entries(ADMIN_API)) {
      expect(doc.paths[ep.path]?.[ep.method.toLowerCase()]?.operationId, op).toBe(op);
    }
    expect(
      doc.paths['/api/admin/tokens'].post.requestBody?.content['application/json'].schema.required,
    ).toEqual(['sub']);
  });

  it('authenticates: no credential 401, a bad one 401, a non-admin token 403, an admin token or the API key 200', async () => {
    expect(await api('GET', '/api/admin/rooms', undefined, null)).toMatchObject({
      status: 401,
      body: { error: { code: 'UNAUTHORIZED' } },
    });
    expect((await api('GET', '/api/admin/rooms', undefined, 'wrong-key-wrong-key')).status).toBe(401);
    const user = await srv.token({ sub: 'plain' });
    expect(await api('GET', '/api/admin/rooms', undefined, user)).toMatchObject({
      status: 403,
      body: { error: { code: 'FORBIDDEN' } },
    });
    const admin = await srv.token({ sub: 'boss', admin: true });
    expect((await api('GET', '/api/admin/rooms', undefined, admin)).status).toBe(200);
    expect((await api('GET', '/api/admin/rooms')).status).toBe(200);
    expect(srv.logText()).not.toContain(API_KEY);
  });

  it('lists rooms with member counts, mode and speaker, and one room’s participants', async () => {
    const a = await connect('list-a');
    const b = await connect('list-b');
    await a.request('room:join', { roomId: 'radio' });
    await b.request('room:join', { roomId: 'radio' });
    expect(await a.request('ptt:start', { roomId: 'radio' })).toMatchObject({ type: 'ptt:granted' });
    const { body } = await api('GET', '/api/admin/rooms');
    const radio = (body.rooms as AdminRoom[]).find((r) => r.roomId === 'radio');
    expect(radio).toMatchObject({
      name: 'Radio',
      mode: 'ptt',
      members: 2,
      speaker: { userId: 'list-a', name: 'LIST-A' },
    });
    const one = await api('GET', '/api/admin/rooms/radio');
    expect(one.status).toBe(200);
    const participants = one.body.participants as AdminParticipant[];
    expect(participants).toHaveLength(2);
    expect(participants[0]).toMatchObject({
      userId: 'list-a',
      name: 'LIST-A',
      node: srv.config.cluster.nodeId,
      producers: [],
      muted: false,
      joinedAt: expect.any(Number) as number,
    });
    await a.request('ptt:stop', { roomId: 'radio' });
    await a.request('room:leave', { roomId: 'radio' });
    await b.request('room:leave', { roomId: 'radio' });
  });

  it('refuses bad input: unknown room, bad ids, wrong types, unknown fields, not JSON, wrong method, unknown path', async () => {
    expect(await api('GET', '/api/admin/rooms/nope')).toMatchObject({
      status: 404,
      body: { error: { code: 'ROOM_NOT_FOUND' } },
    });
    expect(await api('GET', '/api/admin/rooms/bad%20id!')).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE', details: { path: 'roomId' } } },
    });
    expect(await api('POST', '/api/admin/rooms/conf/participants/x/mute', { muted: 'yes' })).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE', details: { path: 'muted' } } },
    });
    expect(
      await api('POST', '/api/admin/rooms/conf/participants/x/mute', { muted: true, extra: 1 }),
    ).toMatchObject({
      status: 400,
    });
    expect(await api('POST', '/api/admin/rooms/conf/messages', '{not json')).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE' } },
    });
    expect(await api('POST', '/api/admin/tokens', { sub: 'x', ttlS: 10_000_000 })).toMatchObject({
      status: 400,
      body: { error: { details: { path: 'ttlS' } } },
    });
    expect(await api('POST', '/api/admin/tokens', { sub: 42 })).toMatchObject({ status: 400 });
    expect(await api('PUT', '/api/admin/rooms')).toMatchObject({
      status: 405,
      body: { error: { code: 'METHOD_NOT_ALLOWED' } },
    });
    expect(await api('GET', '/api/admin/nothing-here')).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND' } },
    });
    expect(await api('DELETE', '/api/admin/rooms/conf/participants/nobody')).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_IN_ROOM' } },
    });
    const huge = await api('POST', '/api/admin/rooms/conf/messages', { data: 'x'.repeat(70_000) });
    expect(huge).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } });
  });

  it('sends room:message to every member and user:message to every session of a user, size-limited', async () => {
    const a = await connect('msg-a');
    const b = await connect('msg-b');
    const b2 = await connect('msg-b');
    await a.request('room:join', { roomId: 'conf' });
    await b.request('room:join', { roomId: 'conf' });
    const sent = await api('POST', '/api/admin/rooms/conf/messages', {
      data: { hello: [1, 'two'] },
      topic: 'news',
    });
    expect(sent).toEqual({ status: 200, body: { roomId: 'conf', members: 2 } });
    for (const c of [a, b]) {
      expect(await c.next('room:message')).toMatchObject({
        payload: { roomId: 'conf', topic: 'news', data: { hello: [1, 'two'] } },
      });
    }
    await b2.expectNothing((m) => m.type === 'room:message');
    expect(await api('POST', '/api/admin/users/msg-b/messages', { data: 42 })).toEqual({
      status: 200,
      body: { userId: 'msg-b', sessions: 2 },
    });
    for (const c of [b, b2]) expect(await c.next('user:message')).toMatchObject({ payload: { data: 42 } });
    expect(await api('POST', '/api/admin/users/nobody/messages', { data: 1 })).toMatchObject({
      status: 404,
      body: { error: { code: 'RECIPIENT_OFFLINE' } },
    });
    const tooBig = 'x'.repeat(ADMIN_MESSAGE_MAX_BYTES);
    expect(await api('POST', '/api/admin/users/msg-b/messages', { data: tooBig })).toMatchObject({
      status: 413,
      body: { error: { code: 'PAYLOAD_TOO_LARGE', details: { path: 'data' } } },
    });
    await a.request('room:leave', { roomId: 'conf' });
    await b.request('room:leave', { roomId: 'conf' });
  });

  it('removes a participant: closed with 4410, the room hears "removed", the same token cannot rejoin, a new one can', async () => {
    const token = await srv.token({ sub: 'rm-a', name: 'RM-A' });
    const a = await TestClient.connect(srv.wsUrl, token);
    clients.push(a);
    const b = await connect('rm-b');
    await a.request('room:join', { roomId: 'quiet' });
    await b.request('room:join', { roomId: 'quiet' });
    const removed = await api('DELETE', '/api/admin/rooms/quiet/participants/rm-a');
    expect(removed).toMatchObject({
      status: 200,
      body: { roomId: 'quiet', userId: 'rm-a', sessions: [expect.any(String)] },
    });
    expect(await a.closed).toEqual({ code: 4410, reason: 'removed by the server API' });
    expect(await b.next('room:participant-left')).toMatchObject({
      payload: { roomId: 'quiet', participant: { userId: 'rm-a' }, reason: 'removed' },
    });
    const again = await TestClient.connect(srv.wsUrl, token);
    clients.push(again);
    expect(await again.request('room:join', { roomId: 'quiet' })).toMatchObject({
      type: 'error',
      payload: { code: 'FORBIDDEN' },
    });
    // Other rooms stay open to that token.
    expect(await again.request('room:join', { roomId: 'conf' })).toMatchObject({ type: 'room:state' });
    await again.request('room:leave', { roomId: 'conf' });
    const fresh = await TestClient.connect(
      srv.wsUrl,
      await srv.token({ sub: 'rm-a', name: 'RM-A', jti: 'new' } as never),
    );
    clients.push(fresh);
    expect(await fresh.request('room:join', { roomId: 'quiet' })).toMatchObject({ type: 'room:state' });
    await fresh.request('room:leave', { roomId: 'quiet' });
    await b.request('room:leave', { roomId: 'quiet' });
  });

  it('revokes the floor (409 in a conference room) and ends a room with everyone told', async () => {
    const a = await connect('floor-a');
    const b = await connect('floor-b');
    await a.request('room:join', { roomId: 'radio' });
    await b.request('room:join', { roomId: 'radio' });
    expect(await api('POST', '/api/admin/rooms/radio/floor/revoke')).toEqual({
      status: 200,
      body: { roomId: 'radio', revoked: null },
    });
    await a.request('ptt:start', { roomId: 'radio' });
    await b.next('ptt:speaker-changed');
    const revoked = await api('POST', '/api/admin/rooms/radio/floor/revoke');
    expect(revoked).toMatchObject({ status: 200, body: { revoked: { userId: 'floor-a' } } });
    expect(await a.next('ptt:revoked')).toMatchObject({ payload: { roomId: 'radio', reason: 'admin' } });
    expect(await b.next('ptt:speaker-changed')).toMatchObject({ payload: { speaker: null } });
    expect(await api('POST', '/api/admin/rooms/conf/floor/revoke')).toMatchObject({
      status: 409,
      body: { error: { code: 'NOT_PTT_ROOM' } },
    });
    expect(
      await api('POST', '/api/admin/rooms/radio/participants/floor-a/mute', { muted: true }),
    ).toMatchObject({
      status: 409,
      body: { error: { code: 'NOT_CONFERENCE_ROOM' } },
    });

    const ended = await api('DELETE', '/api/admin/rooms/radio');
    expect(ended).toEqual({ status: 200, body: { roomId: 'radio', removed: 2 } });
    for (const c of [a, b])
      expect(await c.next('room:ended')).toMatchObject({ payload: { roomId: 'radio' } });
    expect((await api('GET', '/api/admin/rooms')).body.rooms).not.toContainEqual(
      expect.objectContaining({ roomId: 'radio' }),
    );
    // They are out: a leave is refused, and they may join again.
    expect(await a.request('room:leave', { roomId: 'radio' })).toMatchObject({
      payload: { code: 'NOT_IN_ROOM' },
    });
    expect(await a.request('room:join', { roomId: 'radio' })).toMatchObject({ type: 'room:state' });
    await a.request('room:leave', { roomId: 'radio' });
  });

  it('mints a working short-lived token with the CLI’s claims', async () => {
    const minted = await api('POST', '/api/admin/tokens', {
      sub: 'minted',
      name: 'Minty',
      rooms: ['conf'],
      ttlS: 60,
    });
    expect(minted).toMatchObject({
      status: 200,
      body: { userId: 'minted', token: expect.any(String) as string },
    });
    expect(minted.body.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    const c = await TestClient.connect(srv.wsUrl, String(minted.body.token));
    clients.push(c);
    expect(await c.request('room:join', { roomId: 'conf' })).toMatchObject({ type: 'room:state' });
    expect(await c.request('room:join', { roomId: 'quiet' })).toMatchObject({
      payload: { code: 'FORBIDDEN' },
    });
    await c.request('room:leave', { roomId: 'conf' });
  });

  it('mints every claim the token CLI sets, canPublishSources and canReplay included, and refuses a bad one', async () => {
    const minted = await api('POST', '/api/admin/tokens', {
      sub: 'minted-2',
      rooms: ['conf'],
      canPublishSources: ['microphone'],
      canReplay: false,
      pttPriority: 7,
    });
    expect(minted.status).toBe(200);
    const token = String(minted.body.token);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({
      sub: 'minted-2',
      rooms: ['conf'],
      canPublishSources: ['microphone'],
      canReplay: false,
      pttPriority: 7,
    });
    // The server honours them: no replay for this token, replay for one minted without the claim.
    const recordings = (t: string) =>
      fetch(`${srv.httpUrl}/api/rooms/conf/recordings`, { headers: { authorization: `Bearer ${t}` } });
    expect((await recordings(token)).status).toBe(403);
    const plain = await api('POST', '/api/admin/tokens', { sub: 'minted-3', rooms: ['conf'] });
    expect((await recordings(String(plain.body.token))).status).toBe(200);

    expect(await api('POST', '/api/admin/tokens', { sub: 'x', canPublishSources: ['radio'] })).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE', details: { path: 'canPublishSources.0' } } },
    });
    expect(await api('POST', '/api/admin/tokens', { sub: 'x', canReplay: 'no' })).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE', details: { path: 'canReplay' } } },
    });
    // Nothing else broke: the server still answers.
    expect((await api('GET', '/api/admin/rooms')).status).toBe(200);
  });

  it('lists active 1:1 calls until they end', async () => {
    const a = await connect('call-a');
    const b = await connect('call-b');
    a.send('call:offer', { recipientId: 'call-b', callId: 'c-1', sdp: 'v=0' });
    await b.next('call:offer');
    const { body } = await api('GET', '/api/admin/calls');
    expect(body.calls).toContainEqual({
      callId: 'c-1',
      users: ['call-a', 'call-b'],
      startedAt: expect.any(Number) as number,
    });
    a.send('call:hangup', { recipientId: 'call-b', callId: 'c-1' });
    await b.next('call:hangup');
    expect((await api('GET', '/api/admin/calls')).body.calls).not.toContainEqual(
      expect.objectContaining({ callId: 'c-1' }),
    );
  });

  it('rate-limits each client address', async () => {
    const results = await Promise.all(Array.from({ length: 80 }, () => api('GET', '/api/admin/calls')));
    const limited = results.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0].body).toMatchObject({ error: { code: 'RATE_LIMITED' } });
  });
});
