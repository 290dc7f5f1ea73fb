/**
 * The mandated-work baselines (bench/baselines/mandated-relay.ts, and lean-relay.ts, the same work
 * written inline) as the relay bench runs them: each its
 * own process, real WebSockets, clients named with `?id=` as the generator names them. It must do
 * the work issue 14 mandates, or the bench's comparison with it says nothing: relay a valid call
 * message with the sender set by the server, refuse an invalid one, and rate-limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { openClient } from '../../bench/lib/clients.js';
import { frameFor } from '../../bench/lib/payloads.js';
import { startServerProc, type ServerProc } from '../../bench/lib/servers.js';

interface Inbox {
  next(): Promise<Record<string, unknown>>;
  closed: Promise<number>;
}

/** The frames a client receives, in order, parsed; and its close code. */
function inbox(ws: WebSocket): Inbox {
  const frames: Record<string, unknown>[] = [];
  const waiting: ((f: Record<string, unknown>) => void)[] = [];
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString()) as Record<string, unknown>;
    const w = waiting.shift();
    if (w) w(f);
    else frames.push(f);
  });
  return {
    next: () => {
      const f = frames.shift();
      return f ? Promise.resolve(f) : new Promise((resolve) => waiting.push(resolve));
    },
    closed: new Promise((resolve) => ws.once('close', (code: number) => resolve(code))),
  };
}

let server: ServerProc | null = null;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await server?.stop();
  server = null;
});

/** The two baselines that do issue 14's mandated work: with Parley's modules, and inline (lean). */
const BASELINES = [
  { name: 'mandated-relay', script: 'bench/baselines/mandated-relay.ts', env: {} },
  { name: 'lean-relay', script: 'bench/baselines/lean-relay.ts', env: {} },
  // Every piece of Parley's put back (LEAN_WITH): the same behaviour through Parley's modules.
  {
    name: 'lean-relay with Parley’s pieces',
    script: 'bench/baselines/lean-relay.ts',
    env: { LEAN_WITH: 'codec,metrics,bucket,prebuilt' },
  },
  // The metrics' halves apart, and the GC observer.
  {
    name: 'lean-relay with the tallies, the process metrics and a GC observer',
    script: 'bench/baselines/lean-relay.ts',
    env: { LEAN_WITH: 'tallies,defaults,gc' },
  },
] as const;

async function start(
  env: Record<string, string>,
  baseline: { script: string; env: Record<string, string> } = BASELINES[0],
): Promise<ServerProc> {
  server = await startServerProc('mandated-relay-test', baseline.script, {
    env: { ...baseline.env, ...env },
    timeoutMs: 45_000,
  });
  return server;
}

async function client(s: ServerProc, id: string): Promise<{ ws: WebSocket; in: Inbox }> {
  const ws = await openClient({ protocol: 'mandated', url: s.url('/ws'), id });
  sockets.push(ws);
  return { ws, in: inbox(ws) };
}

const ice = (to: string, flow = 0) => frameFor('mandated', 'ice', to, flow);
const offer = (to: string, flow = 0) => frameFor('mandated', 'sdp', to, flow);

describe.each(BASELINES)('$name baseline', (baseline) => {
  it('relays a valid call:ice-candidate with the sender set by the server, shaped as Parley’s relayed message', async () => {
    const s = await start({ RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000' }, baseline);
    const a = await client(s, 'alice');
    const b = await client(s, 'bob');
    a.ws.send(ice('bob'));
    const got = await b.in.next();
    const sent = JSON.parse(ice('bob')) as { payload: Record<string, unknown> };
    expect(got.type).toBe('call:ice-candidate');
    expect(typeof got.timestamp).toBe('number');
    // The client's payload minus its addressing, plus the server's sender (server-messages.ts, relayed()).
    expect(got.payload).toEqual({
      callId: sent.payload.callId,
      candidate: sent.payload.candidate,
      senderId: 'alice',
      senderName: 'User alice',
    });

    // A forged sender is not believed: the server's sender replaces it (the re-encoding path).
    const forged = JSON.parse(ice('bob')) as { payload: Record<string, unknown> };
    forged.payload.senderId = 'mallory';
    a.ws.send(JSON.stringify(forged));
    const second = await b.in.next();
    expect((second.payload as Record<string, unknown>).senderId).toBe('alice');
  });

  it('answers an invalid frame with Parley’s error and relays nothing of it', async () => {
    const s = await start({ RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000' }, baseline);
    const a = await client(s, 'alice');
    const b = await client(s, 'bob');
    const noCallId = JSON.parse(ice('bob')) as { payload: Record<string, unknown> };
    delete noCallId.payload.callId;
    a.ws.send(JSON.stringify(noCallId));
    const err = await a.in.next();
    expect(err.type).toBe('error');
    expect((err.payload as { code: string }).code).toBe('INVALID_MESSAGE');
    a.ws.send('{"type":"call:ice-candidate","payload":');
    expect(((await a.in.next()).payload as { code: string }).code).toBe('INVALID_MESSAGE');
    a.ws.send(JSON.stringify({ type: 'call:nonsense', payload: {} }));
    expect(((await a.in.next()).payload as { code: string }).code).toBe('UNKNOWN_TYPE');
    // Nothing of those reached bob: the next frame he gets is the valid one sent after them.
    a.ws.send(ice('bob', 7));
    const got = await b.in.next();
    expect((got.payload as { callId: string }).callId).toBe('call-7');
  });

  it('rate-limits per connection: RATE_LIMITED once, then a 1008 close for a client that keeps sending', async () => {
    const s = await start({ RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '3' }, baseline);
    const a = await client(s, 'alice');
    const b = await client(s, 'bob');
    for (let i = 0; i < 6; i++) a.ws.send(ice('bob', i));
    for (let i = 0; i < 3; i++)
      expect(((await b.in.next()).payload as { callId: string }).callId).toBe(`call-${i}`);
    const err = await a.in.next();
    expect((err.payload as { code: string }).code).toBe('RATE_LIMITED');
    expect(await a.in.closed).toBe(1008);
  });
});

describe('lean-relay baseline', () => {
  it('refuses to start with a piece LEAN_WITH does not know', async () => {
    await expect(
      start({ LEAN_WITH: 'codec,telepathy' }, { script: 'bench/baselines/lean-relay.ts', env: {} }),
    ).rejects.toThrow(/LEAN_WITH: no piece "telepathy"/);
  });
});

describe('mandated-relay baseline', () => {
  it('MANDATED_CALL_CHECK=1: candidates only to the peer of a call an offer opened', async () => {
    const s = await start({
      RATE_LIMIT_PER_SEC: '1000000',
      RATE_LIMIT_BURST: '1000000',
      MANDATED_CALL_CHECK: '1',
    });
    const a = await client(s, 'alice');
    const b = await client(s, 'bob');
    a.ws.send(ice('bob', 1)); // no call-1 yet: dropped silently
    const answer = JSON.parse(offer('bob', 1)) as { type: string };
    answer.type = 'call:answer';
    a.ws.send(JSON.stringify(answer)); // no call-1 yet: refused
    expect(((await a.in.next()).payload as { code: string }).code).toBe('CALL_NOT_FOUND');
    a.ws.send(offer('bob', 1));
    const rung = await b.in.next();
    expect(rung.type).toBe('call:offer');
    b.ws.send(ice('alice', 1)); // the callee's candidates go back to the caller
    expect((await a.in.next()).type).toBe('call:ice-candidate');
    const hangup = JSON.stringify({ type: 'call:hangup', payload: { recipientId: 'bob', callId: 'call-1' } });
    a.ws.send(hangup);
    expect((await b.in.next()).type).toBe('call:hangup');
    a.ws.send(ice('bob', 1)); // the call ended: dropped
    a.ws.send(offer('bob', 2));
    expect(((await b.in.next()).payload as { callId: string }).callId).toBe('call-2');
  });
});
