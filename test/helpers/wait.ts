/**
 * Waiting in tests. Prefer `waitUntil` (or an event) for "until something happens": it returns as
 * soon as the thing happens and its deadline only bounds a failure. `sleep` is for the two cases
 * where time itself is the point: proving that something does NOT happen during a window, and
 * pacing a load generator. Name why at each call site.
 */

/** Resolves after `ms` of wall-clock time. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 3_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(everyMs);
  }
}
