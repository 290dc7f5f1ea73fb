import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { startProc, tokenFor, type HardProc } from './lib/proc.js';

/*
 * Issue 13, the edges: each attack against a real server process, the fix, and a legitimate
 * client beside it that is unaffected. Attackers use their own loopback addresses (127.0.0.2…);
 * the server listens on 127.0.0.1 only.
 */

interface Raw {
  socket: Socket;
  /** Everything the server wrote (latin1). */
  response: string;
  closed: Promise<void>;
  isClosed(): boolean;
}

/** A TCP connection from `localAddress` that writes `send` (possibly nothing) and then waits. */
async function openRaw(port: number, localAddress: string, send = ''): Promise<Raw> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  let closed = false;
  const raw: Raw = { socket, response: '', closed: Promise.resolve(), isClosed: () => closed };
  socket.on('data', (b: Buffer) => (raw.response += b.toString('latin1')));
  socket.on('error', () => undefined);
  raw.closed = new Promise((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (send) socket.write(send);
  return raw;
}

/** One request on its own socket; everything written back once the server has closed it. */
async function exchange(port: number, localAddress: string, text: string): Promise<string> {
  const raw = await openRaw(port, localAddress, text);
  await raw.closed;
  return raw.response;
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
/** The response body, chunked transfer coding undone. */
function bodyOf(response: string): string {
  const split = response.indexOf('\r\n\r\n');
  let body = response.slice(split + 4);
  if (!/^transfer-encoding: chunked$/im.test(response.slice(0, split))) return body;
  let out = '';
  for (;;) {
    const eol = body.indexOf('\r\n');
    const size = parseInt(body.slice(0, eol), 16);
    if (!size) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    body = body.slice(eol + 2 + size + 2);
  }
}

function request(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body = '',
  keepAlive = false,
): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  if (!keepAlive && !Object.keys(headers).some((h) => h.toLowerCase() === 'connection'))
    lines.push('Connection: close');
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const upgrade = (token: string, extra: Record<string, string> = {}) =>
  request('GET', '/ws', {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    Authorization: `Bearer ${token}`,
    ...extra,
  });

/** A WebSocket client from `localAddress`, authenticated, after `welcome`. */
async function client(proc: HardProc, sub: string, localAddress = '127.0.0.1'): Promise<TestClient> {
  const c = new TestClient(proc.wsUrl, [], {
    headers: { authorization: `Bearer ${await tokenFor(sub)}` },
    localAddress,
  });
  await c.opened;
  await c.next('welcome');
  return c;
}

/**
 * The remote addresses of the "connection opened" lines, once at least `count` of them are written:
 * the server logs asynchronously, so a line may land just after the upgrade's answer.
 */
async function openedRemotes(proc: HardProc, count: number): Promise<unknown[]> {
  const remotes = () =>
    proc
      .logs()
      .filter((l) => l.msg === 'connection opened')
      .map((l) => l.remote);
  await waitUntil(() => remotes().length >= count, `${count} "connection opened" log lines`);
  return remotes();
}

async function ping(c: TestClient): Promise<ServerMessage> {
  return c.request('ping');
}

describe('TRUST_PROXY: the client is the rightmost untrusted X-Forwarded-For entry', () => {
  describe('a list of trusted proxies', () => {
    let proc: HardProc;
    beforeAll(async () => {
      // The proxy is 127.0.0.1 (the test's default source address); 127.0.0.2 is a client that
      // connects directly. Two WebSockets per address.
      proc = await startProc({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8', MAX_CONNECTIONS_PER_IP: '2' });
    });
    afterAll(() => proc.stop());

    it('spoofed leftmost entries do not dodge the per-address limit; another client behind the proxy is unaffected', async () => {
      const held: Raw[] = [];
      // Through the proxy: the client 203.0.113.9 writes a different made-up entry each time, the
      // proxy (and an inner one, 10.0.0.7) append theirs.
      for (let i = 0; i < 2; i++) {
        const raw = await openRaw(
          proc.port,
          '127.0.0.1',
          upgrade(await tokenFor(`spoofer${i}`), { 'X-Forwarded-For': `6.6.6.${i}, 203.0.113.9, 10.0.0.7` }),
        );
        await waitUntil(() => raw.response.includes('\r\n\r\n'), 'the upgrade answer');
        expect(statusOf(raw.response)).toBe(101);
        held.push(raw);
      }
      const third = await exchange(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('spoofer2'), { 'X-Forwarded-For': '1.1.1.1, 203.0.113.9, 10.0.0.7' }),
      );
      expect(statusOf(third)).toBe(429);
      expect(third).toContain('TOO_MANY_CONNECTIONS');
      // The log names the real client, never a made-up entry or the proxy.
      expect(await openedRemotes(proc, 2)).toEqual(['203.0.113.9', '203.0.113.9']);

      // Another client behind the same proxy connects and talks.
      const other = await openRaw(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('legit'), { 'X-Forwarded-For': '203.0.113.9, 198.51.100.4' }),
      );
      await waitUntil(() => other.response.includes('\r\n\r\n'), 'the upgrade answer');
      expect(statusOf(other.response)).toBe(101);
      expect((await openedRemotes(proc, 3)).at(-1)).toBe('198.51.100.4');
      for (const r of [...held, other]) r.socket.destroy();
    });

    it('a client that is not a trusted proxy cannot pick its address at all', async () => {
      // 127.0.0.2 is not in TRUST_PROXY: its X-Forwarded-For is ignored, its socket address counts.
      const before = (await openedRemotes(proc, 0)).length;
      const held: Raw[] = [];
      for (let i = 0; i < 2; i++) {
        const raw = await openRaw(
          proc.port,
          '127.0.0.2',
          upgrade(await tokenFor(`direct${i}`), { 'X-Forwarded-For': `198.51.100.${50 + i}` }),
        );
        await waitUntil(() => raw.response.includes('\r\n\r\n'), 'the upgrade answer');
        expect(statusOf(raw.response)).toBe(101);
        held.push(raw);
      }
      const over = await exchange(
        proc.port,
        '127.0.0.2',
        upgrade(await tokenFor('direct2'), { 'X-Forwarded-For': '198.51.100.99' }),
      );
      expect(statusOf(over)).toBe(429);
      const remotes = await openedRemotes(proc, before + 2);
      expect(remotes.filter((r) => r === '127.0.0.2')).toHaveLength(2);
      expect(remotes.some((r) => String(r).startsWith('198.51.100.5'))).toBe(false);
      // A legitimate direct client from elsewhere is unaffected.
      const calm = await client(proc, 'calm', '127.0.0.3');
      expect((await ping(calm)).type).toBe('pong');
      await calm.close(1000);
      await openedRemotes(proc, before + 3); // the next test counts from here
      for (const r of held) r.socket.destroy();
    });

    it('a proxy that appends ip:port (a new source port per connection) does not make each connection a new address', async () => {
      // Azure Application Gateway and IIS ARR write "client:port"; the inner proxy 10.0.0.7 writes
      // its own entry with a port too and must still be recognised as trusted.
      const before = (await openedRemotes(proc, 0)).length;
      const held: Raw[] = [];
      for (let i = 0; i < 2; i++) {
        const raw = await openRaw(
          proc.port,
          '127.0.0.1',
          upgrade(await tokenFor(`ported${i}`), {
            'X-Forwarded-For': `203.0.113.20:${50_000 + i}, 10.0.0.7:8080`,
          }),
        );
        await waitUntil(() => raw.response.includes('\r\n\r\n'), 'the upgrade answer');
        expect(statusOf(raw.response)).toBe(101);
        held.push(raw);
      }
      const over = await exchange(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('ported2'), {
          'X-Forwarded-For': '[::ffff:203.0.113.20]:50002, 10.0.0.7:8080',
        }),
      );
      expect(statusOf(over)).toBe(429);
      expect(over).toContain('TOO_MANY_CONNECTIONS');
      const remotes = await openedRemotes(proc, before + 2);
      expect(remotes.slice(-2)).toEqual(['203.0.113.20', '203.0.113.20']);

      // Another client behind the same proxies, also written with a port, connects and talks.
      const other = await openRaw(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('ported-legit'), { 'X-Forwarded-For': '198.51.100.30:40000, 10.0.0.7:8080' }),
      );
      await waitUntil(() => other.response.includes('\r\n\r\n'), 'the upgrade answer');
      expect(statusOf(other.response)).toBe(101);
      expect((await openedRemotes(proc, before + 3)).at(-1)).toBe('198.51.100.30');
      for (const r of [...held, other]) r.socket.destroy();
    });
  });

  it('a hop count (TRUST_PROXY=2): the entry left of the two proxies, whatever the client wrote before it', async () => {
    const proc = await startProc({ TRUST_PROXY: '2', MAX_CONNECTIONS_PER_IP: '1' });
    try {
      const first = await openRaw(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('a'), { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9, 10.0.0.2' }),
      );
      await waitUntil(() => first.response.includes('\r\n\r\n'), 'the upgrade answer');
      expect(statusOf(first.response)).toBe(101);
      const second = await exchange(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('b'), { 'X-Forwarded-For': '7.7.7.7, 203.0.113.9, 10.0.0.2' }),
      );
      expect(statusOf(second)).toBe(429);
      const other = await openRaw(
        proc.port,
        '127.0.0.1',
        upgrade(await tokenFor('c'), { 'X-Forwarded-For': '203.0.113.9, 198.51.100.4, 10.0.0.2' }),
      );
      await waitUntil(() => other.response.includes('\r\n\r\n'), 'the upgrade answer');
      expect(statusOf(other.response)).toBe(101);
      other.socket.destroy();
      expect(await openedRemotes(proc, 2)).toEqual(['203.0.113.9', '198.51.100.4']);
      first.socket.destroy();
    } finally {
      await proc.stop();
    }
  });
});

describe('rate limits survive reconnects', () => {
  let proc: HardProc;
  const BURST = 20;
  beforeAll(async () => {
    // A slow refill (1 message per second), so that what a reconnect would have handed out shows.
    proc = await startProc({ RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: String(BURST) });
  });
  afterAll(() => proc.stop());

  /** Sends `n` pings at once; counts pongs and RATE_LIMITED errors once all answers are in or the socket closed. */
  async function burst(c: TestClient, n: number): Promise<{ pongs: number; limited: number }> {
    const before = c.received.length;
    for (let i = 0; i < n; i++) c.send('ping', undefined, `b${i}`);
    // Every ping is answered with a pong, or (after the first refusal) dropped: wait for the pongs
    // and one refusal, or the close.
    await waitUntil(
      () => {
        const got = c.received.slice(before);
        const pongs = got.filter((m) => m.type === 'pong').length;
        const limited = got.some((m) => m.type === 'error');
        return pongs === n || limited || c.ws.readyState !== c.ws.OPEN;
      },
      'the answers',
      5_000,
    );
    const got = c.received.slice(before);
    return {
      pongs: got.filter((m) => m.type === 'pong').length,
      limited: got.filter(
        (m) => m.type === 'error' && (m.payload as { code?: string }).code === 'RATE_LIMITED',
      ).length,
    };
  }

  it('a user who reconnects gets no fresh burst; another user on the same address keeps theirs', async () => {
    const first = await client(proc, 'mallory', '127.0.0.2');
    const t0 = performance.now();
    const flood = await burst(first, BURST + 5);
    expect(flood.pongs).toBeLessThanOrEqual(BURST + 1);
    expect(flood.limited).toBe(1);
    await first.close(1000);

    // Reconnect (a new connection, a new session) and try again.
    const again = await client(proc, 'mallory', '127.0.0.2');
    const after = await burst(again, BURST);
    const elapsedS = (performance.now() - t0) / 1000;
    // Before the fix the new connection had a fresh bucket: BURST pongs. Now only what refilled
    // since the flood (1 per second) gets through, and the rest is refused.
    expect(after.pongs).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    expect(after.pongs).toBeLessThan(BURST);
    expect(after.limited).toBe(1);
    await again.close(1000);

    // A legitimate user on the same address, and one elsewhere: their whole burst is answered.
    for (const [sub, address] of [
      ['alice', '127.0.0.2'],
      ['bob', '127.0.0.1'],
    ] as const) {
      const c = await client(proc, sub, address);
      expect(await burst(c, BURST)).toEqual({ pongs: BURST, limited: 0 });
      await c.close(1000);
    }
  });

  it('before authentication the address holds the limit: reconnecting unauthenticated does not reset it', async () => {
    const open = async () => {
      const c = new TestClient(proc.wsUrl, [], { localAddress: '127.0.0.4' });
      await c.opened;
      return c;
    };
    const t0 = performance.now();
    const first = await open();
    // Unauthenticated: each message is answered UNAUTHORIZED until the bucket is empty.
    for (let i = 0; i < BURST + 3; i++) first.send('ping', undefined, `u${i}`);
    await waitUntil(
      () =>
        first.received.some(
          (m) => m.type === 'error' && (m.payload as { code?: string }).code === 'RATE_LIMITED',
        ),
      'RATE_LIMITED',
    );
    await first.close(1000);
    const second = await open();
    second.send('ping', undefined, 'again');
    const reply = await second.waitFor((m) => m.correlationId === 'again' || m.type === 'error');
    // Unless a token refilled meanwhile (one per second), the first message is refused at once.
    if ((performance.now() - t0) / 1000 < 1) {
      expect(reply).toMatchObject({ type: 'error', payload: { code: 'RATE_LIMITED' } });
    }
    await second.close(1000);
    // Another address authenticates in-band as usual.
    const other = new TestClient(proc.wsUrl, [], { localAddress: '127.0.0.5' });
    await other.opened;
    const auth = await other.request('auth:request', { token: await tokenFor('carol') });
    expect(auth.type).toBe('auth:response');
    await other.close(1000);
  });
});

describe('development tokens: a re-mint is bound to the secret of the first mint', () => {
  let proc: HardProc;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-dev-'));
    // No JWT_SECRET: the server runs in development mode with a generated secret.
    proc = await startProc({ JWT_SECRET: '', PARLEY_DEV_SECRET_FILE: join(dir, 'dev-secret') });
  });
  afterAll(async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Minted {
    token: string;
    userId: string;
    name: string;
    expiresAt: number;
    secret: string;
  }
  const mint = async (q: string) => {
    const res = await fetch(`${proc.httpUrl}/api/dev-token?${q}`);
    return { status: res.status, body: (await res.json()) as Minted & { error?: { code: string } } };
  };

  it('another user’s public id alone, or with a wrong secret, mints nothing; the owner re-mints', async () => {
    const alice = (await mint('name=Alice')).body;
    expect(alice.userId).toMatch(/^dev-alice-/);
    expect(alice.secret).toBeTruthy();
    const aliceClient = new TestClient(proc.wsUrl, [], {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    await aliceClient.opened;
    await aliceClient.next('welcome');

    // Mallory sees Alice's id in presence and asks for a token for it.
    const bob = (await mint('name=Bob')).body;
    for (const q of [
      `name=Mallory&id=${alice.userId}`,
      `name=Mallory&id=${alice.userId}&secret=`,
      `name=Mallory&id=${alice.userId}&secret=${'A'.repeat(43)}`,
      `name=Mallory&id=${alice.userId}&secret=${bob.secret}`,
    ]) {
      const refused = await mint(q);
      expect(refused.status, q).toBe(403);
      expect(refused.body.error?.code, q).toBe('FORBIDDEN');
      expect(refused.body.token, q).toBeUndefined();
    }
    // Alice, holding her secret, refreshes her token and stays herself.
    const fresh = await mint(`name=Alice&id=${alice.userId}&secret=${alice.secret}`);
    expect(fresh.status).toBe(200);
    expect(fresh.body.userId).toBe(alice.userId);
    // Her live connection was never disturbed.
    expect((await ping(aliceClient)).type).toBe('pong');
    await aliceClient.close(1000);
    // Neither secrets nor tokens reach the log.
    const logText = JSON.stringify(proc.logs());
    for (const s of [alice.secret, alice.token, fresh.body.token]) expect(logText).not.toContain(s);
  });

  it('the secret outlives a restart of the server (derived from the development key, not stored)', async () => {
    const first = (await mint('name=Dana')).body;
    await proc.stop();
    proc = await startProc({ JWT_SECRET: '', PARLEY_DEV_SECRET_FILE: join(dir, 'dev-secret') });
    const again = await mint(`name=Dana&id=${first.userId}&secret=${first.secret}`);
    expect(again.status).toBe(200);
    expect(again.body.userId).toBe(first.userId);
  });
});

describe('upgrades on paths other than /ws are served as plain HTTP', () => {
  let proc: HardProc;
  beforeAll(async () => {
    proc = await startProc({});
  });
  afterAll(() => proc.stop());

  it('GET /health with Upgrade: h2c answers the health JSON; other paths answer as they would without it', async () => {
    const h2c = {
      Connection: 'Upgrade, HTTP2-Settings',
      Upgrade: 'h2c',
      'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA',
    };
    const health = await exchange(proc.port, '127.0.0.2', request('GET', '/health', h2c));
    expect(statusOf(health)).toBe(200);
    expect(JSON.parse(bodyOf(health))).toMatchObject({ status: 'ok' });
    const head = await exchange(proc.port, '127.0.0.2', request('HEAD', '/health', h2c));
    expect(statusOf(head)).toBe(200);
    expect(bodyOf(head)).toBe('');
    const station = await exchange(proc.port, '127.0.0.2', request('GET', '/api/station', h2c));
    expect(statusOf(station)).toBe(200);
    expect(JSON.parse(bodyOf(station))).toHaveProperty('channels');
    // A WebSocket upgrade elsewhere than /ws: the plain answer for that path.
    const elsewhere = await exchange(
      proc.port,
      '127.0.0.2',
      request('GET', '/nope', { Connection: 'Upgrade', Upgrade: 'websocket' }),
    );
    expect(statusOf(elsewhere)).toBe(404);
    expect(JSON.parse(bodyOf(elsewhere))).toMatchObject({ error: { code: 'NOT_FOUND' } });
    // A request with a body (not read: Node ends an upgrade request at its headers) is answered
    // for its method like any other.
    const post = await exchange(proc.port, '127.0.0.2', request('POST', '/health', h2c, '{"x":1}'));
    expect(statusOf(post)).toBe(405);
    // /ws upgrades are WebSockets as before.
    const c = await client(proc, 'calm');
    expect((await ping(c)).type).toBe('pong');
    await c.close(1000);
  });
});

describe('socket guard: an address at its cap takes neither the /health reserve nor others’ share', () => {
  let proc: HardProc;
  const DEADLINE_MS = 5_000;
  beforeAll(async () => {
    proc = await startProc({
      MAX_CONNECTIONS_PER_IP: '5',
      MAX_CONNECTIONS: '30',
      UPGRADE_HEADERS_TIMEOUT_MS: String(DEADLINE_MS),
    });
  });
  afterAll(() => proc.stop());

  it('kept-alive sockets stay counted: an address cannot grow past its cap by being served', async () => {
    // Five sockets, each served once and kept alive (a request now and then would keep them).
    const kept = await Promise.all(
      Array.from({ length: 5 }, () =>
        openRaw(proc.port, '127.0.0.2', request('GET', '/health', {}, '', true)),
      ),
    );
    await waitUntil(() => kept.every((k) => k.response.includes('"status"')), 'the five answers');
    expect(kept.every((k) => !k.isClosed())).toBe(true);
    // A sixth: over the address's cap (before the fix it was admitted, and so on up to MAX_CONNECTIONS).
    const sixth = await exchange(proc.port, '127.0.0.2', request('GET', '/metrics'));
    expect(statusOf(sixth)).toBe(429);
    // Its health check is still answered; another address is served in full.
    expect(statusOf(await exchange(proc.port, '127.0.0.2', request('GET', '/health')))).toBe(200);
    expect(statusOf(await exchange(proc.port, '127.0.0.3', request('GET', '/metrics')))).toBe(200);
    const c = await client(proc, 'calm');
    expect((await ping(c)).type).toBe('pong');
    await c.close(1000);
    for (const k of kept) k.socket.destroy();
  });

  it('at its cap, an address holds at most 4 reserve sockets; the rest are refused at accept, and others’ health checks are answered', async () => {
    await waitUntil(async () => (await proc.health()).body.connections === 0, 'quiet');
    const atCap = await Promise.all(Array.from({ length: 5 }, () => openRaw(proc.port, '127.0.0.4')));
    const extra = await Promise.all(Array.from({ length: 12 }, () => openRaw(proc.port, '127.0.0.4')));
    // Those beyond the address's share of the reserve are refused at once (429, before any
    // request) and closed; only 4 stay, to answer a health check.
    await waitUntil(() => extra.filter((s) => s.isClosed()).length === 8, 'eight refused at accept');
    for (const s of extra.filter((x) => x.isClosed())) {
      expect(statusOf(s.response)).toBe(429);
      expect(s.response).toContain('TOO_MANY_CONNECTIONS');
    }

    // Fill the node's cap from other addresses (5 each): 5 + 25 = 30.
    const others = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'];
    const filler = await Promise.all(
      others.flatMap((a) => Array.from({ length: 5 }, () => openRaw(proc.port, a))),
    );
    // A load balancer's health check (yet another address) is answered from the reserve, which
    // the address at its cap could not take: before the fix its 12 extra sockets could hold 12 of
    // the 16, and with two such addresses nothing was left.
    const second = await Promise.all(Array.from({ length: 12 }, () => openRaw(proc.port, '127.0.0.5')));
    await waitUntil(() => second.filter((s) => s.isClosed()).length === 8, 'eight more refused at accept');
    for (const s of second.filter((x) => x.isClosed())) expect(statusOf(s.response)).toBe(503);
    const lb = await exchange(proc.port, '127.0.0.20', request('GET', '/health'));
    expect(statusOf(lb)).toBe(200);
    const refused = await exchange(proc.port, '127.0.0.20', request('GET', '/metrics'));
    expect(statusOf(refused)).toBe(503);

    // Everything silent is cut at the deadline (408) and the node serves again.
    const all = [...atCap, ...extra, ...filler, ...second];
    await Promise.all(all.map((s) => s.closed));
    const statuses = [...extra, ...second].map((s) => statusOf(s.response));
    // Each address's 4 reserve sockets lived to the deadline; the rest were refused at accept.
    expect(statuses.filter((x) => x === 408)).toHaveLength(8);
    expect(statuses.filter((x) => x === 429)).toHaveLength(8);
    expect(statuses.filter((x) => x === 503)).toHaveLength(8);
    const c = await client(proc, 'after');
    expect((await ping(c)).type).toBe('pong');
    await c.close(1000);
  });
});
