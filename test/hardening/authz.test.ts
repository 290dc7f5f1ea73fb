import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { sleep } from '../helpers/wait.js';
import { FAKE_DTLS, joinWithMedia, opusRtpParameters } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { MESSAGE_SCHEMAS, MESSAGE_TYPES, validValue } from './lib/fuzz-gen.js';
import { Prng } from './lib/prng.js';
import { reportFigures } from './lib/stats.js';

/*
 * Authentication and authorization gaps not covered elsewhere (test/signaling/auth.test.ts covers
 * alg:none, algorithm confusion, expiry, nbf, issuer/audience and tampering on the upgrade;
 * test/sessions/resume.test.ts forged, replayed and foreign resume tokens; test/media/sfu.test.ts
 * and test/calls/calls.test.ts the first cross-user refusals).
 */

const codeOf = (m: ServerMessage) => (m.type === 'error' ? m.payload.code : m.type);

describe('a token in the wrong place is ignored', () => {
  let srv: TestServer;
  let jwt: string;
  beforeAll(async () => {
    srv = await startServer({ AUTH_TIMEOUT_MS: '600', TURN_SECRET: 'turn-secret-0123456789abcdef' });
    jwt = await srv.token({ sub: 'alice', admin: true });
  });
  afterAll(() => srv.close());

  /** Opens an upgrade and checks the connection is treated as unauthenticated: no welcome, UNAUTHORIZED, then 4401. */
  const expectUnauthenticated = async (c: TestClient) => {
    await c.opened;
    expect(await c.request('room:join', { roomId: 'lobby', token: jwt })).toMatchObject({
      type: 'error',
      payload: { code: 'UNAUTHORIZED' },
    });
    expect((await c.closed).code).toBe(4401);
    expect(c.received.find((m) => m.type === 'welcome')).toBeUndefined();
  };

  it('in a Cookie header', async () => {
    await expectUnauthenticated(
      new TestClient(srv.wsUrl, [], {
        headers: { cookie: `token=${jwt}; access_token=${jwt}; Authorization=Bearer%20${jwt}` },
      }),
    );
  });

  it('in other query parameters or custom headers', async () => {
    await expectUnauthenticated(new TestClient(`${srv.wsUrl}?access_token=${jwt}&jwt=${jwt}&auth=${jwt}`));
    await expectUnauthenticated(
      new TestClient(srv.wsUrl, [], {
        headers: { 'x-auth-token': jwt, 'x-access-token': jwt, 'x-token': jwt },
      }),
    );
  });

  it('in Sec-WebSocket-Protocol without "parley" (and the token is never echoed)', async () => {
    const raw = await rawUpgrade(srv.port, { 'Sec-WebSocket-Protocol': jwt });
    expect(raw.status).toBe(101);
    expect(raw.responseHead).not.toContain(jwt.split('.')[2]);
    expect(raw.responseHead.toLowerCase()).not.toContain('sec-websocket-protocol');
    raw.destroy();
    const withParley = await rawUpgrade(srv.port, { 'Sec-WebSocket-Protocol': `parley, ${jwt}` });
    expect(withParley.status).toBe(101);
    expect(withParley.responseHead).toMatch(/sec-websocket-protocol: parley\r?$/im);
    expect(withParley.responseHead).not.toContain(jwt.split('.')[2]);
    withParley.destroy();
  });

  it('under another Authorization scheme: the header is present, so it is used, and refused (401)', async () => {
    for (const value of [`Token ${jwt}`, `Basic ${Buffer.from(`alice:${jwt}`).toString('base64')}`, jwt]) {
      expect(await upgradeStatus(srv.wsUrl, [], { headers: { authorization: value } })).toBe(401);
    }
  });

  it('in the payload or envelope of any message but auth:request, before or after authentication', async () => {
    const anon = new TestClient(srv.wsUrl);
    await anon.opened;
    anon.sendRaw(
      JSON.stringify({ type: 'ping', token: jwt, authorization: `Bearer ${jwt}`, correlationId: 'e1' }),
    );
    expect(codeOf(await anon.waitFor((m) => m.correlationId === 'e1'))).toBe('UNAUTHORIZED');
    expect(codeOf(await anon.request('session:resume', { resumeToken: jwt.slice(0, 256) }))).toBe(
      'UNAUTHORIZED',
    );
    expect(
      codeOf(await anon.request('call:offer', { recipientId: 'bob', callId: 'c', sdp: 'v=0', token: jwt })),
    ).toBe('UNAUTHORIZED');
    expect((await anon.closed).code).toBe(4401);

    // Authenticated as a user restricted to one room: an admin token riding in a payload grants nothing.
    const limited = await TestClient.connect(
      srv.wsUrl,
      await srv.token({ sub: 'limited', rooms: ['lobby'] }),
    );
    expect(codeOf(await limited.request('room:join', { roomId: 'dispatch', token: jwt, admin: true }))).toBe(
      'FORBIDDEN',
    );
    limited.sendRaw(
      JSON.stringify({ type: 'room:join', payload: { roomId: 'dispatch' }, token: jwt, correlationId: 'e2' }),
    );
    expect(codeOf(await limited.waitFor((m) => m.correlationId === 'e2'))).toBe('FORBIDDEN');
    expect((await limited.request('room:join', { roomId: 'lobby', token: jwt })).type).toBe('room:state');
    await limited.close();
  });

  it('for TURN credentials: only Authorization: Bearer counts', async () => {
    const url = `${srv.httpUrl}/api/turn-credentials`;
    expect((await fetch(`${url}?token=${jwt}`)).status).toBe(401);
    expect((await fetch(url, { headers: { cookie: `token=${jwt}` } })).status).toBe(401);
    expect((await fetch(url, { headers: { 'x-auth-token': jwt } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
  });
});

describe('an expired JWT cannot resume a session, even with a valid resume token', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ JWT_CLOCK_TOLERANCE_S: '0', RESUME_GRACE_MS: '8000', AUTH_TIMEOUT_MS: '2000' });
  });
  afterAll(() => srv.close());

  it('refuses the expired JWT on the upgrade (401) and in-band (4401); a fresh JWT of the same user resumes', async () => {
    // 2 s, not 1: exp is in whole seconds, so a 1 s token issued at x.999 s would already be expired.
    const shortLived = await srv.token({ sub: 'alice' }, { ttlS: 2 });
    const exp = (JSON.parse(Buffer.from(shortLived.split('.')[1], 'base64url').toString()) as { exp: number })
      .exp;
    const { c: a, welcome } = await connectWithWelcome(srv.wsUrl, shortLived);
    const bob = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'bob' }));
    expect((await a.request('room:join', { roomId: 'r1' })).type).toBe('room:state');
    expect((await bob.request('room:join', { roomId: 'r1' })).type).toBe('room:state');
    const { resumeToken } = welcome;
    a.ws.terminate(); // network drop: the session is suspended
    await sleep(Math.max(0, exp * 1000 - Date.now() + 150)); // time is the point: until the JWT expires
    expect(Date.now()).toBeGreaterThan(exp * 1000);

    // The same (now expired) JWT: refused before the upgrade, wherever it is put.
    expect(await upgradeStatus(srv.wsUrl, [], { headers: { authorization: `Bearer ${shortLived}` } })).toBe(
      401,
    );
    expect(await upgradeStatus(`${srv.wsUrl}?token=${shortLived}`)).toBe(401);
    expect(await upgradeStatus(srv.wsUrl, ['parley', shortLived])).toBe(401);
    // In-band: session:resume before auth is UNAUTHORIZED; auth:request with the expired JWT closes 4401.
    const anon = new TestClient(srv.wsUrl);
    await anon.opened;
    expect(codeOf(await anon.request('session:resume', { resumeToken }))).toBe('UNAUTHORIZED');
    expect(codeOf(await anon.request('auth:request', { token: shortLived }))).toBe('UNAUTHORIZED');
    expect((await anon.closed).code).toBe(4401);

    // None of that spent the resume token: a fresh JWT of the same user resumes, and bob saw nothing.
    const a2 = await TestClient.connect(srv.wsUrl, await srv.token({ sub: 'alice' }));
    const resumed = await a2.request('session:resume', { resumeToken });
    expect(resumed.type).toBe('session:resumed');
    expect(bob.received.filter((m) => m.type === 'room:participant-left')).toEqual([]);
    await a2.close(1000);
    await bob.close(1000);
  });
});

/** Connects with a Bearer token and returns the client with its welcome payload. */
async function connectWithWelcome(url: string, token: string) {
  const c = new TestClient(url, [], { headers: { authorization: `Bearer ${token}` } });
  await c.opened;
  return { c, welcome: (await c.next('welcome')).payload };
}

describe('no one acts in a room they are not in, nor on what is not theirs', () => {
  const manifest = {
    allowAdHocRooms: false,
    channels: [
      { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 20 },
      { id: 'ops', name: 'Ops', mode: 'conference', maxParticipants: 20 },
      { id: 'elsewhere', name: 'Elsewhere', mode: 'conference', maxParticipants: 20 },
    ],
  };
  let srv: TestServer;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer({ MEDIASOUP_WORKERS: '1', RATE_LIMIT_BURST: '1000' }, manifest);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });
  const connect = async (sub: string, claims: Record<string, unknown> = {}) => {
    const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub, name: sub, ...claims }));
    clients.push(c);
    return c;
  };

  /** Message types that name a room, or one of the SFU objects, read from the schemas. */
  const fieldsOf = (type: string) => Object.keys(MESSAGE_SCHEMAS.get(type)?.properties ?? {});
  const ROOM_SCOPED = MESSAGE_TYPES.filter((t) => fieldsOf(t).includes('roomId') && t !== 'room:join');
  const OBJECT_SCOPED = MESSAGE_TYPES.filter((t) =>
    fieldsOf(t).some((f) => f === 'transportId' || f === 'producerId' || f === 'consumerId'),
  );
  /** Not scoped to a room or an SFU object: identity, keep-alive, joining, and user-to-user calls. */
  const UNSCOPED = ['auth:request', 'session:resume', 'ping', 'room:join'];

  it('classifies every client message type (a new room-scoped type cannot slip through untested)', () => {
    const calls = MESSAGE_TYPES.filter((t) => t.startsWith('call:'));
    for (const t of MESSAGE_TYPES) {
      expect(
        ROOM_SCOPED.includes(t) || OBJECT_SCOPED.includes(t) || UNSCOPED.includes(t) || calls.includes(t),
        t,
      ).toBe(true);
    }
    expect(ROOM_SCOPED).toEqual(
      expect.arrayContaining([
        'room:leave',
        'sdp:offer',
        'ice:candidate',
        'media:capabilities',
        'transport:create',
        'ptt:start',
        'ptt:stop',
      ]),
    );
    expect(OBJECT_SCOPED).toEqual(
      expect.arrayContaining([
        'transport:connect',
        'transport:restart-ice',
        'produce',
        'consume',
        'consumer:resume',
        'producer:close',
      ]),
    );
  });

  it('every room-scoped and object-scoped message from outside the room → NOT_IN_ROOM or FORBIDDEN; then from inside, on objects of others → FORBIDDEN; the victim is untouched', async () => {
    const vic = await connect('vic');
    const radio = await joinWithMedia(vic, 'radio', { produce: true, consumeFloor: true });
    const ops = await joinWithMedia(vic, 'ops', { produce: true });
    expect((await vic.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
    const { media, store } = srv.server.internalsForTesting;
    const before = media.stats();

    const mal = await connect('mal', { pttPriority: 0 });
    await joinWithMedia(mal, 'elsewhere');

    const rng = new Prng(7);
    const targets = [
      { roomId: 'radio', m: radio },
      { roomId: 'ops', m: ops },
    ];
    const payloadFor = (type: string, t: (typeof targets)[number]) => {
      const p = validValue(
        MESSAGE_SCHEMAS.get(type)!,
        'payload',
        { rooms: [t.roomId], users: ['vic'], mediaIds: [], maxFrameBytes: 65_536 },
        rng,
        true,
      ) as Record<string, unknown>;
      if ('roomId' in p) p.roomId = t.roomId;
      if ('to' in p) p.to = 'vic';
      if (type === 'produce') {
        p.transportId = t.m.send.id;
        p.kind = 'audio';
        p.rtpParameters = opusRtpParameters();
      } else if (type === 'consume') {
        p.transportId = t.m.recv.id; // vic's
        p.producerId = t.m.producerId;
        p.rtpCapabilities = t.m.caps.rtpCapabilities;
      } else if ('transportId' in p) p.transportId = t.m.send.id;
      if ('producerId' in p && type !== 'consume') p.producerId = t.m.producerId;
      if ('consumerId' in p) p.consumerId = radio.consumerId;
      if ('dtlsParameters' in p) p.dtlsParameters = FAKE_DTLS;
      return p;
    };
    const outcomes: Record<string, string> = {};
    for (const t of targets) {
      for (const type of [...ROOM_SCOPED, ...OBJECT_SCOPED]) {
        // ptt:* in a conference room is NOT_PTT_ROOM for everyone, member or not (the mode is public).
        if (type.startsWith('ptt:') && t.roomId !== 'radio') continue;
        const reply = await mal.request(type, payloadFor(type, t));
        outcomes[`outside ${t.roomId} ${type}`] = codeOf(reply);
        expect(['NOT_IN_ROOM', 'FORBIDDEN'], `${type} in ${t.roomId}`).toContain(codeOf(reply));
      }
    }
    // Now inside both rooms: every object-scoped message aimed at vic's objects is FORBIDDEN.
    for (const t of targets) {
      expect((await mal.request('room:join', { roomId: t.roomId })).type).toBe('room:state');
      for (const type of OBJECT_SCOPED) {
        const reply = await mal.request(type, payloadFor(type, t));
        outcomes[`inside ${t.roomId} ${type}`] = codeOf(reply);
        expect(codeOf(reply), `${type} on vic's object in ${t.roomId}`).toBe('FORBIDDEN');
      }
    }
    reportFigures('authz-scoped', {
      roomScopedTypes: ROOM_SCOPED,
      objectScopedTypes: OBJECT_SCOPED,
      attempts: Object.keys(outcomes).length,
      outcomes,
    });

    // The victim: still speaking, same media, and never heard from mal.
    expect((await store.currentSpeaker('radio'))?.userId).toBe('vic');
    const after = media.stats();
    expect(after.producers).toBe(before.producers);
    expect(after.consumers).toBe(before.consumers);
    expect(
      vic.received.filter((m) => 'payload' in m && (m.payload as { senderId?: string }).senderId === 'mal'),
    ).toEqual([]);
  });

  it('nobody else stops a speaker: not a member, not another member, not the same user on another device, not a forged priority', async () => {
    const { c: spk, welcome } = await connectWithWelcome(
      srv.wsUrl,
      await srv.token({ sub: 'spk', name: 'spk' }),
    );
    clients.push(spk);
    const other = await connect('other-member');
    const spk2 = await connect('spk'); // the same user on a second device
    const outsider = await connect('outsider');
    for (const c of [spk, other, spk2])
      expect((await c.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
    // The previous test's speaker releases the floor; spk takes it.
    const vic = clients[0];
    expect((await vic.request('ptt:stop', { roomId: 'radio' })).type).toBe('ptt:stopped');
    expect((await spk.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');

    expect(codeOf(await outsider.request('ptt:stop', { roomId: 'radio' }))).toBe('NOT_IN_ROOM');
    expect(await other.request('ptt:stop', { roomId: 'radio' })).toMatchObject({
      type: 'ptt:stopped',
      payload: { held: false },
    });
    expect(await spk2.request('ptt:stop', { roomId: 'radio' })).toMatchObject({
      type: 'ptt:stopped',
      payload: { held: false },
    });
    // A priority field in the payload or envelope is not a claim.
    other.sendRaw(
      JSON.stringify({
        type: 'ptt:start',
        payload: { roomId: 'radio', pttPriority: 100, priority: 100 },
        pttPriority: 100,
        correlationId: 'prio',
      }),
    );
    expect(await other.waitFor((m) => m.correlationId === 'prio')).toMatchObject({
      type: 'ptt:denied',
      payload: { speaker: { userId: 'spk' } },
    });
    const lock = await srv.server.internalsForTesting.store.currentSpeaker('radio');
    expect(lock).toMatchObject({ userId: 'spk', sessionId: welcome.sessionId });
    expect(spk.received.find((m) => m.type === 'ptt:revoked')).toBeUndefined();
  });
});

describe('no secret reaches the logs at info level, across a whole mixed session', () => {
  const TURN_SECRET = 'turn-static-auth-secret-5f2a9c';
  let srv: TestServer;
  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      {
        LOG_LEVEL: 'info',
        TURN_SECRET,
        TURN_URIS: 'turn:127.0.0.1:3478',
        MEDIASOUP_WORKERS: '1',
        RESUME_GRACE_MS: '3000',
        AUTH_TIMEOUT_MS: '800',
      },
      { channels: [{ id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 20 }] },
    );
  });
  afterAll(() => srv.close());

  it('tokens (good and refused), TURN secret and passwords, resume tokens and SDP never appear', async () => {
    const secrets: { what: string; value: string }[] = [];
    const keep = (what: string, value: string) => {
      secrets.push({ what, value });
      return value;
    };
    const jwt = async (sub: string, ttlS?: number) => {
      const t = await srv.token({ sub }, ttlS === undefined ? {} : { ttlS });
      keep(`jwt ${sub}`, t);
      keep(`jwt signature ${sub}`, t.split('.')[2]);
      return t;
    };
    // Every way in, good and bad.
    const { c: alice, welcome: wa } = await connectWithWelcome(srv.wsUrl, await jwt('alice'));
    keep('resume token alice', wa.resumeToken);
    const bob = new TestClient(`${srv.wsUrl}?token=${await jwt('bob')}`);
    await bob.opened;
    const wb = (await bob.next('welcome')).payload;
    keep('resume token bob', wb.resumeToken);
    const carol = new TestClient(srv.wsUrl, ['parley', await jwt('carol')]);
    await carol.opened;
    keep('resume token carol', (await carol.next('welcome')).payload.resumeToken);
    const dave = new TestClient(srv.wsUrl);
    await dave.opened;
    await dave.request('auth:request', { token: await jwt('dave') });
    keep('resume token dave', (await dave.next('welcome')).payload.resumeToken);
    await upgradeStatus(srv.wsUrl, [], { headers: { authorization: `Bearer ${await jwt('expired', -60)}` } });
    const tampered = (await jwt('tampered')).slice(0, -4) + 'AAAA';
    keep('tampered jwt', tampered);
    await upgradeStatus(`${srv.wsUrl}?token=${tampered}`);
    await upgradeStatus(srv.wsUrl, ['parley', keep('garbage token', 'garbage.token.x9q7w1z3')]);
    const late = new TestClient(srv.wsUrl);
    await late.opened;
    await late.request('auth:request', { token: await jwt('refused-inband', -60) });
    await late.closed;

    // Rooms, calls with SDP and ICE, in-room relay, PTT, media with fingerprints.
    for (const c of [alice, bob, carol])
      expect((await c.request('room:join', { roomId: 'radio' })).type).toBe('room:state');
    const sdp = keep('sdp', 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\na=ice-pwd:SECRETICEPWD8c1f\r\n');
    alice.send('call:offer', { recipientId: 'bob', callId: 'k1', sdp });
    await bob.next('call:offer');
    bob.send('call:answer', {
      recipientId: 'alice',
      callId: 'k1',
      sdp: keep('sdp answer', `${sdp}a=answer:77d1\r\n`),
    });
    await alice.next('call:answer');
    const candidate = keep('ice', 'candidate:842163049 1 udp 1677729535 192.0.2.77 3478 typ srflx');
    alice.send('call:ice-candidate', {
      recipientId: 'bob',
      callId: 'k1',
      candidate: { candidate, sdpMid: '0' },
    });
    await bob.next('call:ice-candidate');
    carol.send('sdp:offer', { roomId: 'radio', to: 'alice', sdp: keep('room sdp', `${sdp}a=room:91ab\r\n`) });
    await alice.next('sdp:offer');
    await joinWithMedia(alice, 'radio', { produce: true, consumeFloor: true });
    expect((await alice.request('ptt:start', { roomId: 'radio' })).type).toBe('ptt:granted');
    expect((await alice.request('ptt:stop', { roomId: 'radio' })).type).toBe('ptt:stopped');
    // Malformed frames that carry secrets in bad fields.
    alice.sendRaw(
      JSON.stringify({
        type: 'call:offer',
        payload: { recipientId: 'bob', callId: 'k2', sdp: 42 },
        token: wa.resumeToken,
      }),
    );
    alice.sendRaw(
      `{"type":"auth:request","payload":{"token":"${keep('broken json token', 'eyJhbGciOi.broken.json')}"`,
    );
    await alice.request('auth:request', { token: keep('bad inband refresh', 'eyJ.bad.refresh-5d1') });

    // TURN credentials: the secret and the derived password.
    const turn = (await (
      await fetch(`${srv.httpUrl}/api/turn-credentials`, {
        headers: { authorization: `Bearer ${await jwt('turnuser')}` },
      })
    ).json()) as { password: string };
    keep('turn secret', TURN_SECRET);
    keep('turn password', turn.password);
    await fetch(`${srv.httpUrl}/api/turn-credentials`, { headers: { authorization: `Bearer ${tampered}` } });

    // A drop and a resume, a failed resume, and goodbyes.
    bob.ws.terminate();
    const { c: bob2 } = await connectWithWelcome(srv.wsUrl, await jwt('bob'));
    const resumed = await bob2.request('session:resume', { resumeToken: wb.resumeToken });
    expect(resumed.type).toBe('session:resumed');
    keep(
      'fresh resume token',
      (resumed as Extract<ServerMessage, { type: 'session:resumed' }>).payload.resumeToken,
    );
    await carol.request('session:resume', {
      resumeToken: keep('forged resume token', 'Zm9yZ2VkLXJlc3VtZS10b2tlbi0xMjM0NTY3ODkw'),
    });
    for (const c of [alice, bob2, carol, dave]) await c.close(1000);

    const text = srv.logText();
    const leaked = secrets.filter((s) => s.value.length >= 8 && text.includes(s.value)).map((s) => s.what);
    const levels = new Set(srv.logs.map((l) => l.level));
    reportFigures('authz-log-secrecy', {
      logLines: srv.logs.length,
      levels: [...levels],
      secretsChecked: secrets.length,
      leaked,
    });
    expect(srv.logs.length).toBeGreaterThan(20);
    expect([...levels].every((l) => (l as number) >= 30)).toBe(true); // info and above only
    expect(leaked).toEqual([]);
  });
});
