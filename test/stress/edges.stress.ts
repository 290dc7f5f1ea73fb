import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.js';
import { sleep } from '../helpers/wait.js';
import { startProc, tokenFor, type HardProc } from '../hardening/lib/proc.js';
import { percentile, reportFigures, round, summarize } from '../hardening/lib/stats.js';

/*
 * Issue 13, the socket-level attacks at scale against a real server process with its defaults:
 * silent sockets held open from one address (re-opened as fast as they are closed) and a reconnect
 * storm (one user reconnecting and bursting as fast as it can, 4 at a time), while a legitimate
 * client on another address measures its connect + welcome time and its relay round trip. The
 * behaviour is test/hardening/edges.test.ts; here are the bounds.
 */

const ATTACK_MS = 8_000;
const BURST = 200;
const RATE = 100;
const CANDIDATE = { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0' };

async function connectFrom(proc: HardProc, sub: string, localAddress: string): Promise<TestClient> {
  const c = new TestClient(proc.wsUrl, [], {
    headers: { authorization: `Bearer ${await tokenFor(sub)}` },
    localAddress,
  });
  await c.opened;
  await c.next('welcome');
  return c;
}

/** The legitimate side: `n` connects (upgrade to welcome) and `n` relay round trips, in turn. */
async function measure(
  proc: HardProc,
  a: TestClient,
  b: TestClient,
  until: () => boolean,
): Promise<{ connectMs: number[]; relayMs: number[]; errors: string[] }> {
  const connectMs: number[] = [];
  const relayMs: number[] = [];
  const errors: string[] = [];
  let i = 0;
  do {
    i++;
    const t0 = performance.now();
    try {
      const c = await connectFrom(proc, `probe${i}`, '127.0.0.1');
      connectMs.push(performance.now() - t0);
      await c.close(1000);
    } catch (err) {
      errors.push(`connect: ${String(err)}`);
    }
    // Three round trips per turn, a turn every ~50 ms: well under the 100 messages/s rate limit.
    for (let k = 0; k < 3; k++) {
      const t1 = performance.now();
      // a → b, and b's echo → a: the relay path both ways.
      a.send('ice:candidate', { roomId: 'edges', to: 'legit-b', candidate: CANDIDATE });
      await b.next('ice:candidate', 5_000).catch((err: unknown) => {
        throw new Error(`${String(err)}; a got ${JSON.stringify(a.received)}`);
      });
      b.send('ice:candidate', { roomId: 'edges', to: 'legit-a', candidate: CANDIDATE });
      await a.next('ice:candidate', 5_000).catch((err: unknown) => {
        throw new Error(`${String(err)}; b got ${JSON.stringify(b.received)}`);
      });
      relayMs.push(performance.now() - t1);
    }
    await sleep(50); // pacing: a steady trickle of measurements, not a load of our own
  } while (until());
  for (const c of [a, b]) {
    const e = c.received.filter((m) => m.type === 'error');
    if (e.length) errors.push(JSON.stringify(e));
  }
  return { connectMs, relayMs, errors };
}

/** Silent sockets from `localAddress`, each replaced as soon as the server closes it, until stopped. */
function silentSockets(port: number, localAddress: string, concurrency: number) {
  let running = true;
  let opened = 0;
  let refusedAtAccept = 0;
  let timedOut = 0;
  const open = new Set<Socket>();
  const one = () => {
    if (!running) return;
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const t0 = performance.now();
    let response = '';
    open.add(socket);
    opened++;
    socket.on('data', (b: Buffer) => (response += b.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      open.delete(socket);
      if (response.startsWith('HTTP/1.1 408')) timedOut++;
      else if (response.startsWith('HTTP/1.1 429') && performance.now() - t0 < 1_000) refusedAtAccept++;
      // Each closed socket is replaced 100 ms later (about 2,000 connections a second here): at
      // full speed the loop, which shares this process with the legitimate client, measures itself.
      setTimeout(one, 100);
    });
  };
  for (let i = 0; i < concurrency; i++) one();
  return {
    stats: () => ({ opened, refusedAtAccept, timedOut, openNow: open.size }),
    stop: () => {
      running = false;
      for (const s of open) s.destroy();
    },
  };
}

/** One user reconnecting and bursting, `parallel` at a time, until stopped. */
function reconnectStorm(proc: HardProc, localAddress: string, parallel: number) {
  let running = true;
  const t0 = performance.now();
  let t1 = 0;
  let connections = 0;
  let pongs = 0;
  let refused = 0;
  const loops = Array.from({ length: parallel }, async () => {
    while (running) {
      try {
        const c = await connectFrom(proc, 'storm', localAddress);
        connections++;
        for (let i = 0; i < BURST + 50; i++) c.send('ping', undefined, `s${i}`);
        // Whatever comes back before the server closes it or a short while passes.
        await Promise.race([c.closed, sleep(100)]);
        pongs += c.received.filter((m) => m.type === 'pong').length;
        await c.close(1000);
      } catch {
        refused++;
      }
    }
  });
  return {
    stats: () => ({ connections, pongs, refused, seconds: round((t1 - t0) / 1000, 2) }),
    stop: async () => {
      running = false;
      await Promise.all(loops);
      t1 = performance.now();
    },
  };
}

describe('socket-level attacks beside a legitimate client (defaults)', () => {
  let proc: HardProc;
  let a: TestClient;
  let b: TestClient;
  beforeAll(async () => {
    proc = await startProc({ RESUME_GRACE_MS: '0' });
    a = await connectFrom(proc, 'legit-a', '127.0.0.1');
    b = await connectFrom(proc, 'legit-b', '127.0.0.1');
    for (const c of [a, b])
      expect((await c.request('room:join', { roomId: 'edges' })).type).toBe('room:state');
  });
  afterAll(async () => {
    await a.close(1000);
    await b.close(1000);
    await proc.stop();
  });

  it('silent sockets and a reconnect storm: legitimate connect + welcome and relay stay within bounds', async () => {
    // Baseline.
    let t = performance.now();
    const base = await measure(proc, a, b, () => performance.now() - t < 3_000);

    // The attack: 300 silent sockets kept open from 127.0.0.2 (cap 100 + 4 reserve: the rest are
    // refused at accept and reopened), and the storm from 127.0.0.3.
    const silent = silentSockets(proc.port, '127.0.0.2', 300);
    const storm = reconnectStorm(proc, '127.0.0.3', 4);
    const rssBefore = proc.rss();
    await sleep(500); // let the attack reach its steady state before measuring
    t = performance.now();
    const under = await measure(proc, a, b, () => performance.now() - t < ATTACK_MS);
    const health = await proc.health();
    const rssDuring = proc.rss();
    await storm.stop();
    silent.stop();

    const s = silent.stats();
    const st = storm.stats();
    // Connect + welcome competes with ~2,000 attacking connections a second for the accept queue
    // and the event loop: 3 × the baseline p99 or 250 ms, whichever is larger (measured: p99 ~90 ms,
    // p50 unchanged). The relay path does not: 3 × the baseline p99, floored at 10 ms.
    const connectBound = Math.max(3 * percentile(base.connectMs, 99), 250);
    const relayBound = 3 * Math.max(percentile(base.relayMs, 99), 10);
    // The storm's pongs are bounded by one burst plus the refill over its run, whatever its
    // reconnect count (before the fix: a full burst per connection).
    const pongBound = BURST + RATE * st.seconds;
    reportFigures('edges-attacks', {
      legitConnectMs: { baseline: summarize(base.connectMs), underAttack: summarize(under.connectMs) },
      legitRelayRttMs: { baseline: summarize(base.relayMs), underAttack: summarize(under.relayMs) },
      bounds: {
        connectP99Ms: round(connectBound),
        relayP99Ms: round(relayBound),
        stormPongs: round(pongBound, 0),
      },
      silent: s,
      storm: st,
      health: health.status,
      rssMiB: { before: round(rssBefore / 2 ** 20), during: round(rssDuring / 2 ** 20) },
    });

    expect(under.errors).toEqual([]);
    expect(base.errors).toEqual([]);
    expect(health.status).toBe(200);
    // The attacks ran: sockets beyond the address's cap and share were refused (429) at accept, and the
    // storm reconnected many times.
    expect(s.refusedAtAccept).toBeGreaterThan(0);
    expect(st.connections).toBeGreaterThan(10);
    expect(st.pongs).toBeLessThanOrEqual(pongBound);
    expect(percentile(under.connectMs, 99)).toBeLessThanOrEqual(connectBound);
    expect(percentile(under.relayMs, 99)).toBeLessThanOrEqual(relayBound);
    expect(proc.alive()).toBe(true);
  });
});
