import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { stateStoreContract } from './contract.js';

stateStoreContract({
  name: 'memory',
  async open(n, opts) {
    // One replica's store: every handle is the same instance.
    const s = new MemoryStateStore({ decisionsLimit: opts?.decisionsLimit });
    return Array.from({ length: n }, () => s);
  },
});
