import { MemoryState } from '../../../src/server/state/memory/memory-state.js';
import { stateContract } from '../../state/state-contract.js';

stateContract('memory', () => {
  const store = new MemoryState();
  return Promise.resolve({ store, cleanup: () => store.close() });
});
