import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { SessionManager, type EndReason } from '../../src/server/sessions/session-manager.js';
import { UserDelivery } from '../../src/server/sessions/user-delivery.js';
import { countOf, isMore, UserSessions } from '../../src/server/sessions/user-sessions.js';
import { MemoryState } from '../../src/server/state/memory/memory-state.js';
import { frame } from '../../src/server/wire/frame.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { identity as makeIdentity, RecordingLink as Link } from './doubles.js';

/**
 * Issue 14, memory per idle connection: a user's sessions are held as the session itself while
 * there is one, and as a Set only from the second device. These tests hold the transitions.
 */
describe('UserSessions: the session itself for one, a Set from two', () => {
  const s = (id: string, userId = 'alice') => ({ id, userId });

  it('1 → 2 → 1 → 0 sessions: the entry is the session, then a Set, then the session, then gone', () => {
    const index = new UserSessions<{ id: string; userId: string }>();
    const a = s('a');
    const b = s('b');
    expect(index.get('alice')).toBeUndefined();
    expect(index.count('alice')).toBe(0);
    index.add(a);
    expect(index.get('alice')).toBe(a);
    expect(index.count('alice')).toBe(1);
    index.add(a); // the same session again changes nothing
    expect(index.get('alice')).toBe(a);
    index.add(b);
    const two = index.get('alice');
    expect(two instanceof Set && isMore(two)).toBe(true);
    expect([...(two as Set<unknown>)]).toEqual([a, b]);
    expect(index.count('alice')).toBe(2);
    index.delete(a);
    expect(index.get('alice')).toBe(b);
    expect(index.count('alice')).toBe(1);
    index.delete(a); // not there any more: no-op
    expect(index.get('alice')).toBe(b);
    index.delete(b);
    expect(index.get('alice')).toBeUndefined();
    expect(index.users).toBe(0);
  });

  it('three devices, the middle one leaves: a Set of two stays; users are kept apart', () => {
    const index = new UserSessions<{ id: string; userId: string }>();
    const [a, b, c] = [s('a'), s('b'), s('c')];
    const bob = s('x', 'bob');
    for (const x of [a, b, c, bob]) index.add(x);
    index.delete(b);
    expect([...(index.get('alice') as Set<unknown>)]).toEqual([a, c]);
    expect(index.get('bob')).toBe(bob);
    index.delete(s('a', 'bob')); // another user's entry, an object it does not hold: no-op
    expect(index.get('bob')).toBe(bob);
    expect(index.users).toBe(2);
  });

  it('epoch: every change of any user’s group bumps it, and nothing else does (the ICE routes rely on it)', () => {
    const index = new UserSessions<{ id: string; userId: string }>();
    const [a, b, c] = [s('a'), s('b'), s('c')];
    const steps: [string, () => void, boolean][] = [
      ['first session', () => index.add(a), true],
      ['the same again', () => index.add(a), false],
      ['second session', () => index.add(b), true],
      ['second again (in the Set)', () => index.add(b), false],
      ['third', () => index.add(c), true],
      ['one of three leaves', () => index.delete(b), true],
      ['it again', () => index.delete(b), false],
      ['another user’s unknown session', () => index.delete(s('z', 'bob')), false],
      ['down to one', () => index.delete(a), true],
      ['an object the entry is not', () => index.delete(s('c')), false],
      ['the last', () => index.delete(c), true],
      ['nothing left', () => index.delete(c), false],
    ];
    for (const [what, step, changes] of steps) {
      const before = index.epoch;
      step();
      expect(index.epoch > before, what).toBe(changes);
      expect(index.epoch >= before, what).toBe(true);
    }
  });

  it('setOf is a snapshot Set for one or many; countOf counts either form', () => {
    const index = new UserSessions<{ id: string; userId: string }>();
    const a = s('a');
    index.add(a);
    const one = index.setOf('alice');
    expect([...(one ?? [])]).toEqual([a]);
    index.add(s('b'));
    expect(one?.size).toBe(1); // a snapshot: later adds do not show in it
    expect(index.setOf('alice')?.size).toBe(2);
    expect(index.setOf('nobody')).toBeUndefined();
    expect(countOf(undefined)).toBe(0);
    expect(countOf(a)).toBe(1);
    expect(countOf(index.get('alice'))).toBe(2);
  });
});

describe('SessionManager and UserDelivery over one or several devices', () => {
  function setup() {
    const clock = new FakeClock();
    const store = new MemoryState({ clock });
    const sessions = new SessionManager({ store, graceMs: 15_000, log: createLogger('silent'), clock });
    const users = new UserDelivery({ sessions, cluster: null });
    const ended: [string, EndReason][] = [];
    sessions.hooks.on('ended', [['record', (x, reason) => void ended.push([x.id, reason])]]);
    return { clock, sessions, users, ended };
  }
  const pong = (n: number) => frame('pong', { serverTime: n });

  it('1 → 2 → 1 → 0 devices: delivery reaches exactly the live ones, and the filters hold', async () => {
    const { sessions, users, ended } = setup();
    const l1 = new Link();
    const l2 = new Link();
    const one = await sessions.open(makeIdentity('alice'), l1);
    expect(sessions.localSessionsOf('alice')).toBe(one.session);
    expect(users.deliverLocal('alice', pong(1))).toBe(1);
    expect(users.deliverLocal('alice', pong(2), { except: one.session.id })).toBe(0);
    expect(users.hasLocal('alice', { only: [one.session.id] })).toBe(true);
    expect(users.hasLocal('alice', { except: one.session.id })).toBe(false);
    expect([...iter(users.local('alice'))]).toEqual([one.session]);

    const two = await sessions.open(makeIdentity('alice'), l2);
    expect(sessions.sessionsOf('alice')?.size).toBe(2);
    expect(users.deliverLocal('alice', pong(3))).toBe(2);
    expect(users.deliverLocal('alice', pong(4), { except: one.session.id })).toBe(1);
    expect(users.hasLocal('alice', { except: one.session.id })).toBe(true);

    await sessions.disconnected(one.session, true);
    expect(ended).toEqual([[one.session.id, 'left']]);
    expect(sessions.localSessionsOf('alice')).toBe(two.session);
    expect(users.deliverLocal('alice', pong(5))).toBe(1);

    await sessions.disconnected(two.session, true);
    expect(sessions.localSessionsOf('alice')).toBeUndefined();
    expect(sessions.sessionsOf('alice')).toBeUndefined();
    expect(users.deliverLocal('alice', pong(6))).toBe(0);
    expect(users.hasLocal('alice')).toBe(false);
    const serverTimes = (l: Link) =>
      l.sent.map(
        (f) => (JSON.parse(f.data.toString()) as { payload: { serverTime: number } }).payload.serverTime,
      );
    expect(serverTimes(l1)).toEqual([1, 3]);
    expect(serverTimes(l2)).toEqual([3, 4, 5]);
  });

  it('a resume replaces the provisional session in the index: one entry, the resumed session', async () => {
    const { sessions, users } = setup();
    const first = await sessions.open(makeIdentity('alice'), new Link());
    await sessions.disconnected(first.session, false);
    expect(first.session.suspended).toBe(true);
    // Suspended, it still receives (buffers): it stays in the index.
    expect(users.deliverLocal('alice', pong(1))).toBe(1);
    const link = new Link();
    const provisional = await sessions.open(makeIdentity('alice'), link);
    expect(sessions.sessionsOf('alice')?.size).toBe(2);
    const resumed = await sessions.resume(first.resumeToken, link, () => undefined);
    expect(resumed).toBe(first.session);
    expect(provisional.session.ended).toBe(true);
    expect(sessions.localSessionsOf('alice')).toBe(first.session);
    expect(users.deliverLocal('alice', pong(2))).toBe(1);
    expect(link.sent).toHaveLength(1);
  });

  it('ending a suspended session after its grace window takes it out; an idle session has no rooms map or buffer until used', async () => {
    const { clock, sessions } = setup();
    const a = await sessions.open(makeIdentity('alice'), new Link());
    expect(a.session.buffered).toEqual([]);
    expect(a.session.rooms.size).toBe(0);
    await sessions.disconnected(a.session, false);
    a.session.deliver(pong(1));
    expect(a.session.buffered).toHaveLength(1);
    await clock.advance(15_000);
    expect(a.session.ended).toBe(true);
    expect(a.session.buffered).toEqual([]);
    expect(sessions.localSessionsOf('alice')).toBeUndefined();
  });
});

function* iter<T>(it: Iterator<T>): Generator<T> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}
