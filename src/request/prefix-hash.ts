// Block hashes of a prompt for the approximate prefix index (GIE-style
// prefix-cache-scorer). A block is `blockSizeTokens` tokens of the simple
// tokenizer (4 UTF-8 bytes each); each block's hash covers the whole prefix
// up to its end, so equal hashes mean equal prefixes. Only full blocks are
// hashed, as model servers cache only full blocks.
//
// The chain: four 32-bit lanes, seeded from the model; word j of a block
// steps lane j mod 4 (xxHash32's round, h -> rotl(h + w * P2, 13) * P1);
// after each block the lanes are folded, with the number of words so far,
// into the block's two 32-bit halves. The fold does not feed back, so each
// lane's chain waits on one multiply per fourth word and the CPU overlaps
// the four (the one-lane murmur3-style chain before it, ~2.6 ns a word, was
// the largest part of a KV-aware decision at 8k tokens; this is ~1 ns).
//   routing (textBlockKeys / utf8BlockKeys / tokenBlockKeys): one number per block, half 1's
//     32 bits plus the top 21 bits of half 2 (53 bits, exact in a double), in
//     a Float64Array: no string or object per block, usable as a Map key, and
//     the low 32 bits are already uniform for hash-table slots;
//   text (textBlockHashes / tokenBlockHashes): both halves as base-36 text (the
//     simulator's and the in-process indexer's keys).
// Both come from the same halves, so two prompts share a block key exactly
// when they share the text hash up to 11 dropped bits (a collision chance
// of ~n^2 / 2^54 for n distinct blocks: ~6e-5 for a million). Each round is
// a bijection in its lane and in its word, and the fold one in each lane
// given the others, so two prefixes that differ in one word never share a
// hash.
//
// Hash version 2 (issue 15, round seven): replicas of version 1 (the
// murmur3-style chain) compute other keys and digests, so during a rolling
// upgrade each version finds only its own routing history and answer-cache
// entries; the other's lapse by LRU and TTL. Nothing else reads them.
import type { PromptBytes, PromptUtf8 } from '../scheduling/types.js';
import { utf8Scratch } from './tokens.js';

/** xxHash32's primes: the round's multipliers. */
const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;

/** Writes the model's seed lanes into `out` (no tuple per call). */
function seedInto(model: string, out: Int32Array): void {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  out[0] = a;
  out[1] = b;
  out[2] = a ^ 0x9e3779b9;
  out[3] = b ^ 0x7f4a7c15;
}

// Base-36 text of a uint32, exactly as Number#toString(36) writes it (and
// padStart(7, '0') for base36Pad7). V8's radix toString takes ~170 ns per call and
// was 90% of hashing a long prompt; two-digit table lookups take ~25 ns.
const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
const PAIRS: string[] = Array.from({ length: 36 * 36 }, (_, i) => DIGITS[(i / 36) | 0]! + DIGITS[i % 36]!);
/** 36^1 .. 36^6: a uint32 has at most 7 base-36 digits. */
const POW36 = [36, 1296, 46656, 1679616, 60466176, 2176782336];

function base36Pad7(n: number): string {
  const q1 = Math.floor(n / 1296);
  const q2 = (q1 / 1296) | 0;
  const q3 = (q2 / 1296) | 0;
  return DIGITS[q3]! + PAIRS[q2 - q3 * 1296]! + PAIRS[q1 - q2 * 1296]! + PAIRS[n - q1 * 1296]!;
}

function base36(n: number): string {
  let len = 1;
  while (len < 7 && n >= POW36[len - 1]!) len++;
  const s = base36Pad7(n);
  return len === 7 ? s : s.slice(7 - len);
}

/** 2^32: half 2's top 21 bits go above half 1's 32. */
const LANE2_SCALE = 4294967296;

/**
 * The chain's four lanes: where stepLanes starts (the model's seed, or a
 * chain continued) and, after it, where it ended (what a digest continues from).
 */
const chainEnd = new Int32Array(4);
/** The two halves fold() wrote last (uint32). */
const folded = new Uint32Array(2);
/**
 * Both halves of every block the last hashLanes call hashed (block b at 2b and
 * 2b + 1, uint32). Shared and grown, never shrunk: callers turn them into
 * keys or text before the next call, so a decision allocates no lane storage
 * and V8 sees one loop with no callback (a callback per kind of output made
 * the call site polymorphic, and the call was not inlined).
 */
let blockHalves = new Uint32Array(2 * 64);

/**
 * Steps the lanes in chainEnd over words[from..to): word j of the range
 * steps lane j mod 4. The range's lanes live in locals, so the four chains
 * run side by side.
 */
function stepLanes(words: Uint32Array, from: number, to: number): void {
  let a = chainEnd[0]!;
  let b = chainEnd[1]!;
  let c = chainEnd[2]!;
  let d = chainEnd[3]!;
  let i = from;
  for (; i + 4 <= to; i += 4) {
    let t = (a + Math.imul(words[i]!, P2)) | 0;
    a = Math.imul((t << 13) | (t >>> 19), P1);
    t = (b + Math.imul(words[i + 1]!, P2)) | 0;
    b = Math.imul((t << 13) | (t >>> 19), P1);
    t = (c + Math.imul(words[i + 2]!, P2)) | 0;
    c = Math.imul((t << 13) | (t >>> 19), P1);
    t = (d + Math.imul(words[i + 3]!, P2)) | 0;
    d = Math.imul((t << 13) | (t >>> 19), P1);
  }
  if (i < to) {
    const t = (a + Math.imul(words[i]!, P2)) | 0;
    a = Math.imul((t << 13) | (t >>> 19), P1);
  }
  if (i + 1 < to) {
    const t = (b + Math.imul(words[i + 1]!, P2)) | 0;
    b = Math.imul((t << 13) | (t >>> 19), P1);
  }
  if (i + 2 < to) {
    const t = (c + Math.imul(words[i + 2]!, P2)) | 0;
    c = Math.imul((t << 13) | (t >>> 19), P1);
  }
  chainEnd[0] = a;
  chainEnd[1] = b;
  chainEnd[2] = c;
  chainEnd[3] = d;
}

/**
 * Folds the lanes in chainEnd and `n`, the words stepped so far, into the two
 * halves in `folded`: each is a bijection in every lane given the others.
 */
function fold(n: number): void {
  const a = chainEnd[0]!;
  const b = chainEnd[1]!;
  const c = chainEnd[2]!;
  const d = chainEnd[3]!;
  folded[0] = fmix32(
    a ^
      n ^
      Math.imul((b << 8) | (b >>> 24), 0x85ebca6b) ^
      Math.imul((c << 16) | (c >>> 16), 0xc2b2ae35) ^
      Math.imul((d << 24) | (d >>> 8), 0x27d4eb2f),
  );
  folded[1] = fmix32(
    b ^
      n ^
      Math.imul((c << 8) | (c >>> 24), 0x165667b1) ^
      Math.imul((d << 16) | (d >>> 16), 0xd3a2646d) ^
      Math.imul((a << 24) | (a >>> 8), 0xfd7046c5),
  );
}

/**
 * Hashes the full blocks of `words` (at most `maxBlocks`) into `blockHalves`,
 * starting from the lanes in chainEnd and leaving the chain's end there.
 * Returns the number of blocks hashed. stepLanes and fold written out again,
 * lanes in locals across blocks: with 16-token blocks a call and the lanes'
 * round trip through chainEnd per block cost as much as the words.
 */
function hashLanes(words: Uint32Array, blockWords: number, maxBlocks: number): number {
  const blocks = Math.min(Math.floor(words.length / blockWords), maxBlocks);
  if (blockHalves.length < 2 * blocks)
    blockHalves = new Uint32Array(Math.max(2 * blocks, 2 * blockHalves.length));
  const out = blockHalves;
  let a = chainEnd[0]!;
  let b = chainEnd[1]!;
  let c = chainEnd[2]!;
  let d = chainEnd[3]!;
  for (let blk = 0; blk < blocks; blk++) {
    const end = (blk + 1) * blockWords;
    let i = blk * blockWords;
    for (; i + 4 <= end; i += 4) {
      let t = (a + Math.imul(words[i]!, P2)) | 0;
      a = Math.imul((t << 13) | (t >>> 19), P1);
      t = (b + Math.imul(words[i + 1]!, P2)) | 0;
      b = Math.imul((t << 13) | (t >>> 19), P1);
      t = (c + Math.imul(words[i + 2]!, P2)) | 0;
      c = Math.imul((t << 13) | (t >>> 19), P1);
      t = (d + Math.imul(words[i + 3]!, P2)) | 0;
      d = Math.imul((t << 13) | (t >>> 19), P1);
    }
    if (i < end) {
      const t = (a + Math.imul(words[i]!, P2)) | 0;
      a = Math.imul((t << 13) | (t >>> 19), P1);
    }
    if (i + 1 < end) {
      const t = (b + Math.imul(words[i + 1]!, P2)) | 0;
      b = Math.imul((t << 13) | (t >>> 19), P1);
    }
    if (i + 2 < end) {
      const t = (c + Math.imul(words[i + 2]!, P2)) | 0;
      c = Math.imul((t << 13) | (t >>> 19), P1);
    }
    out[2 * blk] = fmix32(
      a ^
        end ^
        Math.imul((b << 8) | (b >>> 24), 0x85ebca6b) ^
        Math.imul((c << 16) | (c >>> 16), 0xc2b2ae35) ^
        Math.imul((d << 24) | (d >>> 8), 0x27d4eb2f),
    );
    out[2 * blk + 1] = fmix32(
      b ^
        end ^
        Math.imul((c << 8) | (c >>> 24), 0x165667b1) ^
        Math.imul((d << 16) | (d >>> 16), 0xd3a2646d) ^
        Math.imul((a << 24) | (a >>> 8), 0xfd7046c5),
    );
  }
  chainEnd[0] = a;
  chainEnd[1] = b;
  chainEnd[2] = c;
  chainEnd[3] = d;
  return blocks;
}

/** murmur3's 32-bit finaliser: a bijection, every input bit reaching every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The digest of the whole prompt: the chain hashLanes left in chainEnd,
 * continued over words[from..count) (what lies past the last full block
 * hashed, word j of it stepping lane j mod 4), folded with `count`, as text
 * after the byte length. The length tells a prompt from the same prompt
 * plus zero bytes (the padding of the last word is zero). Two prompts that
 * differ in one word never share a digest; in general they collide with a
 * chance of ~2^-64.
 */
function digestFrom(words: Uint32Array, from: number, count: number, byteLength: number): string {
  stepLanes(words, from, count);
  fold(count);
  return `${byteLength}.${base36(folded[0]!)}${base36Pad7(folded[1]!)}`;
}

/** Block keys of a prompt and, in the same pass, a digest of the whole prompt (the indexer-answer cache key). */
export interface KeysAndDigest {
  keys: Float64Array;
  digest: string;
}

function keysAndDigestOfWords(
  words: Uint32Array,
  count: number,
  byteLength: number,
  blockWords: number,
  maxBlocks: number,
  model: string,
): KeysAndDigest {
  // Keys over whole tokens only (a partial last word never completes a block), as textBlockKeys.
  const keys = keyWords(words.subarray(0, byteLength >> 2), blockWords, maxBlocks, model);
  return { keys, digest: digestFrom(words, keys.length * blockWords, count, byteLength) };
}

/**
 * textBlockKeys plus the prompt's digest, from one UTF-8 encoding and one
 * hash pass: the digest continues the chain of the last full block hashed
 * over the rest of the prompt, so two prompts get the same digest exactly
 * when their bytes (and model) are equal, up to hash collisions. The digest
 * depends on the block parameters too; replicas of one profile agree.
 */
export function textKeysAndDigest(
  text: string,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): KeysAndDigest {
  const { bytes, length } = utf8Scratch(text);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.ceil(length / 4));
  return keysAndDigestOfWords(words, words.length, length, blockSizeTokens, maxBlocks, model);
}

/** A prompt's first bytes, hashed and dropped before the caller returns: a scratch rendering serves. */
function bytesToHash(prompt: PromptUtf8, maxBytes: number): PromptBytes {
  return prompt.transientHead ? prompt.transientHead(maxBytes) : prompt.head(maxBytes);
}

/** textKeysAndDigest of a prompt already in UTF-8: its bytes are rendered once for both. */
export function utf8KeysAndDigest(
  prompt: PromptUtf8,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): KeysAndDigest {
  const head = bytesToHash(prompt, prompt.length);
  const count = Math.ceil(head.bytes.length / 4);
  return keysAndDigestOfWords(head.words, count, head.bytes.length, blockSizeTokens, maxBlocks, model);
}

/** textKeysAndDigest of a token-id prompt (the length counted in tokens, marked apart from text). */
export function tokenKeysAndDigest(
  tokenIds: readonly number[],
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): KeysAndDigest {
  const words = Uint32Array.from(tokenIds);
  const r = keysAndDigestOfWords(words, words.length, words.length * 4, blockSizeTokens, maxBlocks, model);
  return { keys: r.keys, digest: `t${r.digest}` };
}

function hashWords(words: Uint32Array, blockWords: number, maxBlocks: number, model: string): string[] {
  seedInto(model, chainEnd);
  const blocks = hashLanes(words, blockWords, maxBlocks);
  const out: string[] = new Array<string>(blocks);
  for (let b = 0; b < blocks; b++) out[b] = base36(blockHalves[2 * b]!) + base36Pad7(blockHalves[2 * b + 1]!);
  return out;
}

function keyWords(words: Uint32Array, blockWords: number, maxBlocks: number, model: string): Float64Array {
  seedInto(model, chainEnd);
  const blocks = hashLanes(words, blockWords, maxBlocks);
  const out = new Float64Array(Math.max(0, blocks));
  for (let b = 0; b < blocks; b++)
    out[b] = (blockHalves[2 * b + 1]! >>> 11) * LANE2_SCALE + blockHalves[2 * b]!;
  return out;
}

/**
 * Chained block keys of a prompt already in UTF-8, read as little-endian
 * uint32 words (4 bytes a token; only whole words count): a body reader's
 * bytes need no string.
 */
export function wordBlockKeys(
  words: Uint32Array,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): Float64Array {
  return keyWords(words, blockSizeTokens, maxBlocks, model);
}

/**
 * The part of `text` whose UTF-8 covers the bytes maxBlocks blocks can hash:
 * a 128 KB prompt keyed to its first 4k tokens needs 16 KB encoded, not
 * 128. Every UTF-16 unit takes at least one byte, so the first `need` units
 * give at least `need` bytes; one unit more keeps a surrogate pair that
 * straddles the cut whole (a pair cut in two would encode as U+FFFD),
 * and a pair cut after that unit starts past the bytes hashed.
 */
function hashedHead(text: string, blockSizeTokens: number, maxBlocks: number): string {
  const need = maxBlocks * blockSizeTokens * 4;
  return text.length > need + 1 ? text.substring(0, need + 1) : text;
}

/** Chained block keys (53-bit numbers) of the full blocks of `text`, at most `maxBlocks`. */
export function textBlockKeys(
  text: string,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): Float64Array {
  const { bytes, length } = utf8Scratch(hashedHead(text, blockSizeTokens, maxBlocks));
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(length / 4));
  return keyWords(words, blockSizeTokens, maxBlocks, model);
}

/** Chained block keys of the full blocks of a token-id prompt. */
export function tokenBlockKeys(
  tokenIds: readonly number[],
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): Float64Array {
  return keyWords(Uint32Array.from(tokenIds), blockSizeTokens, maxBlocks, model);
}

/** Chained hashes of the full blocks of `text`, at most `maxBlocks`. */
export function textBlockHashes(
  text: string,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): string[] {
  const { bytes, length } = utf8Scratch(hashedHead(text, blockSizeTokens, maxBlocks));
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(length / 4));
  return hashWords(words, blockSizeTokens, maxBlocks, model);
}

/** textBlockKeys of a prompt already in UTF-8 (the body reader's bytes): no string is encoded. */
export function utf8BlockKeys(
  prompt: PromptUtf8,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): Float64Array {
  const head = bytesToHash(prompt, maxBlocks * blockSizeTokens * 4);
  return keyWords(head.words.subarray(0, head.bytes.length >> 2), blockSizeTokens, maxBlocks, model);
}

/** textBlockHashes of a prompt already in UTF-8 (the body reader's bytes): no string is encoded. */
export function utf8BlockHashes(
  prompt: PromptUtf8,
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): string[] {
  const head = bytesToHash(prompt, maxBlocks * blockSizeTokens * 4);
  return hashWords(head.words.subarray(0, head.bytes.length >> 2), blockSizeTokens, maxBlocks, model);
}

/** Chained hashes of the full blocks of a token-id prompt. */
export function tokenBlockHashes(
  tokenIds: readonly number[],
  model: string,
  blockSizeTokens: number,
  maxBlocks: number,
): string[] {
  return hashWords(Uint32Array.from(tokenIds), blockSizeTokens, maxBlocks, model);
}
