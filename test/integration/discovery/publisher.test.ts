// One replica at a time writes discovery into the shared state; the others
// take over when it stops renewing; a failing store blocks nobody.
import { describe, expect, it } from 'vitest';
import { LeasedPublisher } from '../../../src/discovery/k8s-publisher.js';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { eventually } from '../../helpers/wait.js';

const ep = (n: number): Endpoint => ({
  id: `10.0.0.${n}:8000`,
  name: `p${n}`,
  address: `10.0.0.${n}`,
  port: 8000,
  labels: {},
});

function countingStore() {
  const store = new MemoryStateStore();
  const writes: { by: string; ids: string[] }[] = [];
  const wrapped = (holder: string) => ({
    tryAcquireLease: (name: string, h: string, ttl: number) => store.tryAcquireLease(name, h, ttl),
    replaceEndpoints: async (eps: readonly Endpoint[]) => {
      writes.push({ by: holder, ids: eps.map((e) => e.id) });
      await store.replaceEndpoints(eps);
    },
  });
  return { writes, wrapped };
}

describe('LeasedPublisher', () => {
  it('only the lease holder writes; another replica takes over when it stops', async () => {
    const { writes, wrapped } = countingStore();
    const a = new LeasedPublisher({ store: wrapped('a'), holder: 'epp-a', ttlMs: 300 });
    const b = new LeasedPublisher({ store: wrapped('b'), holder: 'epp-b', ttlMs: 300 });
    a.update([ep(1)]);
    await a.tick(); // a takes the lease first
    b.update([ep(1)]);
    a.start();
    b.start();
    await eventually(() => writes.length >= 1, 1_000, 'first write');
    a.update([ep(1), ep(2)]);
    b.update([ep(1), ep(2)]);
    await eventually(() => writes.some((w) => w.ids.length === 2), 1_000, 'second write');
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(new Set(writes.map((w) => w.by))).toEqual(new Set(['a']));

    // a goes away (stops renewing); b takes over within the TTL and writes its current set.
    await a.stop();
    b.update([ep(2)]);
    await eventually(() => b.isLeader, 1_500, 'b takes the lease');
    await eventually(() => writes.at(-1)?.by === 'b', 1_000, 'b writes');
    expect(writes.at(-1)?.ids).toEqual(['10.0.0.2:8000']);
    await b.stop();
  });

  it('a failing store is reported and retried, never thrown', async () => {
    const errors: Error[] = [];
    let fail = true;
    const written: string[][] = [];
    const p = new LeasedPublisher({
      store: {
        tryAcquireLease: async () => {
          if (fail) throw new Error('ECONNREFUSED');
          return true;
        },
        replaceEndpoints: async (eps) => {
          written.push(eps.map((e) => e.id));
        },
      },
      holder: 'epp-a',
      ttlMs: 150,
      onError: (e) => errors.push(e),
    });
    p.update([ep(1)]);
    p.start();
    await eventually(() => errors.length >= 2, 1_000, 'errors reported');
    expect(p.isLeader).toBe(false);
    expect(written).toEqual([]);
    fail = false;
    await eventually(() => written.length === 1, 1_000, 'written after recovery');
    expect(written[0]).toEqual(['10.0.0.1:8000']);
    await p.stop();
  });

  it('the leader rewrites its set periodically, so a flushed store heals', async () => {
    const { writes, wrapped } = countingStore();
    let t = 1_000_000;
    const p = new LeasedPublisher({
      store: wrapped('a'),
      holder: 'epp-a',
      ttlMs: 10_000,
      republishMs: 5_000,
      now: () => t,
    });
    p.update([ep(1)]);
    await p.tick();
    expect(writes).toHaveLength(1);
    t += 1_000;
    await p.tick();
    expect(writes).toHaveLength(1); // nothing changed, not due yet
    t += 5_000;
    await p.tick();
    expect(writes).toHaveLength(2);
    expect(writes[1]!.ids).toEqual(['10.0.0.1:8000']);
    await p.stop();
  });
});
