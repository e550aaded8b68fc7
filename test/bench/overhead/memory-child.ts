// Child process of the memory section (run with `node --expose-gc`): builds
// one structure and prints one JSON line with the heap growth per item.
//   endpoints N: MemoryStateStore with N endpoints, their signals and bucket
//                loads; then one decision's snapshot + endpoint views.
//   prefix N:    MemoryStateStore approximate prefix index (prefix-cache-scorer
//                records): N block hashes on one endpoint, then the same N
//                blocks recorded on a second endpoint.
//   indexer N:   the cache-indexer's CacheIndexer + MemoryIndexStore fed N
//                BlockStored blocks (32-byte producer hashes, 16 tokens each)
//                for one pod, then the same token chains for a second pod.
// Measured as heapUsed + external (digest Buffers live outside the heap)
// after two forced GCs, before and after; the inputs of each step are
// dropped before measuring, so only what the structure keeps is counted.
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { CacheIndexer } from '../../../src/cacheindexer/indexer.js';
import { MemoryIndexStore } from '../../../src/cacheindexer/memory-store.js';
import { IndexerMetrics } from '../../../src/cacheindexer/metrics.js';
import { endpointViews } from '../../../src/director/director.js';
import { encodeBatch, type BlockStored } from '../../../src/kvcache/events.js';
import { textBlockKeys } from '../../../src/request/prefix-hash.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import type { PickCommit, StateSnapshot } from '../../../src/state/store.js';
import { aggregatedEndpoints } from '../sim/cluster-layout.js';
import { Rng, randomText } from '../sim/rng.js';

const gc = (globalThis as { gc?: () => void }).gc;

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

function commit(id: string, endpointId: string, extra: Partial<PickCommit['charges']>): PickCommit {
  return {
    chargeId: id,
    charges: { inFlight: [endpointId], ...extra },
    leaseMs: 60_000,
    prefixCapacityPerEndpoint: 10_000_000,
    decision: {
      requestId: id,
      atMs: 0,
      model: 'm',
      profile: 'bench',
      endpoint: endpointId,
      promptTokens: 0,
      score: 0,
    },
  };
}

async function endpoints(n: number): Promise<Record<string, number>> {
  // decisionsLimit 1: the recent-decisions list is per request, not per endpoint.
  const store = new MemoryStateStore({ decisionsLimit: 1 });
  const before = used();
  {
    const eps = aggregatedEndpoints(n).map((e, i) => ({
      ...e,
      // Labels as discovery delivers them (pod labels of a typical vLLM deployment).
      labels: { app: 'vllm', 'pod-template-hash': `h${i % 7}`, 'openfuyao.com/pdRole': 'decode' },
    }));
    await store.replaceEndpoints(eps);
    const now = Date.now();
    for (const [i, e] of eps.entries()) {
      await store.writeSignals(e.id, {
        waitingQueueSize: i % 9,
        runningRequests: i % 31,
        kvCacheUsage: 0.5,
        updatedAtMs: now,
      });
      const r = await store.commitPick(
        commit(`r${i}`, e.id, {
          bucket: { decayFactor: 0.98, items: [{ endpointId: e.id, bucket: 'short', amount: 100 }] },
        }),
      );
      await store.release(r);
    }
  }
  const afterStore = used();
  // One decision's transient data: the snapshot and the views the plugins see.
  const snap: StateSnapshot = await store.readSnapshot({ bucketLoads: true });
  const views = endpointViews(snap, Date.now(), 2_000);
  const afterViews = used();
  if (views.length !== n) throw new Error('views lost endpoints');
  return {
    storeBytesPerEndpoint: (afterStore - before) / n,
    viewBytesPerEndpoint: (afterViews - afterStore) / n,
  };
}

async function prefix(n: number): Promise<Record<string, number>> {
  const store = new MemoryStateStore({ decisionsLimit: 1 });
  const rng = new Rng(7);
  // Prompts of 256 blocks of 16 tokens (the scorer's defaults), recorded as picks would.
  const prompts = Math.ceil(n / 256);
  const texts = Array.from({ length: prompts }, (_, i) => `p${i} ` + randomText(rng, 256 * 16 * 4));
  const record = async (endpointId: string) => {
    for (const [i, text] of texts.entries()) {
      const hashes = textBlockKeys(text, 'm', 16, 256);
      const r = await store.commitPick(
        commit(`${endpointId}-${i}`, endpointId, { prefixRecord: { endpointId, hashes } }),
      );
      await store.release(r);
    }
  };
  const blocks = prompts * 256;
  const before = used();
  await record('10.0.0.1:8000');
  const afterOne = used();
  await record('10.0.0.2:8000');
  const afterTwo = used();
  const m = (await store.readSnapshot({ prefixHashes: textBlockKeys(texts[0]!, 'm', 16, 256) }))
    .prefixMatches;
  if (m?.get('10.0.0.2:8000') !== 256) throw new Error('prefix index did not record the blocks');
  return {
    bytesPerBlock: (afterOne - before) / blocks,
    bytesPerExtraHolder: (afterTwo - afterOne) / blocks,
    blocks,
  };
}

async function indexer(n: number): Promise<Record<string, number>> {
  const log = pino({ level: 'silent' });
  const store = new MemoryIndexStore();
  const late: { idx?: CacheIndexer } = {};
  const metrics = new IndexerMetrics(() => late.idx?.totals() ?? { pods: 0, blocks: 0 });
  const idx = new CacheIndexer(store, { blockSize: 16, maxLookupBlocks: 8192, log, metrics });
  late.idx = idx;
  const rng = new Rng(11);
  // Chains of 64 blocks, as a prompt's blocks arrive in one BlockStored event.
  const chains = Math.ceil(n / 64);
  const tokens = Array.from({ length: chains }, () =>
    Array.from({ length: 64 * 16 }, () => rng.int(0, 150_000)),
  );
  const feed = async (pod: string) => {
    let seq = 0n;
    for (const t of tokens) {
      const ev: BlockStored = {
        type: 'BlockStored',
        blockHashes: Array.from({ length: 64 }, () => new Uint8Array(randomBytes(32))),
        parentBlockHash: null,
        tokenIds: t,
        blockSize: 16,
        loraId: null,
        medium: null,
        loraName: null,
      };
      idx.onMessage(pod, 'bench', seq++, encodeBatch({ ts: 0, events: [ev], dataParallelRank: null }));
    }
    await idx.settled();
  };
  const blocks = chains * 64;
  const before = used();
  await feed('10.0.0.1:8000');
  const afterOne = used();
  await feed('10.0.0.2:8000');
  const afterTwo = used();
  if (idx.totals().blocks !== 2 * blocks)
    throw new Error(`indexed ${idx.totals().blocks} blocks, expected ${2 * blocks}`);
  return {
    bytesPerBlock: (afterOne - before) / blocks,
    bytesPerExtraHolder: (afterTwo - afterOne) / blocks,
    blocks,
  };
}

async function main(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const [kind, nRaw] = process.argv.slice(2);
  const n = Number(nRaw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive count, got "${nRaw}"`);
  const fn = { endpoints, prefix, indexer }[kind ?? ''];
  if (!fn) throw new Error(`unknown kind "${kind}" (endpoints | prefix | indexer)`);
  process.stdout.write(JSON.stringify({ kind, n, ...(await fn(n)) }) + '\n');
}

await main();
