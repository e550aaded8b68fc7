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

describe('MemoryStateStore snapshot signals (copied on write)', () => {
  it('a snapshot keeps the signals it was read with through later writes and endpoint changes', async () => {
    const s = new MemoryStateStore();
    await s.replaceEndpoints([ep(1), ep(2)]);
    const a = { waitingQueueSize: 1, updatedAtMs: 1 };
    const b = { waitingQueueSize: 2, updatedAtMs: 2 };
    await s.writeSignals(ep(1).id, a);
    const first = await s.readSnapshot({});
    const second = await s.readSnapshot({});
    // No write between them: both read the same signals.
    expect([...second.signals]).toEqual([[ep(1).id, a]]);
    await s.writeSignals(ep(1).id, b);
    await s.writeSignals(ep(2).id, a);
    expect([...first.signals]).toEqual([[ep(1).id, a]]);
    expect([...second.signals]).toEqual([[ep(1).id, a]]);
    const third = await s.readSnapshot({});
    expect([...third.signals]).toEqual([
      [ep(1).id, b],
      [ep(2).id, a],
    ]);
    // Dropping an endpoint drops its signals from later snapshots only.
    await s.replaceEndpoints([ep(2)]);
    expect([...third.signals.keys()]).toEqual([ep(1).id, ep(2).id]);
    expect([...(await s.readSnapshot({})).signals]).toEqual([[ep(2).id, a]]);
    // Writes with no snapshot in between go to the same map (no copy needed), and are all seen.
    await s.writeSignals(ep(2).id, b);
    await s.writeSignals(ep(2).id, a);
    expect([...(await s.readSnapshot({})).signals]).toEqual([[ep(2).id, a]]);
  });
});
