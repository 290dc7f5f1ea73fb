/**
 * A request's result, and the announcement it causes (broadcasts, notices to other members) held
 * back until the requester has its reply: SPEC §9, "a request's reply goes to the requester before
 * any broadcast that the request causes". The dispatcher sends the reply, then runs `announce`.
 */
export interface Announced<T> {
  readonly result: T;
  readonly announce: () => void | Promise<void>;
}

/** For a request that changed nothing anyone else needs to hear about. */
export const nothingToAnnounce = (): void => undefined;
