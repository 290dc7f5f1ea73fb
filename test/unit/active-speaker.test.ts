import { describe, expect, it } from 'vitest';
import { ActiveSpeakerDebouncer, type ActiveSpeaker } from '../../src/server/media/active-speaker.js';
import { FakeClock } from '../helpers/fake-clock.js';

const HOLD = 1_000;
const speaker = (name: string): ActiveSpeaker => ({
  userId: name,
  sessionId: `s-${name}`,
  producerId: `p-${name}`,
});
const A = speaker('a');
const B = speaker('b');
const C = speaker('c');

function setup() {
  const clock = new FakeClock();
  const announced: { at: number; who: string | null }[] = [];
  const d = new ActiveSpeakerDebouncer({
    clock,
    holdMs: HOLD,
    announce: (s) => announced.push({ at: clock.monotonic(), who: s?.userId ?? null }),
  });
  return { clock, d, announced };
}

describe('active speaker debounce (room:active-speaker)', () => {
  it('announces the first speaker at once, and a change after the hold at once', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    expect(announced).toEqual([{ at: 0, who: 'a' }]);
    expect(d.current).toEqual(A);
    d.propose(A); // the same again: nothing to say
    await clock.advance(HOLD + 500);
    d.propose(B);
    expect(announced).toEqual([
      { at: 0, who: 'a' },
      { at: HOLD + 500, who: 'b' },
    ]);
  });

  it('holds a change back until the hold ends, then announces only the latest', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    await clock.advance(200);
    d.propose(B);
    await clock.advance(200);
    d.propose(C);
    await clock.advance(HOLD - 401);
    expect(announced.map((x) => x.who)).toEqual(['a']);
    await clock.advance(1);
    expect(announced).toEqual([
      { at: 0, who: 'a' },
      { at: HOLD, who: 'c' },
    ]);
    // C now holds for its own hold: B within it waits until HOLD * 2.
    d.propose(B);
    await clock.advance(HOLD - 1);
    expect(announced).toHaveLength(2);
    await clock.advance(1);
    expect(announced.at(-1)).toEqual({ at: 2 * HOLD, who: 'b' });
  });

  it('does not flap: A → B → A within the hold announces nothing more', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    for (let i = 0; i < 10; i++) {
      await clock.advance(50);
      d.propose(i % 2 === 0 ? B : A);
    }
    await clock.advance(5 * HOLD);
    expect(announced.map((x) => x.who)).toEqual(['a']);
    expect(clock.pending).toBe(0);
  });

  it('retract: a muted or gone speaker becomes nobody (after the hold); a held-back report of it is dropped', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    await clock.advance(HOLD);
    d.retract(A.producerId);
    expect(announced.at(-1)).toEqual({ at: HOLD, who: null });
    expect(d.current).toBeNull();
    d.retract(A.producerId); // nothing left to retract
    d.propose(null);
    expect(announced).toHaveLength(2);

    // B is reported within null's hold, then leaves before it ends: nothing about B is announced.
    await clock.advance(100);
    d.propose(B);
    d.retract(B.producerId);
    await clock.advance(2 * HOLD);
    expect(announced.map((x) => x.who)).toEqual(['a', null]);

    // Retracting someone who is not the speaker changes nothing.
    d.propose(C);
    d.retract(A.producerId);
    expect(announced.map((x) => x.who)).toEqual(['a', null, 'c']);
  });

  it('retract of the announced speaker keeps a newer report of someone else that waits for the hold', async () => {
    // The SFU reports each change once: when B took over during A's hold and A is then muted, B is
    // the dominant speaker there and will not be reported again. Dropping B for "nobody" left the
    // room with no speaker for good (the demo's e2e saw it: its speaker never highlighted).
    const { clock, d, announced } = setup();
    d.propose(A);
    await clock.advance(200);
    d.propose(B); // held back: A's hold runs
    d.retract(A.producerId); // A muted before the hold ends
    await clock.advance(HOLD);
    expect(announced).toEqual([
      { at: 0, who: 'a' },
      { at: HOLD, who: 'b' },
    ]);
    expect(d.current).toEqual(B);
    expect(clock.pending).toBe(0);

    // With nothing newer held back, the same retract still makes it nobody after the hold.
    d.retract(B.producerId);
    expect(announced.at(-1)).toEqual({ at: HOLD, who: 'b' });
    await clock.advance(HOLD);
    expect(announced.at(-1)).toEqual({ at: 2 * HOLD, who: null });
  });

  it('the announced speaker muted, then the one reported instead muted too within the hold: nobody is announced', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    await clock.advance(200);
    d.retract(A.producerId); // held back: "nobody" after A's hold
    d.propose(B); // the SFU's next dominant speaker replaces it...
    d.retract(B.producerId); // ...and is muted before the hold ends
    await clock.advance(HOLD);
    expect(announced).toEqual([
      { at: 0, who: 'a' },
      { at: HOLD, who: null },
    ]);
    expect(d.current).toBeNull();
    expect(clock.pending).toBe(0);
  });

  it('close drops what is held back, stops its timer and ignores later reports; idempotent', async () => {
    const { clock, d, announced } = setup();
    d.propose(A);
    d.propose(B);
    expect(clock.pending).toBe(1);
    d.close();
    d.close();
    d.close();
    expect(clock.pending).toBe(0);
    d.propose(C);
    await clock.advance(5 * HOLD);
    expect(announced.map((x) => x.who)).toEqual(['a']);
  });
});
