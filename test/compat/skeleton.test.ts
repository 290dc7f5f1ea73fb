import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { TEST_SECRET } from '../helpers/server.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { LegacyClient } from './legacy-client.js';

/**
 * The signaling skeleton's checks, replayed literally against a real Parley process started with
 * the skeleton's seed manifest (which carries `signaling: {url}`).
 */
describe('compat: the signaling skeleton’s checks', () => {
  let node: NodeProcess;
  const issuer = new TokenIssuer({ secret: TEST_SECRET });
  const seed = {
    name: 'OpenStudio',
    signaling: { url: 'wss://studio.example.com/ws' },
    channels: [{ id: 'studio', name: 'Studio', mode: 'conference', maxParticipants: 10 }],
  };
  const writeManifest = (body: unknown) => {
    const path = join(mkdtempSync(join(tmpdir(), 'parley-seed-')), 'station.json');
    writeFileSync(path, JSON.stringify(body));
    return path;
  };
  const connect = async () => {
    const c = new LegacyClient(node.wsUrl, ['parley', await issuer.issue({ sub: 'studio-user' })]);
    await c.opened;
    return c;
  };

  beforeAll(async () => {
    node = await startNodeProcess({ PARLEY_MANIFEST: writeManifest(seed) });
  });
  afterAll(() => node.stop());

  it('starts with the seed manifest (it used to exit 78 on "Unrecognized key: signaling")', async () => {
    const res = await fetch(`${node.httpUrl}/api/station`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      name: 'OpenStudio',
      signaling: { url: 'wss://studio.example.com/ws' },
      channels: [{ id: 'studio' }],
    });
  });

  it('a bad signaling url still stops start-up, naming the field', async () => {
    const bad = startNodeProcess({ PARLEY_MANIFEST: writeManifest({ signaling: { url: 'http://x' } }) });
    await expect(bad).rejects.toThrow(/signaling\.url: expected a ws:\/\/ or wss:\/\/ URL/);
  });

  it('GET /health answers uptime (seconds) as well as uptimeS', async () => {
    const res = await fetch(`${node.httpUrl}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ok', uptime: expect.any(Number) as number });
    expect(body.uptime).toBeGreaterThanOrEqual(0);
    expect(Math.abs((body.uptime as number) - (body.uptimeS as number))).toBeLessThanOrEqual(1);
  });

  it('welcome on connect, with the protocol version, server time and heartbeat', async () => {
    const c = await connect();
    const welcome = await c.next('welcome');
    expect(welcome.payload).toMatchObject({
      sessionId: expect.any(String) as string,
      protocolVersion: 1,
      serverTime: expect.any(Number) as number,
      heartbeatIntervalMs: expect.any(Number) as number,
      heartbeatTimeoutMs: expect.any(Number) as number,
    });
    await c.close();
  });

  it('ping/pong with a timestamp, correlated either way', async () => {
    const c = await connect();
    await c.next('welcome');
    c.send({ type: 'ping', correlationId: 'p1', timestamp: Date.now() });
    const pong = await c.next('pong');
    expect(pong).toMatchObject({
      correlationId: 'p1',
      timestamp: expect.any(Number) as number,
      payload: { serverTime: expect.any(Number) as number },
    });
    c.send({ type: 'ping', id: 'p2' });
    expect(await c.next('pong')).toMatchObject({ id: 'p2', timestamp: expect.any(Number) as number });
    await c.close();
  });

  it('invalid JSON gets INVALID_MESSAGE, an unknown type UNKNOWN_TYPE, and the connection lives on', async () => {
    const c = await connect();
    await c.next('welcome');
    c.ws.send('{"type": "ping"');
    expect(await c.next('error')).toMatchObject({ payload: { code: 'INVALID_MESSAGE' } });
    c.send({ type: 'studio:record', id: 'u1' });
    expect(await c.next('error')).toMatchObject({
      id: 'u1',
      payload: { code: 'UNKNOWN_TYPE', details: { type: 'studio:record' } },
    });
    c.send({ type: 'ping', id: 'still-here' });
    expect(await c.next('pong')).toMatchObject({ id: 'still-here' });
    await c.close();
  });
});
