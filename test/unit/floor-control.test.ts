import { describe, expect, it } from 'vitest';
import type { Channel } from '../../src/server/config/manifest.js';
import { createLogger } from '../../src/server/logger.js';
import { FloorControl } from '../../src/server/ptt/floor-control.js';
import { MemoryState } from '../../src/server/state/memory/memory-state.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { identity, RecordingFanout, RecordingFloorMedia, RecordingSession } from './doubles.js';

const LOCK_TTL_MS = 3_000;
const MAX_TALK_MS = 10_000;

function setup(channel: Partial<Channel> = {}) {
  const clock = new FakeClock();
  const store = new MemoryState({ clock });
  const rooms = new RecordingFanout();
  const media = new RecordingFloorMedia();
  const radio: Channel = { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 10, ...channel };
  const floor = new FloorControl({
    store,
    rooms,
    media,
    catalog: { resolve: (id) => (id === 'radio' ? radio : null) },
    config: { lockTtlMs: LOCK_TTL_MS, maxTalkMs: MAX_TALK_MS },
    log: createLogger('silent'),
    clock,
  });
  const alice = new RecordingSession('s-alice', identity('alice')).join('radio');
  const bob = new RecordingSession('s-bob', identity('bob')).join('radio');
  rooms.add('radio', alice, bob);
  return { clock, store, rooms, media, floor, alice, bob };
}

describe('FloorControl on a fake clock', () => {
  it('keeps the speaker lock alive past its TTL by renewing it while talking', async () => {
    const { clock, store, floor, alice } = setup();
    expect((await floor.start(alice, 'radio')).type).toBe('ptt:granted');
    await clock.advance(LOCK_TTL_MS * 3);
    expect((await store.currentSpeaker('radio'))?.sessionId).toBe('s-alice');
    expect(alice.types()).not.toContain('ptt:revoked');
  });

  it('revokes the floor at the max talk time, not a millisecond before', async () => {
    const { clock, store, rooms, media, floor, alice } = setup();
    await floor.start(alice, 'radio');
    await clock.advance(MAX_TALK_MS - 1);
    expect(alice.types()).not.toContain('ptt:revoked');
    await clock.advance(1);
    const revoked = alice.received.find((m) => m.type === 'ptt:revoked');
    expect(revoked?.payload).toEqual({ roomId: 'radio', reason: 'max-duration' });
    expect(await store.currentSpeaker('radio')).toBeNull();
    expect(media.calls).toEqual(['granted:s-alice', 'released:s-alice']);
    const changes = rooms.broadcasts.filter((m) => m.type === 'ptt:speaker-changed');
    expect(changes.map((m) => (m.payload as { speaker: unknown }).speaker === null)).toEqual([false, true]);
  });

  it('a channel’s own maxTalkMs wins over the default', async () => {
    const { clock, floor, alice } = setup({ maxTalkMs: 2_000 });
    await floor.start(alice, 'radio');
    await clock.advance(2_000);
    expect(alice.types()).toContain('ptt:revoked');
  });

  it('a lock lost to expiry (a renewal that finds it gone) revokes with lock-lost', async () => {
    const { clock, store, floor, alice } = setup();
    await floor.start(alice, 'radio');
    const lock = await store.currentSpeaker('radio');
    await store.releaseSpeaker('radio', lock?.fence ?? 0); // as if it expired in Redis
    await clock.advance(LOCK_TTL_MS / 3);
    const revoked = alice.received.find((m) => m.type === 'ptt:revoked');
    expect(revoked?.payload).toEqual({ roomId: 'radio', reason: 'lock-lost' });
  });

  it('grants a queued request when the floor frees, and close() stops every timer', async () => {
    const { clock, floor, alice, bob } = setup({ queue: true });
    await floor.start(alice, 'radio');
    expect((await floor.start(bob, 'radio')).type).toBe('ptt:queued');
    await clock.advance(MAX_TALK_MS);
    expect(bob.types()).toContain('ptt:granted');
    floor.close();
    floor.close();
    floor.close();
    expect(clock.pending).toBe(0);
    await expect(floor.start(alice, 'radio')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });

  it('settled(): resolves once the floor change under way has sent its reply and its broadcast', async () => {
    const { floor, rooms, alice } = setup();
    // Idle: at once.
    await floor.settled('radio');
    await floor.start(alice, 'radio');
    const order: string[] = [];
    // What the recorder does when the floor's media stops: wait for the change to be announced.
    const stopping = floor.stop(alice, 'radio', (r) => order.push(`reply held=${String(r.held)}`));
    const settled = floor.settled('radio').then(() => {
      const last = rooms.broadcasts.at(-1);
      const speaker = last?.type === 'ptt:speaker-changed' ? last.payload.speaker : 'none';
      order.push(`settled after ${last?.type} speaker=${JSON.stringify(speaker)}`);
    });
    await Promise.all([stopping, settled]);
    expect(order).toEqual(['reply held=true', 'settled after ptt:speaker-changed speaker=null']);
    // Closed: at once, whatever was under way.
    floor.close();
    await floor.settled('radio');
  });
});
