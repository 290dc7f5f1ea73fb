/** What the exit hook calls: write everything still buffered, synchronously. */
export interface SyncFlushable {
  flushSync(): void;
}

/**
 * Buffers that must reach their file descriptor when the process exits, `process.exit()` included:
 * on 'exit' there is no event loop left, so each is flushed synchronously. One 'exit' listener
 * serves them all, installed with the first and removed with the last, so a test file that creates
 * a thousand loggers adds one listener, not a thousand (Node warns past ten). Entries are weak
 * references, as in on-exit-leak-free (what pino uses for sonic-boom): a stream its owner dropped
 * without closing can still be collected. A stream holding lines is never dropped that way: its
 * pending timer or write keeps it reachable.
 */
const entries = new Set<WeakRef<SyncFlushable>>();
const refs = new WeakMap<SyncFlushable, WeakRef<SyncFlushable>>();
const collected = new FinalizationRegistry<WeakRef<SyncFlushable>>((ref) => forget(ref));

function onExit(): void {
  for (const ref of entries) {
    try {
      ref.deref()?.flushSync();
    } catch {
      // One failing stream must not keep the others from flushing; nothing is left to report to.
    }
  }
}

export function flushOnExit(stream: SyncFlushable): void {
  if (refs.has(stream)) return;
  const ref = new WeakRef(stream);
  refs.set(stream, ref);
  collected.register(stream, ref, ref);
  if (entries.size === 0) process.on('exit', onExit);
  entries.add(ref);
}

export function stopFlushingOnExit(stream: SyncFlushable): void {
  const ref = refs.get(stream);
  if (ref === undefined) return;
  refs.delete(stream);
  collected.unregister(ref);
  forget(ref);
}

function forget(ref: WeakRef<SyncFlushable>): void {
  if (!entries.delete(ref)) return;
  if (entries.size === 0) process.removeListener('exit', onExit);
}
