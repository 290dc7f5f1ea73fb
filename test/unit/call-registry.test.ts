import { describe, expect, it } from 'vitest';
import { defaults } from '../../src/server/config/defaults.js';
import { callKeyOf } from '../../src/server/calls/call-answering.js';
import { CallRegistry } from '../../src/server/calls/call-registry.js';
import { createLogger } from '../../src/server/logger.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The registry's epoch: the call relay skips `track` for an offer or answer on a kept route only
 * while it is unchanged (calls/call-routes.ts), so it must move whenever what `track` does for some
 * message would change, and stay put when tracking changes nothing.
 */
describe('CallRegistry.epoch', () => {
  const registry = () => new CallRegistry(createLogger('silent'), new FakeClock());

  it('moves when a call is added, answered or ended, and not for messages that change nothing', () => {
    const r = registry();
    const e0 = r.epoch;
    expect(r.track('call:offer', 'alice', 'bob', 'c1')?.kind).toBe('started');
    const e1 = r.epoch;
    expect(e1).not.toBe(e0);
    // Renegotiation before the answer, candidates: nothing changes, the epoch stays.
    expect(r.track('call:offer', 'alice', 'bob', 'c1')).toBeNull();
    expect(r.track('call:offer', 'bob', 'alice', 'c1')).toBeNull();
    expect(r.track('call:ice-candidate', 'alice', 'bob', 'c1')).toBeNull();
    expect(r.epoch).toBe(e1);
    // The caller's "answer" to the callee's re-offer answers nothing.
    expect(r.track('call:answer', 'alice', 'bob', 'c1')).toBeNull();
    expect(r.epoch).toBe(e1);
    expect(r.track('call:answer', 'bob', 'alice', 'c1')?.kind).toBe('answered');
    const e2 = r.epoch;
    expect(e2).not.toBe(e1);
    expect(r.track('call:answer', 'bob', 'alice', 'c1')).toBeNull();
    expect(r.track('call:offer', 'alice', 'bob', 'c1')).toBeNull();
    expect(r.epoch).toBe(e2);
    expect(r.track('call:hangup', 'alice', 'bob', 'c1')?.kind).toBe('ended');
    expect(r.epoch).not.toBe(e2);
    // Ending a call the registry does not know changes nothing in it.
    const e3 = r.epoch;
    expect(r.end('alice', 'bob', 'gone')).toBeNull();
    expect(r.epoch).toBe(e3);
  });

  it('moves when a user’s calls end with their session, and when the oldest is forgotten', () => {
    const r = registry();
    r.track('call:offer', 'alice', 'bob', 'c1');
    let e = r.epoch;
    expect(r.endAllOf('alice')).toHaveLength(1);
    expect(r.epoch).not.toBe(e);
    expect(r.size).toBe(0);

    for (let i = 0; i < defaults.maxCallsPerUser; i++) r.track('call:offer', 'carol', `peer${i}`, `k${i}`);
    expect(r.size).toBe(defaults.maxCallsPerUser);
    e = r.epoch;
    // One call too many: the oldest is forgotten, so `track` would start it again; the epoch says so.
    r.track('call:offer', 'carol', 'dave', 'one-more');
    expect(r.size).toBe(defaults.maxCallsPerUser);
    expect(r.list().some((c) => c.callId === 'k0')).toBe(false);
    expect(r.epoch - e).toBe(2); // added, then the oldest removed
    e = r.epoch;
    expect(r.track('call:offer', 'carol', 'peer0', 'k0')?.kind).toBe('started');
    expect(r.epoch).not.toBe(e);
  });
});

/** A call that ended on another node: the bus names its record, and this node forgets it (call-relay.ts). */
describe('CallRegistry, by the call’s record', () => {
  const registry = () => new CallRegistry(createLogger('silent'), new FakeClock());

  it('knows a tracked call by its record’s key, whichever side sent first, and forgets it by that key only', () => {
    const r = registry();
    r.track('call:answer', 'bob', 'alice', 'c1'); // the callee's node: the answer first
    r.track('call:offer', 'alice', 'carol', 'c1'); // the same call id with another user
    const record = callKeyOf('c1', 'alice', 'bob');
    expect(callKeyOf('c1', 'bob', 'alice')).toBe(record);
    expect(r.tracksRecord(record)).toBe(true);
    expect(r.tracksRecord(callKeyOf('c2', 'alice', 'bob'))).toBe(false);
    const e0 = r.epoch;
    r.forgetRecord(record);
    expect(r.tracksRecord(record)).toBe(false);
    expect(r.epoch).not.toBe(e0);
    expect(r.list().map((c) => [c.callerId, c.calleeId])).toEqual([['alice', 'carol']]);
    // Nothing left of it: alice leaving ends only her call with carol.
    expect(r.endAllOf('alice').map((c) => c.peerId)).toEqual(['carol']);
    // Forgetting what is not tracked changes nothing.
    const e1 = r.epoch;
    r.forgetRecord(record);
    r.forgetRecord('no\u0000such\u0000call');
    expect(r.epoch).toBe(e1);
  });

  it('drops the record’s key with the call, however the call goes', () => {
    const r = registry();
    r.track('call:offer', 'alice', 'bob', 'c1');
    r.track('call:hangup', 'bob', 'alice', 'c1');
    expect(r.tracksRecord(callKeyOf('c1', 'alice', 'bob'))).toBe(false);
    r.track('call:offer', 'alice', 'bob', 'c2');
    r.endAllOf('bob');
    expect(r.tracksRecord(callKeyOf('c2', 'alice', 'bob'))).toBe(false);
    for (let i = 0; i <= defaults.maxCallsPerUser; i++) r.track('call:offer', 'alice', `u${i}`, `m${i}`);
    expect(r.tracksRecord(callKeyOf('m0', 'alice', 'u0'))).toBe(false); // the oldest, forgotten
    expect(r.tracksRecord(callKeyOf('m1', 'alice', 'u1'))).toBe(true);
  });
});
