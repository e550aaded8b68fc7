// mock-vllm's block pool and scheduler (no network).
import { describe, expect, it } from 'vitest';
import { KvBlockManager } from '../../../src/mockvllm/kv-cache.js';
import { CapacityError, Engine } from '../../../src/mockvllm/engine.js';
import { chainBlockHashes } from '../../../src/kvcache/block-hash.js';
import type { KvEvent } from '../../../src/kvcache/events.js';

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function pool(blocks: number) {
  const events: KvEvent[] = [];
  const kv = new KvBlockManager(blocks, 4, (e) => events.push(e));
  return { kv, events };
}

describe('mock-vllm KV block pool', () => {
  it('stores new full blocks once, hits them later, and evicts least recently freed blocks tail first', () => {
    const { kv, events } = pool(4);
    const t1 = range(1, 8);
    const h1 = chainBlockHashes(t1, 4);
    const a1 = kv.allocate(h1, t1, 0)!;
    expect(a1.hitBlocks).toBe(0);
    expect(events).toEqual([
      expect.objectContaining({ type: 'BlockStored', blockHashes: h1, parentBlockHash: null, tokenIds: t1 }),
    ]);
    expect(kv.usedBlocks).toBe(2);
    kv.release(a1);
    expect(kv.usedBlocks).toBe(0);
    const a2 = kv.allocate(h1, t1, 1)!;
    expect(a2.hitBlocks).toBe(2);
    expect(events).toHaveLength(1);
    kv.release(a2);
    // 3 new blocks in a pool of 4 with 2 cached: one goes, the tail one (h1[1]).
    const t2 = range(100, 12);
    const a3 = kv.allocate(chainBlockHashes(t2, 4), t2, 0)!;
    expect(events[1]).toEqual({ type: 'BlockRemoved', blockHashes: [h1[1]], medium: 'GPU' });
    expect(kv.matchPrefix(h1)).toBe(1);
    // Full: a request that needs a block waits (null), changing nothing.
    expect(kv.allocate(h1, t1, 1)).toBeNull();
    expect(kv.usedBlocks).toBe(3);
    kv.release(a3);
    expect(kv.reset()).toBe(true);
    expect(events.at(-1)).toEqual({ type: 'AllBlocksCleared' });
  });

  it('a child block chained to an earlier stored parent names that parent', () => {
    const { kv, events } = pool(8);
    const t = range(1, 12);
    const h = chainBlockHashes(t, 4);
    kv.release(kv.allocate(h.slice(0, 1), t.slice(0, 4), 0)!);
    kv.allocate(h, t, 0);
    expect(events[1]).toMatchObject({
      type: 'BlockStored',
      blockHashes: h.slice(1),
      parentBlockHash: h[0],
      tokenIds: t.slice(4),
    });
  });
});

describe('mock-vllm scheduler', () => {
  it('runs at most max-num-seqs, queues the rest FIFO, and rejects what can never fit', async () => {
    const { kv } = pool(100);
    const engine = new Engine(kv, 2);
    const job = (n: number) => ({
      hashes: chainBlockHashes(range(n, 8), 4),
      tokens: range(n, 8),
      promptTokens: 8,
      maxTokens: 4,
    });
    const order: number[] = [];
    const admissions = [1, 2, 3, 4].map((n) => engine.submit(job(n * 1000)).then((a) => (order.push(n), a)));
    await new Promise((r) => setTimeout(r, 0));
    expect(engine.running).toBe(2);
    expect(engine.waiting).toBe(2);
    const [a1, a2] = await Promise.all(admissions.slice(0, 2));
    engine.finish(a1!);
    await new Promise((r) => setTimeout(r, 0));
    expect(order).toEqual([1, 2, 3]);
    engine.finish(a2!);
    engine.finish(await admissions[2]!);
    engine.finish(await admissions[3]!);
    expect(engine.running).toBe(0);
    expect(kv.usedBlocks).toBe(0);
    await expect(
      engine.submit({ hashes: [], tokens: [], promptTokens: 1000, maxTokens: 1 }),
    ).rejects.toBeInstanceOf(CapacityError);
  });

  it('removes an aborted waiter from the queue', async () => {
    const { kv } = pool(100);
    const engine = new Engine(kv, 1);
    const j = { hashes: [], tokens: [], promptTokens: 1, maxTokens: 1 };
    const first = await engine.submit(j);
    const ac = new AbortController();
    const waiting = engine.submit(j, ac.signal);
    expect(engine.waiting).toBe(1);
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(engine.waiting).toBe(0);
    engine.finish(first);
    expect(engine.running).toBe(0);
  });
});
