import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import type { SfuHealth } from '../../src/server/http/health.js';
import { connectAs, type TestClient } from '../helpers/client.js';
import { expectReply } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Issue 13, High 2: rooms were placed on workers by consumer count only, so idle transports took
 * every port of one worker's slice of the RTC range while the other's stayed unused, and /health
 * still said ok. Two real workers, 8 ports each (RTC_MIN_PORT..RTC_MAX_PORT = 16 ports).
 *
 * The range is below both the default RTC range (40000-49999, which other suites' servers share
 * in the same namespace, as do media-across-nodes' 42000-43999) and the kernel's ephemeral ports
 * (32768+): every one of its 16 ports must be free for the counts below to hold.
 */

const PORTS_PER_WORKER = 8;

describe('worker placement counts transports and ports, and /health reports a degraded SFU', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const connect = (sub: string) => connectAs(srv, clients, sub);

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startServer(
      { MEDIASOUP_WORKERS: '2', RTC_MIN_PORT: '30100', RTC_MAX_PORT: '30115', LOG_LEVEL: 'info' },
      {
        channels: ['a', 'b', 'c'].map((id) => ({ id, name: id, mode: 'conference', maxParticipants: 50 })),
      },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close(1000)));
    await srv.close();
  });

  async function health(): Promise<{ status: string; workers: number; sfu: SfuHealth | null }> {
    const res = await fetch(`${srv.httpUrl}/health`);
    expect(res.status).toBe(200);
    return (await res.json()) as { status: string; workers: number; sfu: SfuHealth | null };
  }

  const create = (c: TestClient, roomId: string, direction: 'send' | 'recv'): Promise<ServerMessage> =>
    c.request('transport:create', { roomId, direction });

  it('fills one worker’s ports with send transports; new rooms and receivers go to the other; then refuses clearly', async () => {
    const { pool } = srv.server.internalsForTesting;
    expect(pool.workers().map((w) => w.ports)).toEqual([PORTS_PER_WORKER, PORTS_PER_WORKER]);
    expect((await health()).sfu).toEqual({
      status: 'ok',
      exhaustedWorkers: 0,
      transports: 0,
      freePorts: 2 * PORTS_PER_WORKER,
      consumers: 0,
    });

    // Eight users each take a send transport in room a: its primary worker's slice is used up.
    const hogs: TestClient[] = [];
    for (let i = 0; i < PORTS_PER_WORKER; i++) {
      const c = await connect(`sender-${i}`);
      hogs.push(c);
      expectReply(await c.request('room:join', { roomId: 'a' }), 'room:state');
      expectReply(await create(c, 'a', 'send'), 'transport:created');
    }
    const [full, free] = [...pool.workers()].sort((x, y) => y.transports - x.transports);
    expect(full.transports).toBe(PORTS_PER_WORKER);
    expect(free.transports).toBe(0);

    // Its own field says so; the public fields are unchanged (status ok: the node still serves).
    const degraded = await health();
    expect(degraded.status).toBe('ok');
    expect(degraded.workers).toBe(2);
    expect(degraded.sfu).toMatchObject({
      status: 'degraded',
      exhaustedWorkers: 1,
      freePorts: PORTS_PER_WORKER,
    });

    // One more sender in room a: a clear CAPACITY_EXCEEDED, not mediasoup's "no more available ports".
    const late = await connect('late');
    expectReply(await late.request('room:join', { roomId: 'a' }), 'room:state');
    const refused = await create(late, 'a', 'send');
    expect(refused.type === 'error' && refused.payload.code).toBe('CAPACITY_EXCEEDED');
    expect(full.transports).toBe(PORTS_PER_WORKER);

    // A receiver in room a spills onto the other worker (a router there, fed by pipeToRouter).
    expectReply(await create(late, 'a', 'recv'), 'transport:created');
    expect(free.transports).toBe(1);

    // A new room goes to the worker with free ports, although both carry no consumers: with
    // placement by consumers alone it landed on the full one and nobody could create a transport.
    const other = await connect('other');
    expectReply(await other.request('room:join', { roomId: 'b' }), 'room:state');
    expectReply(await create(other, 'b', 'send'), 'transport:created');
    expectReply(await create(other, 'b', 'recv'), 'transport:created');
    expect(free.transports).toBe(3);
    expect(full.transports).toBe(PORTS_PER_WORKER);
    expect(srv.logText()).not.toContain('no more available ports');

    // Use up the other worker too: the SFU is exhausted, still without touching `status`.
    const fillers: TestClient[] = [];
    for (let i = 0; free.transports < PORTS_PER_WORKER; i++) {
      const c = await connect(`filler-${i}`);
      fillers.push(c);
      expectReply(await c.request('room:join', { roomId: 'b' }), 'room:state');
      expectReply(await create(c, 'b', 'send'), 'transport:created');
    }
    const exhausted = await health();
    expect(exhausted.status).toBe('ok');
    expect(exhausted.sfu).toMatchObject({ status: 'exhausted', exhaustedWorkers: 2, freePorts: 0 });
    const nothing = await create(other, 'b', 'recv');
    expect(nothing.type === 'error' && nothing.payload.code).toBe('CAPACITY_EXCEEDED');

    // The ports come back when their holders leave, and so does a healthy SFU.
    for (const c of [...hogs, ...fillers]) await c.close(1000);
    await waitUntil(() => full.transports === 0, 'the first worker’s transports to close');
    expect((await health()).sfu?.status).toBe('ok');
    expectReply(await create(late, 'a', 'send'), 'transport:created');
  });
});
