import { MemoryState } from '../../../src/server/state/memory/memory-state.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { stateContract } from '../../state/state-contract.js';

// The memory store on a fake clock: its TTLs are stepped through exactly, nothing sleeps.
stateContract('memory', () => {
  const clock = new FakeClock();
  const store = new MemoryState({ clock });
  return Promise.resolve({ store, cleanup: () => store.close(), pass: (ms: number) => clock.advance(ms) });
});
