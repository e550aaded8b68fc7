import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blockHash, chainBlockHashes, ROOT_HASH, rootHash } from '../../../src/kvcache/block-hash.js';

describe('block hashing', () => {
  it('is SHA-256 over parent || uint32le tokens, from a fixed root', () => {
    expect(ROOT_HASH).toEqual(createHash('sha256').update('hermes-router/kv-block/v1').digest());
    const tokens = [1, 2, 0xffffffff, 4];
    const le = Buffer.alloc(16);
    tokens.forEach((t, i) => le.writeUInt32LE(t, i * 4));
    const expected = createHash('sha256').update(ROOT_HASH).update(le).digest();
    expect(blockHash(ROOT_HASH, tokens)).toEqual(expected);
    expect(chainBlockHashes(tokens, 4)).toEqual([expected]);
  });

  it('hashes only full blocks and chains them, so equal hashes mean equal prefixes', () => {
    const a = chainBlockHashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 4);
    const b = chainBlockHashes([1, 2, 3, 4, 5, 6, 7, 0], 4);
    const c = chainBlockHashes([9, 9, 9, 9, 5, 6, 7, 8], 4);
    expect(a).toHaveLength(2);
    expect(a[0]).toEqual(b[0]);
    expect(a[1]).not.toEqual(b[1]);
    // Same second block after a different first block: a different hash.
    expect(a[1]).not.toEqual(c[1]);
    expect(chainBlockHashes(Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4)).toEqual(a);
    expect(chainBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, ROOT_HASH, 1)).toEqual([a[0]]);
  });

  it('seeds LoRA chains with the adapter name', () => {
    expect(rootHash(null)).toBe(ROOT_HASH);
    expect(rootHash('adapter')).not.toEqual(ROOT_HASH);
    expect(chainBlockHashes([1, 2], 2, rootHash('adapter'))[0]).not.toEqual(chainBlockHashes([1, 2], 2)[0]);
    expect(() => chainBlockHashes([1], 0)).toThrow(RangeError);
  });
});
