import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';
import { LegacyClient, upgradeOutcome } from './legacy-client.js';

/**
 * The earlier PTT server's verification steps, replayed literally: ping with `id`, 401 without a
 * token (IN_BAND_AUTH=false), and the token alone as the subprotocol (LEGACY_TOKEN_SUBPROTOCOL).
 */
describe('compat: the PTT server’s verification steps', () => {
  let legacy: TestServer;
  let standard: TestServer;
  const manifest = {
    allowAdHocRooms: false,
    channels: [{ id: 'ch1', name: 'Channel 1', mode: 'ptt', maxParticipants: 10 }],
  };
  beforeAll(async () => {
    legacy = await startServer({ IN_BAND_AUTH: 'false', LEGACY_TOKEN_SUBPROTOCOL: 'true' }, manifest);
    standard = await startServer({}, manifest);
  });
  afterAll(async () => {
    await legacy.close();
    await standard.close();
  });

  const bearer = async (srv: TestServer, sub: string) => {
    const c = new LegacyClient(srv.wsUrl, [], {
      headers: { authorization: `Bearer ${await srv.token({ sub })}` },
    });
    await c.opened;
    await c.next('welcome');
    return c;
  };

  describe('ping with id', () => {
    it('{type:"ping", id:"1"} gets {type:"pong", id:"1"}, on every configuration', async () => {
      for (const srv of [standard, legacy]) {
        const c = await bearer(srv, 'pinger');
        c.send({ type: 'ping', id: '1' });
        const pong = await c.next('pong');
        expect(pong).toMatchObject({
          type: 'pong',
          id: '1',
          payload: { serverTime: expect.any(Number) as number },
        });
        expect(pong).not.toHaveProperty('correlationId');
        await c.close();
      }
    });

    it('an integer id comes back as the same integer; correlationId still works beside it', async () => {
      const c = await bearer(standard, 'pinger2');
      c.send({ type: 'ping', id: 42 });
      expect(await c.next('pong')).toMatchObject({ id: 42 });
      c.send({ type: 'ping', correlationId: 'c-1' });
      const pong = await c.next('pong');
      expect(pong).toMatchObject({ correlationId: 'c-1' });
      expect(pong).not.toHaveProperty('id');
      await c.close();
    });

    it('error replies carry the id too (refusals and unknown types)', async () => {
      const c = await bearer(standard, 'pinger3');
      c.send({ type: 'room:join', id: 'j1', payload: { roomId: 'no-such-room' } });
      expect(await c.next('error')).toMatchObject({ id: 'j1', payload: { code: 'ROOM_NOT_FOUND' } });
      c.send({ type: 'JOIN_CHANNEL', id: 'j2', payload: { channelId: 'ch1' } });
      expect(await c.next('error')).toMatchObject({ id: 'j2', payload: { code: 'UNKNOWN_TYPE' } });
      await c.close();
    });

    it('a bad id is refused with INVALID_MESSAGE naming it, and the connection carries on', async () => {
      const c = await bearer(standard, 'pinger4');
      for (const id of [{}, '', 'x'.repeat(129), 1.5, null]) {
        c.send({ type: 'ping', id });
        expect(await c.next('error')).toMatchObject({
          payload: { code: 'INVALID_MESSAGE', details: { path: 'id' } },
        });
      }
      c.send({ type: 'ping', id: 'after' });
      expect(await c.next('pong')).toMatchObject({ id: 'after' });
      await c.close();
    });
  });

  describe('IN_BAND_AUTH=false: 401 without a token', () => {
    it('refuses a tokenless upgrade with 401 before any WebSocket exists, and logs why', async () => {
      expect(await upgradeOutcome(new LegacyClient(legacy.wsUrl))).toBe(401);
      expect(legacy.logs.some((l) => l.msg === 'upgrade refused: no token (IN_BAND_AUTH=false)')).toBe(true);
    });
    it('still takes a token from the header, the query or the subprotocol pair', async () => {
      const token = await legacy.token({ sub: 'ok' });
      for (const c of [
        new LegacyClient(legacy.wsUrl, [], { headers: { authorization: `Bearer ${token}` } }),
        new LegacyClient(`${legacy.wsUrl}?token=${token}`),
        new LegacyClient(legacy.wsUrl, ['parley', token]),
      ]) {
        await c.opened;
        expect((await c.next('welcome')).payload).toMatchObject({ userId: 'ok' });
        await c.close();
      }
    });
    it('by default (IN_BAND_AUTH=true) the tokenless upgrade opens and waits for auth:request', async () => {
      const c = new LegacyClient(standard.wsUrl);
      await c.opened;
      c.send({ type: 'auth:request', id: 'a1', payload: { token: await standard.token({ sub: 'late' }) } });
      expect(await c.next('auth:response')).toMatchObject({ id: 'a1', payload: { userId: 'late' } });
      await c.next('welcome');
      await c.close();
    });
  });

  describe('LEGACY_TOKEN_SUBPROTOCOL=true: the token alone as the subprotocol', () => {
    it('authenticates with it and selects it, as the earlier server did', async () => {
      const token = await legacy.token({ sub: 'walkie' });
      const c = new LegacyClient(legacy.wsUrl, token);
      await c.opened;
      expect(c.ws.protocol).toBe(token);
      expect((await c.next('welcome')).payload).toMatchObject({ userId: 'walkie' });
      c.send({ type: 'ping', id: '1' });
      expect(await c.next('pong')).toMatchObject({ id: '1' });
      await c.close();
      expect(legacy.logText()).not.toContain(token);
    });
    it('refuses a bad or expired token alone with 401 at the upgrade', async () => {
      const expired = await legacy.token({ sub: 'old' }, { ttlS: -60 });
      expect(await upgradeOutcome(new LegacyClient(legacy.wsUrl, expired))).toBe(401);
      const forged = (await legacy.token({ sub: 'x' })).replace(/\.[^.]+$/, '.AAAA');
      expect(await upgradeOutcome(new LegacyClient(legacy.wsUrl, forged))).toBe(401);
      expect(legacy.logText()).not.toContain(forged);
    });
    it('still selects `parley` (never the token) for a client offering both', async () => {
      const token = await legacy.token({ sub: 'browser' });
      const c = new LegacyClient(legacy.wsUrl, ['parley', token]);
      await c.opened;
      expect(c.ws.protocol).toBe('parley');
      await c.close();
    });
    it('off by default: the handshake fails on the client ("no subprotocol"), as the issue reports', async () => {
      const token = await standard.token({ sub: 'walkie' });
      const outcome = await upgradeOutcome(new LegacyClient(standard.wsUrl, token));
      expect(outcome).toMatch(/Server sent no subprotocol/);
    });
  });

  it('the PTT flow with id correlation: join, start (granted first), stop', async () => {
    const a = await bearer(standard, 'talker');
    a.send({ type: 'room:join', id: '2', payload: { roomId: 'ch1' } });
    expect(await a.next('room:state')).toMatchObject({ id: '2', payload: { config: { mode: 'ptt' } } });
    a.send({ type: 'ptt:start', id: '3', payload: { roomId: 'ch1' } });
    const first = await a.next(() => true);
    expect(first).toMatchObject({ type: 'ptt:granted', id: '3' });
    expect(await a.next('ptt:speaker-changed')).toMatchObject({ payload: { speaker: { userId: 'talker' } } });
    a.send({ type: 'ptt:stop', id: '4', payload: { roomId: 'ch1' } });
    expect(await a.next(() => true)).toMatchObject({ type: 'ptt:stopped', id: '4', payload: { held: true } });
    expect(await a.next('ptt:speaker-changed')).toMatchObject({ payload: { speaker: null } });
    await a.close();
  });
});
