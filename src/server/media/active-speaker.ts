import type { Clock, Timer } from '../time/clock.js';

/** Who speaks in a conference room, as `room:active-speaker` names them. */
export interface ActiveSpeaker {
  readonly userId: string;
  readonly sessionId: string;
  /** The speaker's audio producer. */
  readonly producerId: string;
}

const same = (a: ActiveSpeaker | null, b: ActiveSpeaker | null): boolean =>
  a === b || (a !== null && b !== null && a.producerId === b.producerId);

/**
 * Turns the SFU's dominant-speaker reports into announcements that do not flap: the first speaker
 * is announced at once; after that, an announced speaker (or silence) stays announced at least
 * `holdMs`. Reports that arrive meanwhile are held back and only the latest counts: it is
 * announced when the hold ends, unless it is the one announced already (A → B → A within a hold
 * announces nothing). `null` (the speaker muted, unpublished or left) follows the same rule.
 */
export class ActiveSpeakerDebouncer {
  readonly #clock: Clock;
  readonly #holdMs: number;
  readonly #announce: (speaker: ActiveSpeaker | null) => void;
  #current: ActiveSpeaker | null = null;
  /** The announced speaker was retracted (muted, gone) and nothing has been announced since. */
  #currentSilenced = false;
  /** Monotonic time of the last announcement; null before the first. */
  #announcedAt: number | null = null;
  /** The latest report held back by the hold (undefined: none). */
  #pending: ActiveSpeaker | null | undefined = undefined;
  #timer: Timer | null = null;
  #closed = false;

  constructor(deps: { clock: Clock; holdMs: number; announce: (speaker: ActiveSpeaker | null) => void }) {
    this.#clock = deps.clock;
    this.#holdMs = deps.holdMs;
    this.#announce = deps.announce;
  }

  /** The speaker announced last (null: nobody, or nothing announced yet). */
  get current(): ActiveSpeaker | null {
    return this.#current;
  }

  /** The SFU reports a (new) dominant speaker, or that there is none. */
  propose(speaker: ActiveSpeaker | null): void {
    if (this.#closed) return;
    if (this.#timer) {
      this.#pending = speaker; // the hold is running: the latest report wins when it ends
      return;
    }
    if (same(speaker, this.#current)) return;
    const since = this.#announcedAt === null ? Infinity : this.#clock.monotonic() - this.#announcedAt;
    if (since >= this.#holdMs) {
      this.#set(speaker);
      return;
    }
    this.#pending = speaker;
    this.#timer = this.#clock.setTimeout(() => this.#holdEnded(), this.#holdMs - since);
  }

  /**
   * A speaker's producer went silent for good or for now (muted, unpublished, left): a held-back
   * report of it is dropped, and if it is the announced one, nobody is (subject to the hold),
   * unless a report of another speaker is held back already: that one stands. The SFU reports a
   * change once, so replacing it with "nobody" would leave the room without a speaker until the
   * SFU's dominant speaker changed again, which with one voice left it never does.
   */
  retract(producerId: string): void {
    // A held-back report dropped while the announced speaker is silenced: nobody is next, as the
    // silenced speaker's own retract had said before that report replaced it.
    if (this.#pending?.producerId === producerId) this.#pending = this.#currentSilenced ? null : undefined;
    if (this.#current?.producerId !== producerId) return;
    this.#currentSilenced = true;
    if (this.#pending !== undefined && this.#pending !== null) return;
    this.propose(null);
  }

  /** Stops announcing; a held-back report is dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending = undefined;
  }

  #holdEnded(): void {
    this.#timer = null;
    const next = this.#pending;
    this.#pending = undefined;
    if (next === undefined || this.#closed) return;
    this.propose(next);
  }

  #set(speaker: ActiveSpeaker | null): void {
    this.#current = speaker;
    this.#currentSilenced = false;
    this.#announcedAt = this.#clock.monotonic();
    this.#announce(speaker);
  }
}
