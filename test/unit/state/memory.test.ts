import { describe, expect, it } from 'vitest';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { commit, ep, stateStoreContract } from './contract.js';

stateStoreContract({
  name: 'memory',
  async open(n, opts) {
    // One replica's store: every handle is the same instance.
    const s = new MemoryStateStore({ decisionsLimit: opts?.decisionsLimit });
    return Array.from({ length: n }, () => s);
  },
});

describe('MemoryStateStore recent decisions (a ring)', () => {
  it('keeps the last decisionsLimit, newest first, as a list trimmed from the front would', async () => {
    for (const limit of [0, 1, 3, 5]) {
      const s = new MemoryStateStore({ decisionsLimit: limit });
      await s.replaceEndpoints([ep(1)]);
      const kept: string[] = [];
      for (let i = 0; i < 12; i++) {
        await s.release(await s.commitPick(commit(`d${i}`, { inFlight: [ep(1).id] })));
        kept.push(`d${i}`);
        if (kept.length > limit) kept.splice(0, kept.length - limit);
        for (const asked of [0, -1, 1, 2, 2.5, 4, 100, Infinity, NaN]) {
          const want = asked > 0 ? kept.slice(-asked).reverse() : [];
          expect((await s.recentDecisions(asked)).map((d) => d.requestId)).toEqual(want);
        }
      }
    }
  });
});
