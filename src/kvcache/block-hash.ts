// The project's KV block hashing, shared by mock-vllm (the hashes it
// publishes in BlockStored) and the cache-indexer (the keys of its
// token-prefix index, computed from BlockStored token_ids and from prompts).
//
// Scheme (documented in docs/cache-indexer-api.md):
//   root            = SHA-256("hermes-router/kv-block/v1")             (32 bytes)
//   root(extra)     = SHA-256(root || UTF-8(extra))   for a LoRA name etc.
//   hash(block i)   = SHA-256(hash(block i-1) || uint32le(t_0) .. uint32le(t_{B-1}))
// with hash(block -1) = root. Only full blocks of B tokens are hashed, as a
// model server caches only full blocks. Equal hashes mean equal prefixes.
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;
const ROOT_LABEL = 'hermes-router/kv-block/v1';

export const ROOT_HASH: Buffer = createHash('sha256').update(ROOT_LABEL).digest();

const rootCache = new Map<string, Buffer>();

/** The chain's root: the fixed seed, or the seed mixed with an extra key (a LoRA adapter name). */
export function rootHash(extra?: string | null): Buffer {
  if (!extra) return ROOT_HASH;
  let r = rootCache.get(extra);
  if (!r) {
    r = createHash('sha256').update(ROOT_HASH).update(extra, 'utf8').digest();
    if (rootCache.size > 1024) rootCache.clear();
    rootCache.set(extra, r);
  }
  return r;
}

let scratch = Buffer.alloc(16 * 4);

/** The hash of one block of token ids chained to `parent`. */
export function blockHash(
  parent: Uint8Array,
  tokens: ArrayLike<number>,
  start = 0,
  end = tokens.length,
): Buffer {
  const n = end - start;
  if (scratch.length < n * 4) scratch = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) scratch.writeUInt32LE(tokens[start + i]! >>> 0, i * 4);
  return createHash('sha256')
    .update(parent)
    .update(scratch.subarray(0, n * 4))
    .digest();
}

/**
 * Chained hashes of the full blocks of `tokens`, first block chained to
 * `parent` (the root by default). At most `maxBlocks` blocks.
 */
export function chainBlockHashes(
  tokens: ArrayLike<number>,
  blockSize: number,
  parent: Uint8Array = ROOT_HASH,
  maxBlocks = Number.POSITIVE_INFINITY,
): Buffer[] {
  if (!Number.isInteger(blockSize) || blockSize <= 0)
    throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
  const blocks = Math.min(Math.floor(tokens.length / blockSize), maxBlocks);
  const out: Buffer[] = new Array(blocks);
  let prev: Uint8Array = parent;
  for (let b = 0; b < blocks; b++) {
    prev = out[b] = blockHash(prev, tokens, b * blockSize, (b + 1) * blockSize);
  }
  return out;
}
