// KV event decoding under garbage: arbitrary bytes and arbitrary msgpack
// documents either decode or fail with KvEventDecodeError; structurally
// valid batches with hostile values never make the indexer throw; and a
// spawned cache-indexer bound with --kv-events-bind survives garbage ZMQ
// frames (wrong frame counts, bad topics, bad sequence frames, junk
// payloads), counts them, and keeps indexing the valid batches after them.
import { Encoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import pino from 'pino';
import { Publisher } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheIndexer } from '../../src/cacheindexer/indexer.js';
import { MemoryIndexStore } from '../../src/cacheindexer/memory-store.js';
import { IndexerMetrics } from '../../src/cacheindexer/metrics.js';
import {
  decodeBatch,
  encodeBatch,
  encodeSeq,
  KvEventDecodeError,
  podTopic,
  type EventBatch,
} from '../../src/kvcache/events.js';
import { tokenizeSimple } from '../../src/request/tokens.js';
import { freePort } from '../helpers/ports.js';
import { hostileMsgpack } from './arbitraries.js';
import { getText, metricSum, spawnFn, stopAllSpawned, type SpawnedFn } from '../helpers/spawn.js';

const RUN = { numRuns: 1_000, interruptAfterTimeLimit: 5_000, markInterruptAsFailure: false } as const;
const enc = new Encoder({ useBigInt64: true });

function decodeOutcome(bytes: Uint8Array): 'ok' | 'error' {
  try {
    const b = decodeBatch(bytes);
    expect(Array.isArray(b.events)).toBe(true);
    return 'ok';
  } catch (e) {
    if (!(e instanceof KvEventDecodeError))
      throw new Error(
        `decodeBatch threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${Buffer.from(bytes).toString('hex').slice(0, 200)}`,
      );
    expect(e.message.length).toBeGreaterThan(0);
    return 'error';
  }
}

const hash = fc.oneof(
  fc.uint8Array({ maxLength: 33 }),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 4 }),
  fc.constant(null),
);
const junk = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.string({ maxLength: 10 }),
  fc.uint8Array({ maxLength: 8 }),
  fc.array(fc.integer(), { maxLength: 4 }),
);
const tokenList = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 40 }),
  fc.array(fc.oneof(fc.integer(), fc.double(), fc.bigInt({ min: -1n, max: 2n ** 40n })), { maxLength: 10 }),
  junk,
);
const storedMap = fc.record(
  {
    type: fc.constant('BlockStored'),
    block_hashes: fc.oneof(fc.array(hash, { maxLength: 6 }), junk),
    parent_block_hash: fc.oneof(hash, junk),
    token_ids: tokenList,
    block_size: fc.oneof(fc.constantFrom(0, -1, 1, 4, 16, 2 ** 31), junk),
    lora_id: junk,
    medium: fc.oneof(fc.constantFrom('GPU', 'CPU', null), junk),
    lora_name: fc.oneof(fc.constantFrom(null, 'lora-a'), junk),
  },
  { requiredKeys: ['type'] },
);
const removedMap = fc.record(
  {
    type: fc.constant('BlockRemoved'),
    block_hashes: fc.oneof(fc.array(hash, { maxLength: 6 }), junk),
    medium: fc.oneof(fc.constantFrom('GPU', null), junk),
  },
  { requiredKeys: ['type'] },
);
const eventDoc = fc.oneof(
  storedMap,
  removedMap,
  fc.constant({ type: 'AllBlocksCleared' }),
  fc.record({ type: fc.oneof(fc.string({ maxLength: 12 }), junk) }),
  junk,
  fc.array(junk, { maxLength: 8 }),
  storedMap.map((m) => Object.values(m)),
);
const batchDoc = fc.oneof(
  fc.record(
    {
      ts: fc.oneof(fc.double(), junk),
      events: fc.oneof(fc.array(eventDoc, { maxLength: 6 }), junk),
      data_parallel_rank: junk,
    },
    { requiredKeys: [] },
  ),
  fc.tuple(fc.oneof(fc.double(), junk), fc.oneof(fc.array(eventDoc, { maxLength: 6 }), junk), junk),
  junk,
);

function encodeAny(v: unknown): Uint8Array {
  try {
    return enc.encode(v);
  } catch {
    return enc.encode(null);
  }
}

describe('KV event codec under fuzzing', () => {
  it('arbitrary bytes: a batch or KvEventDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void decodeOutcome(b)),
      RUN,
    );
  });

  it('arbitrary msgpack documents shaped like batches: a batch or KvEventDecodeError', () => {
    fc.assert(
      fc.property(batchDoc, (doc) => void decodeOutcome(encodeAny(doc))),
      RUN,
    );
  });

  it('hostile msgpack headers (huge declared lengths, deep nesting, extension types): KvEventDecodeError', () => {
    for (const [, bytes] of hostileMsgpack()) expect(decodeOutcome(bytes)).toBe('error');
  });

  it('structurally valid batches with hostile values never make the indexer throw', async () => {
    const metrics = new IndexerMetrics(() => ({ pods: 0, blocks: 0 }));
    const indexer = new CacheIndexer(new MemoryIndexStore(), {
      blockSize: 4,
      maxLookupBlocks: 64,
      log: pino({ level: 'silent' }),
      metrics,
    });
    let seq = 0n;
    fc.assert(
      fc.property(
        fc.constantFrom('10.0.0.1:8000', '10.0.0.2:8000'),
        batchDoc,
        fc.boolean(),
        (pod, doc, jump) => {
          seq += jump ? 5n : 1n;
          indexer.onMessage(pod, 'fuzz', seq, encodeAny(doc));
        },
      ),
      RUN,
    );
    await indexer.settled();
    const r = await indexer.match('m', tokenizeSimple('hello world hello world'), [
      '10.0.0.1:8000',
      '10.0.0.2:8000',
    ]);
    expect(r).toHaveLength(2);
    for (const x of r) expect(x.hitRate >= 0 && x.hitRate <= 1).toBe(true);
  });
});

describe('a spawned cache-indexer fed garbage ZMQ frames', () => {
  let indexer: SpawnedFn;
  let url = '';
  let pub: Publisher;

  beforeAll(async () => {
    const [hp, kp] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${hp}`;
    indexer = await spawnFn(
      'cache-indexer',
      [
        '--host',
        '127.0.0.1',
        '--port',
        String(hp),
        '--kv-events-bind',
        `tcp://127.0.0.1:${kp}`,
        '--block-size',
        '4',
        '--log-level',
        'warn',
      ],
      { ready: { http: `${url}/healthz` } },
    );
    pub = new Publisher({ linger: 0 });
    pub.connect(`tcp://127.0.0.1:${kp}`);
  });

  afterAll(async () => {
    pub?.close();
    await stopAllSpawned();
  });

  const prompt = 'abcdefghijklmnopqrstuvwxyz012345'; // 32 bytes = 8 tokens = 2 blocks of 4
  function validBatch(): Uint8Array {
    const tokens = [...tokenizeSimple(prompt)];
    const b: EventBatch = {
      ts: Date.now() / 1000,
      dataParallelRank: 0,
      events: [
        {
          type: 'BlockStored',
          blockHashes: [1n, 2n],
          parentBlockHash: null,
          tokenIds: tokens,
          blockSize: 4,
          loraId: null,
          medium: 'GPU',
          loraName: null,
        },
      ],
    };
    return encodeBatch(b);
  }

  async function podSeen(pod: string): Promise<boolean> {
    const pods = JSON.parse(await getText(`${url}/pods`)) as { pods: Array<{ pod: string; blocks: number }> };
    return pods.pods.some((p) => p.pod === pod && p.blocks > 0);
  }

  /** ZMQ drops what is sent before the connection is up: resend until the pod shows. */
  async function sendUntilSeen(pod: string, seqStart: number): Promise<void> {
    const end = Date.now() + 10_000;
    let seq = seqStart;
    while (Date.now() < end) {
      await pub.send([podTopic(pod, 'm'), encodeSeq(seq++), validBatch()]);
      await new Promise((r) => setTimeout(r, 100));
      if (await podSeen(pod)) return;
    }
    throw new Error(`${pod} never indexed:\n${indexer.output().slice(-2000)}`);
  }

  it('survives, counts the garbage, and still indexes valid batches', async () => {
    await sendUntilSeen('10.1.1.1:8000', 1);
    const rss0 = indexer.rssBytes();
    const sample = fc.sample(
      fc.oneof(
        fc
          .array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 5 })
          .map((fs) => fs.map((f) => Buffer.from(f))), // random frames
        fc
          .tuple(
            fc.string({ maxLength: 40 }),
            fc.uint8Array({ maxLength: 12 }),
            fc.uint8Array({ maxLength: 200 }),
          )
          .map(([t, s, p]) => [Buffer.from(t), Buffer.from(s), Buffer.from(p)]), // junk topic/seq/payload
        fc
          .tuple(fc.uint8Array({ maxLength: 300 }), batchDoc, fc.nat({ max: 1_000_000 }))
          .map(([p, doc, i]) => [
            Buffer.from(podTopic('10.1.1.2:8000', 'm')),
            encodeSeq(i),
            i % 2 ? Buffer.from(p) : Buffer.from(encodeAny(doc)),
          ]), // good topic, junk payload
      ),
      { numRuns: 3_000, seed: 42 },
    );
    for (const frames of sample) await pub.send(frames);
    // Hostile big payloads: a 1 MB random blob and a declared-huge array.
    await pub.send([podTopic('10.1.1.2:8000', 'm'), encodeSeq(99_999), Buffer.alloc(1024 * 1024, 0xdd)]);
    await pub.send([
      podTopic('10.1.1.2:8000', 'm'),
      encodeSeq(100_000),
      Buffer.from([0xdd, 0x7f, 0xff, 0xff, 0xff]),
    ]);
    // After all that, a new pod's valid batch must still be indexed.
    await sendUntilSeen('10.1.1.3:8000', 1);
    expect(indexer.alive()).toBe(true);
    const metrics = await getText(`${url}/metrics`);
    expect(metricSum(metrics, 'cache_indexer_decode_errors_total')).toBeGreaterThan(100);
    expect(indexer.rssBytes() - rss0).toBeLessThan(100 * 1024 * 1024);
    const m = await fetch(`${url}/match_sort`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', prompt, candidates: ['10.1.1.3:8000', '10.9.9.9:1'] }),
    });
    const body = (await m.json()) as { results: Array<{ endpoint: string; hitRate: number }> };
    expect(body.results[0]).toMatchObject({ endpoint: '10.1.1.3:8000', hitRate: 1 });
  });
});
