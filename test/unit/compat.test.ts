import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractToken, selectSubprotocol } from '../../src/server/auth/extract-token.js';
import { ConfigError, loadConfig } from '../../src/server/config/env.js';
import { loadManifest, publicStation, StationManifest } from '../../src/server/config/manifest.js';
import { healthBody } from '../../src/server/http/health.js';
import { decode } from '../../src/server/signaling/codec.js';
import { callsV0 } from '../../src/server/signaling/dialect.js';
import { encode, frame } from '../../src/server/wire/frame.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
const upgrade = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
const url = (q = '') => new URL(`http://localhost/ws${q}`);

describe('id: an alias of correlationId (codec)', () => {
  it('takes a string id, keeps the key for the reply, and gives the schemas a correlationId', () => {
    const d = decode(JSON.stringify({ type: 'ping', id: '1' }));
    expect(d).toMatchObject({ ok: true, correlation: { key: 'id', value: '1' } });
    if (d.ok) expect(d.msg.correlationId).toBe('1');
  });
  it('takes an integer id and echoes it as a number', () => {
    const d = decode(JSON.stringify({ type: 'ping', id: 7 }));
    expect(d).toMatchObject({ ok: true, correlation: { key: 'id', value: 7 } });
    expect(JSON.parse(encode('pong', { serverTime: 1 }, { key: 'id', value: 7 }))).toMatchObject({
      type: 'pong',
      id: 7,
    });
  });
  it('prefers correlationId when a frame has both', () => {
    const d = decode(JSON.stringify({ type: 'ping', id: 'x', correlationId: 'y' }));
    expect(d).toMatchObject({ ok: true, correlation: { key: 'correlationId', value: 'y' } });
  });
  it('encodes a reply under the key the request used, never both', () => {
    const byId = JSON.parse(encode('pong', { serverTime: 1 }, { key: 'id', value: '1' })) as object;
    expect(byId).toHaveProperty('id', '1');
    expect(byId).not.toHaveProperty('correlationId');
    const byCid = JSON.parse(encode('pong', { serverTime: 1 }, 'c1')) as object;
    expect(byCid).toHaveProperty('correlationId', 'c1');
    expect(byCid).not.toHaveProperty('id');
  });
  it.each([
    ['an empty string', ''],
    ['a string over 128 characters', 'x'.repeat(129)],
    ['a fraction', 1.5],
    ['an object', { a: 1 }],
    ['null', null],
    ['a boolean', true],
  ])('refuses %s as id with INVALID_MESSAGE naming the field', (_what, id) => {
    expect(decode(JSON.stringify({ type: 'ping', id }))).toMatchObject({
      ok: false,
      code: 'INVALID_MESSAGE',
      details: { path: 'id', type: 'ping' },
    });
  });
  it('keeps the id on errors of frames it could read (unknown type, bad payload)', () => {
    expect(decode(JSON.stringify({ type: 'nope', id: 'u1' }))).toMatchObject({
      code: 'UNKNOWN_TYPE',
      correlation: { key: 'id', value: 'u1' },
    });
    expect(decode(JSON.stringify({ type: 'room:join', id: 'u2', payload: {} }))).toMatchObject({
      code: 'INVALID_MESSAGE',
      correlation: { key: 'id', value: 'u2' },
    });
  });
});

describe('the calls-v0 dialect', () => {
  it.each([
    ['call-offer', 'call:offer'],
    ['call-answer', 'call:answer'],
    ['call-ice-candidate', 'call:ice-candidate'],
    ['call-accept', 'call:accept'],
    ['call-reject', 'call:reject'],
    ['call-hangup', 'call:hangup'],
  ])('reads %s as %s', (v0, parley) => {
    expect(callsV0.inbound(v0)).toBe(parley);
    const d = decode(
      JSON.stringify({ type: v0, payload: { recipientId: 'b', callId: 'k', sdp: 'v=0', candidate: null } }),
      callsV0,
    );
    expect(d).toMatchObject({ ok: true, msg: { type: parley } });
  });
  it('leaves every other name alone, and knows no other hyphenated name', () => {
    expect(callsV0.inbound('room:join')).toBe('room:join');
    expect(decode(JSON.stringify({ type: 'call-transfer', payload: {} }), callsV0)).toMatchObject({
      code: 'UNKNOWN_TYPE',
      details: { type: 'call-transfer' },
    });
    // Without the dialect the hyphenated names stay unknown.
    expect(decode(JSON.stringify({ type: 'call-offer', payload: {} }))).toMatchObject({
      code: 'UNKNOWN_TYPE',
    });
  });
  it('writes relayed call frames with the hyphenated name, without touching the shared frame', () => {
    const f = frame('call:offer', { senderId: 'a', senderName: 'A', callId: 'k', sdp: 'v=0' });
    const before = f.data.toString();
    const out = callsV0.outbound(f);
    expect(JSON.parse(out.data.toString())).toMatchObject({ type: 'call-offer', payload: { callId: 'k' } });
    expect(f.data.toString()).toBe(before);
    const pong = frame('pong', { serverTime: 1 });
    expect(callsV0.outbound(pong)).toBe(pong);
  });
  it('answers a refused call message with call-error, and anything else with Parley’s error', () => {
    const body = { code: 'RECIPIENT_OFFLINE' as const, message: 'user "b" is not connected' };
    const f = callsV0.error(body, { type: 'call:offer', payload: { recipientId: 'b', callId: 'k' } });
    expect(JSON.parse(f?.data.toString() ?? '{}')).toMatchObject({
      type: 'call-error',
      payload: { callId: 'k', recipientId: 'b', error: 'recipient_offline', code: 'RECIPIENT_OFFLINE' },
    });
    expect(callsV0.error(body, { type: 'room:join', payload: {} })).toBeNull();
  });
  it('echoes only sane ids from a message that failed validation', () => {
    const body = { code: 'INVALID_MESSAGE' as const, message: 'bad' };
    const f = callsV0.error(body, {
      type: 'call:offer',
      payload: { callId: 'x'.repeat(500), recipientId: 5 },
    });
    const payload = (JSON.parse(f?.data.toString() ?? '{}') as { payload: object }).payload;
    expect(payload).not.toHaveProperty('callId');
    expect(payload).not.toHaveProperty('recipientId');
    expect(payload).toMatchObject({ error: 'invalid_message' });
  });
});

describe('subprotocols and where the token is', () => {
  it('selects the first of ours the client offered, never the token beside it', () => {
    expect(selectSubprotocol(['parley', JWT])).toBe('parley');
    expect(selectSubprotocol([JWT, 'parley.v0-calls'])).toBe('parley.v0-calls');
    expect(selectSubprotocol(['parley.v0-calls', 'parley', JWT])).toBe('parley.v0-calls');
    expect(selectSubprotocol([JWT], { legacySubprotocol: true })).toBe(JWT);
  });
  it('selects a token offered alone only with LEGACY_TOKEN_SUBPROTOCOL, and only a JWT-shaped one', () => {
    expect(selectSubprotocol([JWT])).toBe(false);
    expect(selectSubprotocol(['mqtt'], { legacySubprotocol: true })).toBe(false);
    expect(selectSubprotocol([JWT, 'other'], { legacySubprotocol: true })).toBe(false);
  });
  it('finds the token beside either of our subprotocols, and alone only with the switch', () => {
    const beside = upgrade({ 'sec-websocket-protocol': `parley.v0-calls, ${JWT}` });
    expect(extractToken(beside, url())).toEqual({ token: JWT, source: 'subprotocol' });
    const alone = upgrade({ 'sec-websocket-protocol': JWT });
    expect(extractToken(alone, url())).toBeNull();
    expect(extractToken(alone, url(), { legacySubprotocol: true })).toEqual({
      token: JWT,
      source: 'legacy-subprotocol',
    });
    // The SPEC's order still holds: a header wins over a legacy subprotocol.
    const both = upgrade({ authorization: 'Bearer h.h.h', 'sec-websocket-protocol': JWT });
    expect(extractToken(both, url(), { legacySubprotocol: true })).toEqual({
      token: 'h.h.h',
      source: 'header',
    });
  });
});

describe('configuration switches', () => {
  it('defaults: in-band auth on, the legacy subprotocol off', () => {
    const c = loadConfig({});
    expect(c.auth.inBandAuth).toBe(true);
    expect(c.auth.legacyTokenSubprotocol).toBe(false);
  });
  it('reads IN_BAND_AUTH=false and LEGACY_TOKEN_SUBPROTOCOL=true', () => {
    const c = loadConfig({ IN_BAND_AUTH: 'false', LEGACY_TOKEN_SUBPROTOCOL: 'true' });
    expect(c.auth.inBandAuth).toBe(false);
    expect(c.auth.legacyTokenSubprotocol).toBe(true);
  });
  it.each(['IN_BAND_AUTH', 'LEGACY_TOKEN_SUBPROTOCOL'])('refuses a non-boolean %s, naming it', (name) => {
    expect(() => loadConfig({ [name]: 'maybe' })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: 'maybe' })).toThrow(new RegExp(`${name}: .*\\(got "maybe"\\)`));
  });
});

describe('the manifest’s signaling {url}', () => {
  it('is accepted and served in /api/station', () => {
    const m = StationManifest.parse({ signaling: { url: 'wss://voice.example.com/ws' } });
    expect(publicStation(m).signaling).toEqual({ url: 'wss://voice.example.com/ws' });
    expect(publicStation(StationManifest.parse({}))).not.toHaveProperty('signaling');
  });
  it.each([
    ['an http URL', { url: 'https://voice.example.com/ws' }, 'signaling.url'],
    ['not a URL', { url: 'voice' }, 'signaling.url'],
    ['no url', {}, 'signaling.url'],
    ['an unknown key', { url: 'wss://a.example/ws', path: '/ws' }, 'signaling'],
  ])('stops start-up on %s, naming the field', async (_what, signaling, field) => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-manifest-'));
    const path = join(dir, 'station.json');
    writeFileSync(path, JSON.stringify({ signaling }));
    const err = await loadManifest(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`${field}:`);
  });
});

describe('/health', () => {
  it('answers uptime in seconds beside uptimeS', () => {
    const body = healthBody(
      {
        readiness: () => 'ok',
        connections: () => 0,
        workers: () => 0,
        sfu: () => null,
        redis: () => null,
        nodeId: 'n',
      },
      performance.now() - 2_500,
    );
    expect(body.uptime).toBeGreaterThanOrEqual(2.5);
    expect(body.uptime).toBeLessThan(60);
    expect(body.uptimeS).toBe(Math.round(body.uptime));
  });
});
