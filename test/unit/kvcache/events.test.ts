import { describe, expect, it } from 'vitest';
import { Encoder } from '@msgpack/msgpack';
import {
  decodeBatch,
  decodeSeq,
  encodeBatch,
  encodeSeq,
  hashKey,
  isRootParent,
  KvEventDecodeError,
  parsePodTopic,
  podTopic,
  type BlockStored,
  type EventBatch,
} from '../../../src/kvcache/events.js';

const enc = new Encoder({ useBigInt64: true });
const digest = (n: number) => new Uint8Array(32).fill(n);

const batch: EventBatch = {
  ts: 1700000000.25,
  dataParallelRank: 0,
  events: [
    {
      type: 'BlockStored',
      blockHashes: [digest(1), digest(2)],
      parentBlockHash: null,
      tokenIds: [1, 2, 3, 4, 5, 6, 7, 8],
      blockSize: 4,
      loraId: null,
      medium: 'GPU',
      loraName: null,
    },
    { type: 'BlockRemoved', blockHashes: [digest(2)], medium: 'GPU' },
    { type: 'AllBlocksCleared' },
  ],
};

describe('KV event codec', () => {
  it.each(['map', 'array'] as const)('round-trips the %s encoding', (encoding) => {
    const out = decodeBatch(encodeBatch(batch, encoding));
    expect(out.encoding).toBe(encoding);
    expect(out.ts).toBe(batch.ts);
    expect(out.dataParallelRank).toBe(0);
    expect(out.events.map((e) => e.type)).toEqual(['BlockStored', 'BlockRemoved', 'AllBlocksCleared']);
    const s = out.events[0] as BlockStored;
    expect(s.blockHashes.map(hashKey)).toEqual([hashKey(digest(1)), hashKey(digest(2))]);
    expect(s.tokenIds).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(s.blockSize).toBe(4);
    expect(s.medium).toBe('GPU');
  });

  it('reads vLLM-style map events with newer optional fields it does not use', () => {
    const payload = enc.encode({
      ts: 1.5,
      events: [
        {
          type: 'BlockStored',
          block_hashes: [digest(9)],
          parent_block_hash: null,
          token_ids: [10, 11],
          block_size: 2,
          lora_id: null,
          medium: 'CPU',
          lora_name: 'adapter-a',
          extra_keys: null,
          group_idx: 0,
          kv_cache_spec_kind: 'full_attention',
        },
        { type: 'BlockRemoved', block_hashes: [digest(9)], medium: 'CPU', group_idx: 0 },
      ],
      data_parallel_rank: 3,
    });
    const out = decodeBatch(payload);
    expect(out.dataParallelRank).toBe(3);
    expect((out.events[0] as BlockStored).loraName).toBe('adapter-a');
    expect(out.events[1]).toEqual({ type: 'BlockRemoved', blockHashes: [digest(9)], medium: 'CPU' });
  });

  it('reads older array-like batches with uint64 hashes above 2^63 without precision loss', () => {
    const big = 2n ** 64n - 1n;
    const big2 = 2n ** 63n + 12345n;
    const payload = enc.encode([
      2.0,
      [
        ['BlockStored', [big, big2], 0, [1, 2, 3, 4], 2, null, 'GPU'],
        ['BlockRemoved', [big2], 'GPU'],
      ],
    ]);
    const out = decodeBatch(payload);
    expect(out.encoding).toBe('array');
    expect(out.dataParallelRank).toBeNull();
    const s = out.events[0] as BlockStored;
    expect(s.blockHashes).toEqual([big, big2]);
    expect(hashKey(s.blockHashes[0]!)).toBe('i18446744073709551615');
    expect(hashKey(s.blockHashes[1]!)).not.toBe(hashKey(big2 - 1n));
    // Parent 0 marks a root block for some producers.
    expect(isRootParent(s.parentBlockHash)).toBe(true);
    expect(s.loraName).toBeNull();
    // Small integers decode as numbers but key the same as the bigint of the same value.
    expect(hashKey(7)).toBe(hashKey(7n));
  });

  it('skips unknown event types and rejects malformed batches with a clear error', () => {
    const withUnknown = decodeBatch(
      enc.encode({ ts: 1, events: [{ type: 'SomethingNew' }, { type: 'AllBlocksCleared' }] }),
    );
    expect(withUnknown.events).toEqual([{ type: 'AllBlocksCleared' }]);
    expect(withUnknown.unknownEvents).toBe(1);
    expect(() => decodeBatch(new Uint8Array([0xc1]))).toThrow(KvEventDecodeError);
    expect(() => decodeBatch(enc.encode('hello'))).toThrow(/neither/);
    expect(() => decodeBatch(enc.encode({ ts: 1, events: 'x' }))).toThrow(/events/);
    expect(() =>
      decodeBatch(enc.encode({ ts: 1, events: [{ type: 'BlockStored', block_hashes: ['x'] }] })),
    ).toThrow(/block_hashes\[0\]/);
    expect(() => decodeBatch(enc.encode([1, [['BlockStored', [1], null, [-1], 1, null, 'GPU']]]))).toThrow(
      /token id/,
    );
  });

  it('frames sequence numbers as 8-byte big-endian, -1 ending a replay', () => {
    expect(encodeSeq(258)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 1, 2]));
    expect(decodeSeq(encodeSeq(2n ** 40n))).toBe(2n ** 40n);
    expect(encodeSeq(-1)).toEqual(Buffer.alloc(8, 0xff));
    expect(decodeSeq(Buffer.alloc(8, 0xff))).toBe(-1n);
    expect(() => decodeSeq(Buffer.alloc(4))).toThrow(/8 bytes/);
  });

  it('names pods in topics as llm-d does', () => {
    expect(podTopic('10.0.0.7:8000', 'llama')).toBe('kv@10.0.0.7:8000@llama');
    expect(parsePodTopic('kv@10.0.0.7:8000@meta/llama-3@v2')).toEqual({
      endpoint: '10.0.0.7:8000',
      model: 'meta/llama-3@v2',
    });
    expect(parsePodTopic('kv@[fd00::1]:8000@m')).toEqual({ endpoint: '[fd00::1]:8000', model: 'm' });
    expect(parsePodTopic('')).toBeNull();
    expect(parsePodTopic('kv@no-port@m')).toBeNull();
  });
});
