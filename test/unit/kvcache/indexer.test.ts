// Index semantics of the cache-indexer, fed with encoded event batches.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { CacheIndexer } from '../../../src/cacheindexer/indexer.js';
import { MemoryIndexStore } from '../../../src/cacheindexer/memory-store.js';
import { IndexerMetrics } from '../../../src/cacheindexer/metrics.js';
import { chainBlockHashes, rootHash } from '../../../src/kvcache/block-hash.js';
import {
  encodeBatch,
  type BlockHash,
  type KvEvent,
  type PayloadEncoding,
} from '../../../src/kvcache/events.js';

const BS = 4;
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';

function setup() {
  const store = new MemoryIndexStore();
  const late: { ix?: CacheIndexer } = {};
  const metrics = new IndexerMetrics(() => late.ix!.totals());
  const ix = new CacheIndexer(store, {
    blockSize: BS,
    maxLookupBlocks: 1000,
    log: pino({ level: 'silent' }),
    metrics,
  });
  late.ix = ix;
  const seqs = new Map<string, bigint>();
  const send = (pod: string, events: KvEvent[], opts: { seq?: bigint; encoding?: PayloadEncoding } = {}) => {
    const seq = opts.seq ?? (seqs.get(pod) ?? -1n) + 1n;
    seqs.set(pod, seq);
    ix.onMessage(
      pod,
      'connect',
      seq,
      encodeBatch({ ts: 1, events, dataParallelRank: 0 }, opts.encoding ?? 'map'),
    );
  };
  return { ix, store, metrics, send };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** A BlockStored for `tokens` (whole blocks) under producer hashes `ids`, chained to `parent`. */
function stored(
  ids: BlockHash[],
  tokens: number[],
  parent: BlockHash | null = null,
  extra: Partial<KvEvent> = {},
): KvEvent {
  return {
    type: 'BlockStored',
    blockHashes: ids,
    parentBlockHash: parent,
    tokenIds: tokens,
    blockSize: BS,
    loraId: null,
    medium: 'GPU',
    loraName: null,
    ...extra,
  } as KvEvent;
}

async function rates(ix: CacheIndexer, tokens: number[], cands = [A, B], model = 'm') {
  await ix.settled();
  const r = await ix.match(model, tokens, cands);
  return Object.fromEntries(r.map((x) => [x.endpoint, [x.matchedBlocks, x.totalBlocks]]));
}

describe('cache-indexer index semantics', () => {
  it('matches leading blocks per pod from BlockStored token ids, whatever the producer hashes are', async () => {
    const { ix, send } = setup();
    const prompt = range(100, 17); // 4 full blocks + 1 token
    // Pod A: 3 blocks in two events (child chained to a producer parent); producer hashes are uint64 ints.
    send(A, [stored([2n ** 64n - 1n, 2n ** 63n + 1n], prompt.slice(0, 8))]);
    send(A, [stored([2n ** 63n + 2n], prompt.slice(8, 12), 2n ** 63n + 1n)]);
    // Pod B: only the first block, under byte hashes.
    send(B, [stored([new Uint8Array(32).fill(1)], prompt.slice(0, 4))]);
    expect(await rates(ix, prompt)).toEqual({ [A]: [3, 4], [B]: [1, 4] });
    await ix.settled();
    const res = await ix.match('m', prompt, [B, '1.2.3.4:1', A]);
    expect(res.map((r) => r.endpoint)).toEqual([A, B, '1.2.3.4:1']);
    expect(res[0]!.hitRate).toBeCloseTo(0.75);
    expect(res[2]).toEqual({ endpoint: '1.2.3.4:1', hitRate: 0, matchedBlocks: 0, totalBlocks: 4 });
    // A different first block matches nothing, even if later blocks are equal.
    expect(await rates(ix, [0, ...prompt.slice(1)])).toEqual({ [A]: [0, 4], [B]: [0, 4] });
  });

  it('keys agree with the producer hashes of this project (mock-vllm)', async () => {
    const { ix, send } = setup();
    const tokens = range(1, 8);
    send(A, [stored(chainBlockHashes(tokens, BS), tokens)], { encoding: 'array' });
    expect(await rates(ix, tokens)).toEqual({ [A]: [2, 2], [B]: [0, 2] });
  });

  it('applies removals: a removed block ends the run, its children stay but are unreachable', async () => {
    const { ix, send } = setup();
    const tokens = range(1, 12);
    send(A, [stored([1, 2, 3], tokens)]);
    send(A, [{ type: 'BlockRemoved', blockHashes: [3], medium: 'GPU' }]);
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [2, 3] });
    send(A, [{ type: 'BlockRemoved', blockHashes: [1], medium: 'GPU' }]);
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [0, 3] });
    expect(ix.totals().blocks).toBe(1);
  });

  it('keeps a block held on another medium until its last copy goes', async () => {
    const { ix, send } = setup();
    const tokens = range(1, 4);
    send(A, [stored([1], tokens), stored([1], tokens, null, { medium: 'CPU' })]);
    send(A, [{ type: 'BlockRemoved', blockHashes: [1], medium: 'GPU' }]);
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [1, 1] });
    send(A, [{ type: 'BlockRemoved', blockHashes: [1], medium: 'CPU' }]);
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [0, 1] });
  });

  it('AllBlocksCleared empties only that pod', async () => {
    const { ix, send } = setup();
    const tokens = range(1, 8);
    send(A, [stored([1, 2], tokens)]);
    send(B, [stored([5, 6], tokens)]);
    send(A, [{ type: 'AllBlocksCleared' }]);
    expect(await rates(ix, tokens)).toEqual({ [A]: [0, 2], [B]: [2, 2] });
    // Stored again after the clear in the same batch: held.
    send(B, [{ type: 'AllBlocksCleared' }, stored([7], tokens.slice(0, 4))]);
    expect(await rates(ix, tokens)).toEqual({ [A]: [0, 2], [B]: [1, 2] });
  });

  it('counts sequence gaps and marks the pod incomplete; a sequence going back clears the pod', async () => {
    const { ix, send, metrics } = setup();
    const tokens = range(1, 8);
    send(A, [stored([1], tokens.slice(0, 4))], { seq: 0n });
    send(A, [stored([2], tokens.slice(4, 8), 1)], { seq: 5n });
    const gaps = await metrics.gaps.get();
    expect(gaps.values[0]!.value).toBe(1);
    expect((await metrics.missedBatches.get()).values[0]!.value).toBe(4);
    expect(ix.status().find((p) => p.pod === A)).toMatchObject({ gaps: 1, incomplete: true, lastSeq: '5' });
    // Kept: what the index still knows stays usable.
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [2, 2] });
    // Restarted producer (sequence back to 0): its cache is empty, so is its index.
    send(A, [stored([9], tokens.slice(0, 4))], { seq: 0n });
    expect(await rates(ix, tokens)).toMatchObject({ [A]: [1, 2] });
    expect((await metrics.producerRestarts.get()).values[0]!.value).toBe(1);
  });

  it('skips blocks whose parent it never saw and removals of unknown blocks, counting both', async () => {
    const { ix, send, metrics } = setup();
    send(A, [stored([2], range(5, 4), 1), { type: 'BlockRemoved', blockHashes: [42], medium: 'GPU' }]);
    expect(ix.totals().blocks).toBe(0);
    const vals = (await metrics.anomalies.get()).values;
    expect(vals.find((v) => v.labels.kind === 'orphan')?.value).toBe(1);
    expect(vals.find((v) => v.labels.kind === 'unknown_removal')?.value).toBe(1);
  });

  it('drops undecodable batches and forgets pods that left', async () => {
    const { ix, send, metrics } = setup();
    ix.onMessage(A, 'connect', 0n, new Uint8Array([0xc1]));
    expect((await metrics.decodeErrors.get()).values[0]!.value).toBe(1);
    send(B, [stored([1], range(1, 4))]);
    ix.dropPod(B);
    expect(ix.totals()).toEqual({ pods: 0, blocks: 0 });
    expect(await rates(ix, range(1, 4))).toEqual({ [A]: [0, 1], [B]: [0, 1] });
  });

  it('matches LoRA blocks when the request names the adapter', async () => {
    const { ix, send } = setup();
    const tokens = range(1, 8);
    send(A, [stored([1, 2], tokens, null, { loraName: 'sql-adapter' })]);
    expect(await rates(ix, tokens, [A], 'base')).toEqual({ [A]: [0, 2] });
    expect(await rates(ix, tokens, [A], 'sql-adapter')).toEqual({ [A]: [2, 2] });
    expect(chainBlockHashes(tokens, BS, rootHash('sql-adapter'))).toHaveLength(2);
  });
});
