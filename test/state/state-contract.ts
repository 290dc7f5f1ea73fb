import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Participant } from '../../src/protocol/index.js';
import type { FloorHolder, StateStore } from '../../src/server/state/state-store.js';
import { sleep, waitUntil } from '../helpers/wait.js';

export interface ContractSubject {
  store: StateStore;
  cleanup: () => Promise<void>;
  /**
   * Moves the store's clock forward by `ms` (a FakeClock the store reads). Without it, time is the
   * wall clock: the test sleeps, and waits for an expiry instead of stepping past it.
   */
  pass?: (ms: number) => Promise<void>;
}

let seq = 0;
function participant(sessionId: string, name = sessionId): Participant {
  return { sessionId, userId: `u-${sessionId}`, name, joinedAt: Date.now() + seq++ };
}

function holder(sessionId: string, priority = 0): FloorHolder {
  return { sessionId, userId: `u-${sessionId}`, name: `Name ${sessionId}`, priority, since: Date.now() };
}

const ids = (ps: Participant[]) => ps.map((p) => p.sessionId).sort();

/**
 * The behaviour every StateStore must have, run against each backend with a fresh, empty store per
 * test. A store on a fake clock (`pass`) steps time exactly; one on the wall clock (Redis) uses
 * ttl ≥ 100 ms and margins of 2×, so a loaded CI box does not flake.
 */
export function stateContract(name: string, factory: () => Promise<ContractSubject>): void {
  describe(`StateStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: StateStore;
    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
    });
    /** Lets `ms` of the store's time pass. */
    const pass = (ms: number) => (subject.pass ? subject.pass(ms) : sleep(ms));
    /** Until `gone` holds, which it must once `ttlMs` has passed: stepped past on a fake clock, awaited on a real one. */
    const expires = async (gone: () => Promise<boolean>, what: string, ttlMs: number, timeoutMs?: number) => {
      if (!subject.pass) return waitUntil(gone, what, timeoutMs);
      await subject.pass(ttlMs - 1);
      expect(await gone(), `${what}: not one millisecond early`).toBe(false);
      await subject.pass(1);
      expect(await gone(), what).toBe(true);
    };
    afterEach(() => subject.cleanup());

    describe('room membership', () => {
      it('starts empty', async () => {
        expect(await store.participants('lobby')).toEqual([]);
        expect(await store.roomCount()).toBe(0);
        expect(await store.leaveRoom('lobby', 's1')).toBeNull();
      });

      it('joins, lists and leaves, returning the removed entry once', async () => {
        const a = participant('a', 'Alice');
        const b = participant('b', 'Bob');
        expect(await store.joinRoom('lobby', a, 10)).toEqual({ status: 'joined', participants: [a] });
        const second = await store.joinRoom('lobby', b, 10);
        expect(second.status).toBe('joined');
        expect(ids(second.participants ?? [])).toEqual(['a', 'b']);
        expect(ids(await store.participants('lobby'))).toEqual(['a', 'b']);
        expect((await store.participants('lobby')).find((p) => p.sessionId === 'a')).toEqual(a);

        expect(await store.leaveRoom('lobby', 'a')).toEqual(a);
        expect(await store.leaveRoom('lobby', 'a')).toBeNull();
        expect(await store.participants('lobby')).toEqual([b]);
        expect(await store.leaveRoom('elsewhere', 'b')).toBeNull();
      });

      it('lists the rooms with members, and a counted leave says how many remain (0 exactly once)', async () => {
        const a = participant('a');
        await store.joinRoom('r1', a, 10);
        await store.joinRoom('r1', participant('b'), 10);
        await store.joinRoom('r2', participant('c'), 10);
        expect((await store.roomIds()).sort()).toEqual(['r1', 'r2']);
        expect(await store.leaveRoomCounted('r1', 'a')).toEqual({ participant: a, remaining: 1 });
        const last = await Promise.all([
          store.leaveRoomCounted('r1', 'b'),
          store.leaveRoomCounted('r1', 'b'),
        ]);
        expect(last.filter((o) => o?.remaining === 0)).toHaveLength(1);
        expect(await store.roomIds()).toEqual(['r2']);
      });

      it('claimOnce: one winner among concurrent claims, visible until it expires', async () => {
        const wins = await Promise.all(Array.from({ length: 10 }, () => store.claimOnce('k1', 150)));
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect(await store.hasClaim('k1')).toBe(true);
        expect(await store.hasClaim('k2')).toBe(false);
        await expires(async () => !(await store.hasClaim('k1')), 'the claim to expire', 150, 2_000);
        expect(await store.claimOnce('k1', 150)).toBe(true);
      });

      it('counts rooms with at least one member', async () => {
        await store.joinRoom('r1', participant('a'), 10);
        await store.joinRoom('r1', participant('b'), 10);
        await store.joinRoom('r2', participant('c'), 10);
        expect(await store.roomCount()).toBe(2);
        await store.leaveRoom('r1', 'a');
        expect(await store.roomCount()).toBe(2);
        await store.leaveRoom('r1', 'b');
        expect(await store.roomCount()).toBe(1);
        expect(await store.participants('r1')).toEqual([]);
        await store.leaveRoom('r2', 'c');
        expect(await store.roomCount()).toBe(0);
        await store.joinRoom('r1', participant('d'), 10);
        expect(await store.roomCount()).toBe(1);
      });

      it('admits exactly maxParticipants', async () => {
        for (const s of ['a', 'b', 'c']) {
          expect((await store.joinRoom('small', participant(s), 3)).status).toBe('joined');
        }
        expect(await store.joinRoom('small', participant('d'), 3)).toEqual({ status: 'full' });
        expect(ids(await store.participants('small'))).toEqual(['a', 'b', 'c']);
        await store.leaveRoom('small', 'b');
        expect((await store.joinRoom('small', participant('d'), 3)).status).toBe('joined');
        expect(ids(await store.participants('small'))).toEqual(['a', 'c', 'd']);
      });

      it('re-joining the same session replaces its entry and does not count twice', async () => {
        await store.joinRoom('solo', participant('a', 'first'), 1);
        const again = await store.joinRoom('solo', participant('a', 'second'), 1);
        expect(again.status).toBe('joined');
        expect(again.participants?.map((p) => p.name)).toEqual(['second']);
        expect((await store.participants('solo')).map((p) => p.name)).toEqual(['second']);
        expect(await store.joinRoom('solo', participant('b'), 1)).toEqual({ status: 'full' });
        expect(await store.roomCount()).toBe(1);
      });

      it('50 concurrent joins on a room of 10 admit exactly 10', async () => {
        const outcomes = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.joinRoom('busy', participant(`s${i}`), 10)),
        );
        const joined = outcomes.filter((o) => o.status === 'joined');
        expect(joined).toHaveLength(10);
        expect(outcomes.filter((o) => o.status === 'full')).toHaveLength(40);
        for (const o of joined) expect(o.participants?.length).toBeLessThanOrEqual(10);
        expect(await store.participants('busy')).toHaveLength(10);
      });

      it('keeps rooms apart', async () => {
        await store.joinRoom('r1', participant('a'), 1);
        expect((await store.joinRoom('r2', participant('b'), 1)).status).toBe('joined');
        expect(ids(await store.participants('r1'))).toEqual(['a']);
        expect(await store.leaveRoom('r2', 'a')).toBeNull();
      });
    });

    describe('resume tokens', () => {
      const record = { sessionId: 's1', userId: 'alice' };

      it('stores, reads and is taken exactly once', async () => {
        expect(await store.getResumeToken('h1')).toBeNull();
        await store.putResumeToken('h1', record, 10_000);
        expect(await store.getResumeToken('h1')).toEqual(record);
        expect(await store.getResumeToken('h2')).toBeNull();
        expect(await store.takeResumeToken('h1')).toBe(true);
        expect(await store.getResumeToken('h1')).toBeNull();
        expect(await store.takeResumeToken('h1')).toBe(false);
        expect(await store.takeResumeToken('never-stored')).toBe(false);
      });

      it('putting again replaces the record and its ttl', async () => {
        await store.putResumeToken('h1', record, 100);
        await store.putResumeToken('h1', { sessionId: 's2', userId: 'alice' }, 10_000);
        await pass(200); // past the first ttl: the record must NOT expire with it
        expect(await store.getResumeToken('h1')).toEqual({ sessionId: 's2', userId: 'alice' });
      });

      it('10 concurrent takes: exactly one wins', async () => {
        await store.putResumeToken('h1', record, 10_000);
        const wins = await Promise.all(Array.from({ length: 10 }, () => store.takeResumeToken('h1')));
        expect(wins.filter(Boolean)).toHaveLength(1);
      });

      it('expires after its ttl', async () => {
        await store.putResumeToken('h1', record, 100);
        expect(await store.getResumeToken('h1')).toEqual(record);
        await expires(async () => (await store.getResumeToken('h1')) === null, 'the record expires', 100);
        expect(await store.takeResumeToken('h1')).toBe(false);
      });
    });

    describe('speaker lock', () => {
      it('is granted when free and denied, naming the holder, when held', async () => {
        expect(await store.currentSpeaker('ch1')).toBeNull();
        const alice = holder('alice');
        const first = await store.acquireSpeaker('ch1', alice, 5_000);
        if (!first.granted) throw new Error('expected a grant');
        expect(await store.currentSpeaker('ch1')).toEqual({ ...alice, fence: first.fence });

        const second = await store.acquireSpeaker('ch1', holder('bob'), 5_000);
        expect(second).toEqual({ granted: false, current: { ...alice, fence: first.fence } });
        // The same session asking again is no exception: the floor is not re-entrant.
        expect((await store.acquireSpeaker('ch1', alice, 5_000)).granted).toBe(false);
        // Other rooms are independent.
        expect((await store.acquireSpeaker('ch2', holder('bob'), 5_000)).granted).toBe(true);
      });

      it('fences strictly increase across acquire/release cycles', async () => {
        let last = -Infinity;
        for (let i = 0; i < 5; i++) {
          const got = await store.acquireSpeaker('ch1', holder(`s${i}`), 5_000);
          if (!got.granted) throw new Error('expected a grant');
          expect(got.fence).toBeGreaterThan(last);
          last = got.fence;
          expect(await store.releaseSpeaker('ch1', got.fence)).toBe(true);
          expect(await store.currentSpeaker('ch1')).toBeNull();
          expect(await store.releaseSpeaker('ch1', got.fence)).toBe(false);
        }
      });

      it('renewing keeps the lock past its original ttl', async () => {
        // Renewed every 100 ms with a 400 ms ttl: 300 ms of slack per renewal for a busy machine.
        const got = await store.acquireSpeaker('ch1', holder('alice'), 400);
        if (!got.granted) throw new Error('expected a grant');
        for (let i = 0; i < 6; i++) {
          await pass(100); // time must pass for the original ttl to run out
          expect(await store.renewSpeaker('ch1', got.fence, 400)).toBe(true);
        }
        // At least 600 ms after the grant, past the original 400 ms.
        expect((await store.currentSpeaker('ch1'))?.fence).toBe(got.fence);
        expect((await store.acquireSpeaker('ch1', holder('bob'), 400)).granted).toBe(false);
      });

      it('expires by ttl when not renewed', async () => {
        const got = await store.acquireSpeaker('ch1', holder('alice'), 100);
        if (!got.granted) throw new Error('expected a grant');
        await expires(async () => (await store.currentSpeaker('ch1')) === null, 'the lock expires', 100);
        expect(await store.renewSpeaker('ch1', got.fence, 5_000)).toBe(false);
        const next = await store.acquireSpeaker('ch1', holder('bob'), 5_000);
        expect(next.granted).toBe(true);
      });

      it('fencing: an expired holder can neither release nor renew the next holder’s lock', async () => {
        const first = await store.acquireSpeaker('ch1', holder('alice'), 100);
        if (!first.granted) throw new Error('expected a grant');
        await expires(async () => (await store.currentSpeaker('ch1')) === null, 'the lock expires', 100);
        const second = await store.acquireSpeaker('ch1', holder('bob'), 5_000);
        if (!second.granted) throw new Error('expected a grant');
        expect(second.fence).toBeGreaterThan(first.fence);

        expect(await store.releaseSpeaker('ch1', first.fence)).toBe(false);
        expect(await store.renewSpeaker('ch1', first.fence, 5_000)).toBe(false);
        expect(await store.currentSpeaker('ch1')).toMatchObject({ sessionId: 'bob', fence: second.fence });
        expect(await store.renewSpeaker('ch1', second.fence, 5_000)).toBe(true);
        expect(await store.releaseSpeaker('ch1', second.fence)).toBe(true);
      });

      it('takeover needs the current fence', async () => {
        const alice = await store.acquireSpeaker('ch1', holder('alice'), 5_000);
        if (!alice.granted) throw new Error('expected a grant');

        const wrong = await store.acquireSpeaker('ch1', holder('bob', 5), 5_000, alice.fence + 1000);
        expect(wrong).toMatchObject({ granted: false, current: { sessionId: 'alice', fence: alice.fence } });

        const bob = await store.acquireSpeaker('ch1', holder('bob', 5), 5_000, alice.fence);
        if (!bob.granted) throw new Error('expected a takeover');
        expect(bob.fence).toBeGreaterThan(alice.fence);
        expect(await store.currentSpeaker('ch1')).toMatchObject({ sessionId: 'bob', priority: 5 });

        // The pre-empted holder is now stale, and so is a second takeover with its fence.
        expect(await store.renewSpeaker('ch1', alice.fence, 5_000)).toBe(false);
        expect(await store.releaseSpeaker('ch1', alice.fence)).toBe(false);
        const again = await store.acquireSpeaker('ch1', holder('carol', 9), 5_000, alice.fence);
        expect(again).toMatchObject({ granted: false, current: { sessionId: 'bob', fence: bob.fence } });
      });

      it('a takeover fence on a free floor is a plain grant', async () => {
        const got = await store.acquireSpeaker('ch1', holder('alice'), 5_000, 12345);
        expect(got.granted).toBe(true);
      });

      it('20 concurrent acquires: exactly one winner, 50 rounds', async () => {
        let lastFence = -Infinity;
        for (let round = 0; round < 50; round++) {
          const outcomes = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              store.acquireSpeaker('contended', holder(`r${round}s${i}`), 5_000),
            ),
          );
          const winners = outcomes.filter((o) => o.granted);
          expect(winners).toHaveLength(1);
          const winner = winners[0];
          if (!winner.granted) throw new Error('unreachable');
          expect(winner.fence).toBeGreaterThan(lastFence);
          lastFence = winner.fence;
          for (const o of outcomes) if (!o.granted) expect(o.current.fence).toBe(winner.fence);
          expect(await store.releaseSpeaker('contended', winner.fence)).toBe(true);
        }
      });
    });

    describe('1:1 call records (multi-device answering)', () => {
      const key = 'call-1\u0000alice\u0000bob';
      const ring = { op: 'ring', callerId: 'alice', callerSession: 'a1', rung: ['b1', 'b2'] } as const;

      it('the first offer creates the record; a second ring keeps the first caller', async () => {
        expect(await store.getCall(key)).toBeNull();
        expect(await store.updateCall(key, { op: 'answer', session: 'b1' }, 10_000)).toBeNull();
        const created = await store.updateCall(key, ring, 10_000);
        expect(created).toEqual({
          callerId: 'alice',
          callerSession: 'a1',
          rung: ['b1', 'b2'],
          callee: null,
          busy: [],
          ended: false,
        });
        const again = await store.updateCall(key, { ...ring, callerSession: 'a2' }, 10_000);
        expect(again?.callerSession).toBe('a1');
        expect(await store.getCall(key)).toEqual(created);
      });

      it('of concurrent answers exactly one wins, and busy declines after it change nothing', async () => {
        await store.updateCall(key, ring, 10_000);
        expect((await store.updateCall(key, { op: 'busy', session: 'b3' }, 10_000))?.busy).toEqual(['b3']);
        const outcomes = await Promise.all(
          ['b1', 'b2', 'b4', 'b5'].map((session) => store.updateCall(key, { op: 'answer', session }, 10_000)),
        );
        const callee = outcomes[0]?.callee;
        expect(['b1', 'b2', 'b4', 'b5']).toContain(callee);
        for (const o of outcomes) expect(o?.callee).toBe(callee);
        expect((await store.updateCall(key, { op: 'busy', session: 'b2' }, 10_000))?.busy).toEqual(['b3']);
      });

      it('end marks the record ended, and no later step changes it or keeps it longer', async () => {
        await store.updateCall(key, ring, 10_000);
        await store.updateCall(key, { op: 'answer', session: 'b2' }, 10_000);
        const ended = await store.updateCall(key, { op: 'end' }, 300);
        expect(ended).toEqual({
          callerId: 'alice',
          callerSession: 'a1',
          rung: ['b1', 'b2'],
          callee: 'b2',
          busy: [],
          ended: true,
        });
        // A late answer, busy decline, ring (a new offer with the same id) or end: nothing changes,
        // and none of them gives it their longer ttl.
        expect(await store.updateCall(key, { op: 'answer', session: 'b1' }, 10_000)).toEqual(ended);
        expect(await store.updateCall(key, { op: 'busy', session: 'b1' }, 10_000)).toEqual(ended);
        expect(await store.updateCall(key, { ...ring, callerSession: 'a9', rung: ['b9'] }, 10_000)).toEqual(
          ended,
        );
        expect(await store.updateCall(key, { op: 'end' }, 10_000)).toEqual(ended);
        expect(await store.getCall(key)).toEqual(ended);
        await expires(
          async () => (await store.getCall(key)) === null,
          'the ended record to expire at its first short ttl',
          300,
          3_000,
        );
        // Gone, the id may ring again: a new record, not ended.
        expect((await store.updateCall(key, ring, 10_000))?.ended).toBe(false);
      });

      it('a call that ends while it rings is ended with no callee', async () => {
        await store.updateCall(key, ring, 10_000);
        expect(await store.updateCall(key, { op: 'end' }, 10_000)).toMatchObject({
          callee: null,
          ended: true,
        });
        expect(await store.updateCall(key, { op: 'answer', session: 'b1' }, 10_000)).toMatchObject({
          callee: null,
          ended: true,
        });
      });

      it('end keeps the record only for the short ttl', async () => {
        await store.updateCall(key, ring, 10_000);
        await store.updateCall(key, { op: 'end' }, 100);
        expect(await store.getCall(key)).not.toBeNull();
        await expires(
          async () => (await store.getCall(key)) === null,
          'the ended record to expire',
          100,
          2_000,
        );
      });
    });
  });
}
