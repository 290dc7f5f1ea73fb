import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { SessionManager, type EndReason } from '../../src/server/sessions/session-manager.js';
import { MemoryState } from '../../src/server/state/memory/memory-state.js';
import { frame } from '../../src/server/wire/frame.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { identity as makeIdentity, RecordingLink as Link } from './doubles.js';

const GRACE_MS = 15_000;

function setup() {
  const clock = new FakeClock();
  const store = new MemoryState({ clock });
  const sessions = new SessionManager({ store, graceMs: GRACE_MS, log: createLogger('silent'), clock });
  const ended: [string, EndReason][] = [];
  sessions.hooks.on('ended', [['record', (s, reason) => void ended.push([s.id, reason])]]);
  return { clock, sessions, ended };
}

describe('the resume grace window on a fake clock', () => {
  it('a dropped session stays resumable for exactly the grace window, buffering, then ends', async () => {
    const { clock, sessions, ended } = setup();
    const { session } = await sessions.open(makeIdentity('alice'), new Link());
    await sessions.disconnected(session, false);
    expect(session.suspended).toBe(true);
    session.deliver(frame('pong', { serverTime: 1 }));
    expect(session.buffered).toHaveLength(1);
    await clock.advance(GRACE_MS - 1);
    expect(session.ended).toBe(false);
    await clock.advance(1);
    expect(session.ended).toBe(true);
    expect(session.buffered).toHaveLength(0);
    expect(ended).toEqual([[session.id, 'disconnected']]);
    expect(sessions.get(session.id)).toBeUndefined();
  });

  it('a resume inside the window cancels the end and hands over what was buffered', async () => {
    const { clock, sessions, ended } = setup();
    const first = await sessions.open(makeIdentity('alice'), new Link());
    await sessions.disconnected(first.session, false);
    first.session.deliver(frame('pong', { serverTime: 7 }));
    await clock.advance(GRACE_MS - 1);
    const link = new Link();
    await sessions.open(makeIdentity('alice'), link); // the new connection's own (provisional) session
    let replayed = 0;
    const resumed = await sessions.resume(first.resumeToken, link, (_s, _t, buffered) => {
      replayed = buffered.length;
    });
    expect(resumed).toBe(first.session);
    expect(replayed).toBe(1);
    await clock.advance(GRACE_MS * 2);
    expect(resumed.ended).toBe(false);
    expect(ended).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('a deliberate close ends the session at once; close() ends every session and leaves no timer', async () => {
    const { clock, sessions, ended } = setup();
    const a = await sessions.open(makeIdentity('alice'), new Link());
    const b = await sessions.open(makeIdentity('bob'), new Link(makeIdentity('bob')));
    await sessions.disconnected(a.session, true);
    expect(ended).toEqual([[a.session.id, 'left']]);
    await sessions.disconnected(b.session, false);
    expect(clock.pending).toBe(1);
    await sessions.close();
    await sessions.close();
    expect(ended).toEqual([
      [a.session.id, 'left'],
      [b.session.id, 'shutdown'],
    ]);
    expect(clock.pending).toBe(0);
    await expect(sessions.open(makeIdentity('carol'), new Link(makeIdentity('carol')))).rejects.toMatchObject(
      {
        code: 'SERVICE_UNAVAILABLE',
      },
    );
  });
});

describe('the suspended buffer is bounded in frames and in bytes', () => {
  it('keeps the newest frames within both bounds, counts its bytes, and says missedFrames', async () => {
    const { LiveSession } = await import('../../src/server/sessions/live-session.js');
    const s = new LiveSession('s1', makeIdentity('alice'), null, {
      timers: { clearTimeout: () => undefined },
      maxBufferedFrames: 10,
      maxBufferedBytes: 1_000,
    });
    const big = (n: number) => frame('pong', { serverTime: 1_000 + n }); // same size each
    const size = big(0).data.length;
    for (let i = 0; i < 5; i++) s.deliver(big(i));
    expect(s.missedFrames).toBe(false);
    expect(s.bufferedBytes).toBe(5 * size);
    for (let i = 5; i < 40; i++) s.deliver(big(i));
    // The frame bound (10) or the byte bound (1,000), whichever is tighter, newest kept.
    const kept = Math.min(10, Math.floor(1_000 / size));
    expect(s.buffered).toHaveLength(kept);
    expect(s.bufferedBytes).toBeLessThanOrEqual(1_000);
    expect(s.missedFrames).toBe(true);
    expect(JSON.parse(s.buffered.at(-1)!.data.toString())).toMatchObject({ payload: { serverTime: 1_039 } });
    const taken = s.takeBuffered();
    expect(taken.frames).toHaveLength(kept);
    expect(taken.missedFrames).toBe(true);
    expect(s.bufferedBytes).toBe(0);
    // Frames from an old node go before those held here, within the same bounds.
    s.deliver(big(100));
    s.prependBuffered([big(98), big(99)]);
    expect(
      s.buffered.map(
        (f) => (JSON.parse(f.data.toString()) as { payload: { serverTime: number } }).payload.serverTime,
      ),
    ).toEqual([1_098, 1_099, 1_100]);
    expect(s.bufferedBytes).toBe(3 * size);
  });
});
