/**
 * A user's sessions on this node, as the session index holds them: the one session itself (almost
 * every user has one device), a `Set` only from the second. A `Set` per user cost every idle
 * connection ~170 B of heap (the Set and its hash table; docs/benchmarks.md, Round 2).
 */
export type OneOrMore<S> = S | ReadonlySet<S>;

/** Whether the group holds more than one session (then it is a `Set`). */
export function isMore<S extends object>(group: OneOrMore<S>): group is ReadonlySet<S> {
  return group instanceof Set;
}

/** How many sessions the group holds. */
export function countOf<S extends object>(group: OneOrMore<S> | undefined): number {
  if (group === undefined) return 0;
  return isMore(group) ? group.size : 1;
}

/**
 * userId → that user's sessions on this node. Adding a second session turns the entry into a
 * `Set`; going back to one turns it back into the session itself; none removes the entry.
 */
export class UserSessions<S extends { readonly userId: string }> {
  readonly #byUser = new Map<string, S | Set<S>>();
  #epoch = 0;

  /**
   * Bumped by every add and delete that changes a group: whoever keeps something derived from a
   * user's sessions here (the call relay's ICE routes) knows it still holds while this is unchanged.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Users with at least one session here. */
  get users(): number {
    return this.#byUser.size;
  }

  get(userId: string): OneOrMore<S> | undefined {
    return this.#byUser.get(userId);
  }

  count(userId: string): number {
    return countOf(this.#byUser.get(userId));
  }

  /** The user's sessions as a new `Set` (a snapshot: later adds and deletes do not show in it). */
  setOf(userId: string): ReadonlySet<S> | undefined {
    const group = this.#byUser.get(userId);
    if (group === undefined) return undefined;
    return new Set(isMore(group) ? group : [group]);
  }

  add(session: S): void {
    const userId = session.userId;
    const group = this.#byUser.get(userId);
    if (group === undefined) this.#byUser.set(userId, session);
    else if (group instanceof Set) {
      if (group.has(session)) return;
      group.add(session);
    } else if (group !== session) this.#byUser.set(userId, new Set([group, session]));
    else return;
    this.#epoch++;
  }

  /** Removes `session` from its user's group; no-op if it is not there. */
  delete(session: S): void {
    const userId = session.userId;
    const group = this.#byUser.get(userId);
    if (group === undefined) return;
    if (!(group instanceof Set)) {
      if (group === session) {
        this.#byUser.delete(userId);
        this.#epoch++;
      }
      return;
    }
    if (!group.delete(session)) return;
    this.#epoch++;
    if (group.size === 1) this.#byUser.set(userId, group.values().next().value as S);
    else if (group.size === 0) this.#byUser.delete(userId);
  }
}
