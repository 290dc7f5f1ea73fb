import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config/env.js';
import { loadManifest, StationManifest } from '../../src/server/config/manifest.js';

/** Runs loadConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      production: false,
      port: 3000,
      host: '0.0.0.0',
      logLevel: 'info',
      auth: { alg: 'HS256', clockToleranceS: 5 },
      turn: { uris: [], ttlS: 86_400 },
      limits: {
        maxFrameBytes: 64 * 1024,
        rateLimitPerSec: 100,
        rateLimitBurst: 200,
        maxConnectionsPerIp: 100,
        maxBufferedBytes: 1024 * 1024,
        heartbeatIntervalMs: 30_000,
        heartbeatTimeoutMs: 75_000,
        authTimeoutMs: 5_000,
      },
      resumeGraceMs: 15_000,
      shutdownTimeoutMs: 10_000,
      trustProxy: 0,
      corsOrigin: '*',
    });
    // No secret in development: main.ts generates one. No manifest path: defaults apply.
    expect(c.auth.secret).toBeUndefined();
    expect(c.manifestPath).toBeUndefined();
    expect(c.turn.secret).toBeUndefined();
  });

  it('reads every variable it documents', () => {
    const c = loadConfig({
      PORT: '8443',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      JWT_SECRET: 'a-secret-of-sufficient-length',
      JWT_ISSUER: 'iss',
      JWT_AUDIENCE: 'aud',
      PARLEY_MANIFEST: '/etc/parley/station.json',
      TURN_SECRET: 'turn',
      TURN_URIS: 'turn:a:3478, turns:b:5349,',
      TURN_TTL: '120',
      MAX_FRAME_BYTES: '4096',
      RATE_LIMIT_PER_SEC: '0',
      RATE_LIMIT_BURST: '3',
      MAX_CONNECTIONS_PER_IP: '0',
      HEARTBEAT_INTERVAL_MS: '1000',
      HEARTBEAT_TIMEOUT_MS: '2500',
      RESUME_GRACE_MS: '0',
      TRUST_PROXY: 'yes',
    });
    expect(c).toMatchObject({
      port: 8443,
      host: '127.0.0.1',
      logLevel: 'debug',
      auth: { alg: 'HS256', secret: 'a-secret-of-sufficient-length', issuer: 'iss', audience: 'aud' },
      manifestPath: '/etc/parley/station.json',
      turn: { secret: 'turn', uris: ['turn:a:3478', 'turns:b:5349'], ttlS: 120 },
      limits: {
        maxFrameBytes: 4096,
        rateLimitPerSec: 0,
        rateLimitBurst: 3,
        maxConnectionsPerIp: 0,
        heartbeatIntervalMs: 1000,
        heartbeatTimeoutMs: 2500,
      },
      resumeGraceMs: 0,
      trustProxy: 1,
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', JWT_SECRET: '' }).port).toBe(3000);
  });

  const bad: [string, Record<string, string>, string][] = [
    ['a non-numeric PORT', { PORT: 'abc' }, 'PORT'],
    ['a PORT out of range', { PORT: '70000' }, 'PORT'],
    ['a negative RATE_LIMIT_PER_SEC', { RATE_LIMIT_PER_SEC: '-1' }, 'RATE_LIMIT_PER_SEC'],
    ['a fractional RATE_LIMIT_BURST', { RATE_LIMIT_BURST: '1.5' }, 'RATE_LIMIT_BURST'],
    ['an unsupported JWT_ALG', { JWT_ALG: 'HS512' }, 'JWT_ALG'],
    ['an unknown LOG_LEVEL', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    ['a MAX_FRAME_BYTES below the floor', { MAX_FRAME_BYTES: '10' }, 'MAX_FRAME_BYTES'],
    ['a TURN URI without the turn: scheme', { TURN_SECRET: 's', TURN_URIS: 'http://x' }, 'TURN_URIS'],
    ['TURN_URIS without TURN_SECRET', { TURN_URIS: 'turn:turn.example.org:3478' }, 'TURN_SECRET'],
    [
      'HEARTBEAT_TIMEOUT_MS equal to the interval',
      { HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_TIMEOUT_MS: '1000' },
      'HEARTBEAT_TIMEOUT_MS',
    ],
    [
      'HEARTBEAT_TIMEOUT_MS below the interval',
      { HEARTBEAT_INTERVAL_MS: '5000', HEARTBEAT_TIMEOUT_MS: '1000' },
      'HEARTBEAT_TIMEOUT_MS',
    ],
    ['JWT_ALG=RS256 without JWT_PUBLIC_KEY', { JWT_ALG: 'RS256' }, 'JWT_PUBLIC_KEY'],
    ['a bad TRUST_PROXY', { TRUST_PROXY: 'maybe' }, 'TRUST_PROXY'],
    ['a TRUST_PROXY list with a bad entry', { TRUST_PROXY: '10.0.0.1, 10.0.0.0/33' }, 'TRUST_PROXY'],
    ['a TRUST_PROXY list with a host name', { TRUST_PROXY: 'haproxy.internal' }, 'TRUST_PROXY'],
    ['a short ADMIN_API_KEY', { ADMIN_API_KEY: 'short-key' }, 'ADMIN_API_KEY'],
    [
      'a WEBHOOK_URLS entry that is not http(s)',
      { WEBHOOK_URLS: 'ftp://hooks.example.org/x', WEBHOOK_SECRET: 'a-webhook-secret-0123' },
      'WEBHOOK_URLS',
    ],
    [
      'a WEBHOOK_URLS entry that is not a URL',
      { WEBHOOK_URLS: 'http://ok.example.org/a, not a url', WEBHOOK_SECRET: 'a-webhook-secret-0123' },
      'WEBHOOK_URLS',
    ],
    [
      'WEBHOOK_URLS without WEBHOOK_SECRET',
      { WEBHOOK_URLS: 'https://hooks.example.org/parley' },
      'WEBHOOK_SECRET',
    ],
    [
      'a short WEBHOOK_SECRET',
      { WEBHOOK_URLS: 'https://hooks.example.org/parley', WEBHOOK_SECRET: 'short' },
      'WEBHOOK_SECRET',
    ],
  ];
  for (const [what, env, variable] of bad) {
    it(`refuses ${what}, naming ${variable}`, () => {
      const err = configError(env);
      expect(err.message).toMatch(new RegExp(`(^|\\s)${variable}:`, 'm'));
    });
  }

  it('names the offending value for ordinary variables', () => {
    expect(configError({ PORT: 'abc' }).message).toContain('"abc"');
  });

  it('requires JWT_SECRET in production', () => {
    const err = configError({ NODE_ENV: 'production' });
    expect(err.message).toMatch(/^JWT_SECRET:/);
    expect(
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a-secret-of-sufficient-length' }).production,
    ).toBe(true);
  });

  it('names a too-short JWT_SECRET without echoing it', () => {
    const err = configError({ JWT_SECRET: 'hunter2-short' });
    expect(err.message).toMatch(/JWT_SECRET:/);
    expect(err.message).not.toContain('hunter2');
  });

  it('never echoes a short ADMIN_API_KEY or WEBHOOK_SECRET', () => {
    expect(configError({ ADMIN_API_KEY: 'adm-k3y-x' }).message).not.toContain('adm-k3y-x');
    const err = configError({ WEBHOOK_URLS: 'https://h.example.org/', WEBHOOK_SECRET: 'wh-s3c' });
    expect(err.message).toMatch(/WEBHOOK_SECRET:/);
    expect(err.message).not.toContain('wh-s3c');
  });

  it('reads several WEBHOOK_URLS and the server API key', () => {
    const c = loadConfig({
      WEBHOOK_URLS: 'https://a.example.org/hook, http://127.0.0.1:9000/b',
      WEBHOOK_SECRET: 'a-webhook-secret-0123',
      ADMIN_API_KEY: 'an-admin-api-key-0123',
    });
    expect(c.webhooks.urls).toEqual(['https://a.example.org/hook', 'http://127.0.0.1:9000/b']);
    expect(c.admin.apiKey).toBe('an-admin-api-key-0123');
  });

  it('never echoes TURN_SECRET or JWT_PUBLIC_KEY either', () => {
    const err = configError({
      TURN_SECRET: 'turn-secret-value',
      TURN_URIS: 'http://bad',
      JWT_PUBLIC_KEY: '',
    });
    expect(err.message).toMatch(/TURN_URIS:/);
    expect(err.message).not.toContain('turn-secret-value');
  });
});

describe('loadManifest', () => {
  let dir: string;
  const write = async (name: string, content: string) => {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  };
  const manifestError = async (path: string): Promise<ConfigError> => {
    const err = await loadManifest(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-manifest-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads a valid file, filling in defaults for what it leaves out', async () => {
    const path = await write(
      'valid.json',
      JSON.stringify({
        name: 'Harbour',
        channels: [
          {
            id: 'dispatch',
            name: 'Dispatch',
            mode: 'ptt',
            maxParticipants: 20,
            maxTalkMs: 30_000,
            queue: true,
          },
          { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 5 },
        ],
      }),
    );
    const m = await loadManifest(path);
    expect(m.name).toBe('Harbour');
    expect(m.channels).toEqual([
      { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 20, maxTalkMs: 30_000, queue: true },
      { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 5 },
    ]);
    expect(m.allowAdHocRooms).toBe(true);
    expect(m.stunUrls).toEqual(['stun:stun.l.google.com:19302']);
  });

  it('uses the defaults when the file is missing or no path is set', async () => {
    const defaults = StationManifest.parse({});
    expect(await loadManifest(join(dir, 'does-not-exist.json'))).toEqual(defaults);
    expect(await loadManifest(undefined)).toEqual(defaults);
    expect(defaults.channels.map((c) => c.id)).toEqual(['lobby', 'dispatch', 'field-ops']);
  });

  it('refuses corrupt JSON with a ConfigError naming the file', async () => {
    const path = await write('corrupt.json', '{"name": "Harbour", "channels": [');
    const err = await manifestError(path);
    expect(err.message).toContain('PARLEY_MANIFEST');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/not valid JSON/);
  });

  const invalid: [string, unknown, string][] = [
    [
      'a bad channel mode',
      {
        channels: [
          { id: 'a', name: 'A', mode: 'ptt', maxParticipants: 2 },
          { id: 'b', name: 'B', mode: 'radio', maxParticipants: 2 },
        ],
      },
      'channels[1].mode',
    ],
    [
      'a non-integer maxParticipants',
      { channels: [{ id: 'a', name: 'A', mode: 'ptt', maxParticipants: 2.5 }] },
      'channels[0].maxParticipants',
    ],
    [
      'a bad channel id',
      { channels: [{ id: 'no spaces', name: 'A', mode: 'ptt', maxParticipants: 2 }] },
      'channels[0].id',
    ],
    ['an unknown top-level field', { name: 'X', chanels: [] }, 'chanels'],
    [
      'an unknown channel field',
      { channels: [{ id: 'a', name: 'A', mode: 'ptt', maxParticipants: 2, colour: 'red' }] },
      'colour',
    ],
    [
      'duplicate channel ids',
      {
        channels: [
          { id: 'a', name: 'A', mode: 'ptt', maxParticipants: 2 },
          { id: 'a', name: 'A again', mode: 'conference', maxParticipants: 2 },
        ],
      },
      'channels',
    ],
    ['a STUN URL without the stun: scheme', { stunUrls: ['http://stun.example.org'] }, 'stunUrls[0]'],
    ['a non-boolean allowAdHocRooms', { allowAdHocRooms: 'yes' }, 'allowAdHocRooms'],
    ['a JSON array instead of an object', [], '(root)'],
  ];
  for (const [what, content, field] of invalid) {
    it(`refuses ${what}, naming ${field}`, async () => {
      const path = await write(`invalid-${what.replace(/\W+/g, '-')}.json`, JSON.stringify(content));
      const err = await manifestError(path);
      expect(err.message).toContain(path);
      expect(err.message).toContain(field);
    });
  }

  it('names the channel path precisely, not just the field', async () => {
    const path = await write(
      'precise.json',
      JSON.stringify({
        channels: [
          { id: 'a', name: 'A', mode: 'ptt', maxParticipants: 2 },
          { id: 'b', name: 'B', mode: 'radio', maxParticipants: 2 },
        ],
      }),
    );
    expect((await manifestError(path)).message).toMatch(/^\s*channels\[1\]\.mode: /m);
  });
});
