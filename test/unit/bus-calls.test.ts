/**
 * BusCalls on a fake clock: the one bookkeeping of calls to another node that wait for a reply
 * (media RPC, server API RPC). Each call settles once: from its reply, its deadline, or a failed
 * publish; close() fails those still waiting and leaves no timer.
 */
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/server/errors.js';
import { BusCalls } from '../../src/server/wire/bus-calls.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A call whose published id is kept, so the test can answer it the way the bus would. */
function start(calls: BusCalls, timeoutMs = 5_000) {
  let id = '';
  const outcome = calls
    .call<unknown>(
      (published) => {
        id = published;
        return Promise.resolve();
      },
      timeoutMs,
      'node-2',
    )
    .then(
      (value) => ({ ok: true as const, value }),
      (err: unknown) => ({ ok: false as const, err }),
    );
  return { id: () => id, outcome };
}

async function failure(p: Promise<{ ok: boolean; err?: unknown }>) {
  const r = await p;
  expect(r.ok).toBe(false);
  const err = r.err as ParleyError;
  expect(err).toBeInstanceOf(ParleyError);
  return { code: err.code, message: err.message };
}

describe('BusCalls on a fake clock', () => {
  it('a reply settles its call once; a late or unknown reply is ignored', async () => {
    const clock = new FakeClock();
    const calls = new BusCalls(clock);
    const a = start(calls);
    const b = start(calls);
    expect(a.id()).not.toBe(b.id());
    calls.settle({ id: b.id(), ok: true, result: { n: 2 } });
    calls.settle({ id: a.id(), ok: false, code: 'NOT_IN_ROOM', message: 'you are not in room "x"' });
    calls.settle({ id: a.id(), ok: true, result: 'late' });
    calls.settle({ id: 'nobody', ok: true, result: null });
    expect(await b.outcome).toEqual({ ok: true, value: { n: 2 } });
    expect(await failure(a.outcome)).toEqual({ code: 'NOT_IN_ROOM', message: 'you are not in room "x"' });
    expect(clock.pending).toBe(0);
  });

  it('an error code this node does not know becomes INTERNAL', async () => {
    const calls = new BusCalls(new FakeClock());
    const a = start(calls);
    calls.settle({ id: a.id(), ok: false, code: 'FROM_A_NEWER_NODE' as 'INTERNAL', message: 'm' });
    expect((await failure(a.outcome)).code).toBe('INTERNAL');
  });

  it('times out at its deadline, not a millisecond before, with SERVICE_UNAVAILABLE naming the other side', async () => {
    const clock = new FakeClock();
    const calls = new BusCalls(clock);
    const a = start(calls, 5_000);
    let settled = false;
    void a.outcome.then(() => (settled = true));
    await clock.advance(4_999);
    expect(settled).toBe(false);
    await clock.advance(1);
    expect(await failure(a.outcome)).toEqual({
      code: 'SERVICE_UNAVAILABLE',
      message: 'node-2 did not answer',
    });
    // The reply that comes after the deadline changes nothing.
    calls.settle({ id: a.id(), ok: true, result: 'late' });
    expect(clock.pending).toBe(0);
  });

  it('a publish that fails settles the call with the catalogue’s words, not the bus’s', async () => {
    const clock = new FakeClock();
    const calls = new BusCalls(clock);
    const outcome = calls.call(
      () => Promise.reject(new Error('ECONNREFUSED 127.0.0.1:6379')),
      5_000,
      'node-2',
    );
    await expect(outcome).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      message: 'the cluster bus is unavailable',
    });
    expect(clock.pending).toBe(0);
  });

  it('close() fails every call still waiting, clears their timers, refuses new calls, and is idempotent', async () => {
    const clock = new FakeClock();
    const calls = new BusCalls(clock);
    const a = start(calls);
    const b = start(calls);
    expect(clock.pending).toBe(2);
    calls.close();
    calls.close();
    calls.close();
    expect(clock.pending).toBe(0);
    const shuttingDown = { code: 'SERVICE_UNAVAILABLE', message: 'server shutting down' };
    expect(await failure(a.outcome)).toEqual(shuttingDown);
    expect(await failure(b.outcome)).toEqual(shuttingDown);
    let published = false;
    const late = calls.call(
      () => {
        published = true;
        return Promise.resolve();
      },
      5_000,
      'node-2',
    );
    await expect(late).rejects.toMatchObject(shuttingDown);
    expect(published).toBe(false);
    expect(clock.pending).toBe(0);
  });
});
