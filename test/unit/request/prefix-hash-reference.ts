// The prefix hashing by its definition (hash version 2, src/request/prefix-hash.ts),
// written for clarity, not speed, sharing none of the product's code: four
// lanes seeded from the model, word j of each block (and of the rest, for
// the digest) stepping lane j mod 4 with xxHash32's round, the lanes folded
// with the word count after each block. The product's unrolled loops are
// checked against this.

function seedOf(model: string): [number, number, number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [a | 0, b | 0, (a ^ 0x9e3779b9) | 0, (b ^ 0x7f4a7c15) | 0];
}

/** The words of a prompt's UTF-8: little-endian uint32, the last one zero-padded. */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(bytes.length / 4));
  for (let i = 0; i < bytes.length; i++) out[i >> 2]! |= bytes[i]! << (8 * (i & 3));
  return out;
}

interface Chain {
  /** Both halves (uint32) of each full block hashed. */
  blocks: Array<[number, number]>;
  /** The four lanes after the last block (int32), what the digest continues from. */
  end: number[];
}

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** Steps `lane` over `ws`: word j into lane j mod 4, h -> rotl(h + w * P2, 13) * P1. */
function step(lane: number[], ws: ArrayLike<number>): void {
  for (let j = 0; j < ws.length; j++) {
    const l = j % 4;
    lane[l] = Math.imul(rotl((lane[l]! + Math.imul(ws[j]!, 0x85ebca77)) | 0, 13), 0x9e3779b1);
  }
}

function fold(lane: number[], n: number): [number, number] {
  const [a, b, c, d] = lane as [number, number, number, number];
  const h1 = fmix32(
    a ^
      n ^
      Math.imul(rotl(b, 8), 0x85ebca6b) ^
      Math.imul(rotl(c, 16), 0xc2b2ae35) ^
      Math.imul(rotl(d, 24), 0x27d4eb2f),
  );
  const h2 = fmix32(
    b ^
      n ^
      Math.imul(rotl(c, 8), 0x165667b1) ^
      Math.imul(rotl(d, 16), 0xd3a2646d) ^
      Math.imul(rotl(a, 24), 0xfd7046c5),
  );
  return [h1, h2];
}

function chain(words: Uint32Array, blockWords: number, maxBlocks: number, model: string): Chain {
  const n = Math.min(Math.floor(words.length / blockWords), maxBlocks);
  const lane: number[] = seedOf(model);
  const blocks: Array<[number, number]> = [];
  for (let b = 0; b < n; b++) {
    step(lane, words.subarray(b * blockWords, (b + 1) * blockWords));
    blocks.push(fold(lane, (b + 1) * blockWords));
  }
  return { blocks, end: lane };
}

/** Block keys of UTF-8 bytes (only whole tokens count), as textBlockKeys. */
export function referenceKeys(
  bytes: Uint8Array,
  model: string,
  blockTokens: number,
  maxBlocks: number,
): number[] {
  const whole = wordsOf(bytes.subarray(0, bytes.length - (bytes.length % 4)));
  return chain(whole, blockTokens, maxBlocks, model).blocks.map(([h1, h2]) => (h2 >>> 11) * 2 ** 32 + h1);
}

/** Text block hashes, as textBlockHashes. */
export function referenceHashes(
  bytes: Uint8Array,
  model: string,
  blockTokens: number,
  maxBlocks: number,
): string[] {
  const whole = wordsOf(bytes.subarray(0, bytes.length - (bytes.length % 4)));
  return chain(whole, blockTokens, maxBlocks, model).blocks.map(
    ([h1, h2]) => h1.toString(36) + h2.toString(36).padStart(7, '0'),
  );
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The digest by its definition: the chain over the full blocks keyed (at
 * most maxBlocks), then the words after them stepped (word j of the rest
 * into lane j mod 4), folded with the whole word count, after the byte length.
 */
export function referenceDigest(
  bytes: Uint8Array,
  model: string,
  blockTokens: number,
  maxBlocks: number,
  prefix = '',
): string {
  const words = wordsOf(bytes);
  const whole = words.subarray(0, bytes.length >> 2);
  const c = chain(whole, blockTokens, maxBlocks, model);
  step(c.end, words.subarray(c.blocks.length * blockTokens));
  const [h1, h2] = fold(c.end, words.length);
  return `${prefix}${bytes.length}.${h1.toString(36)}${h2.toString(36).padStart(7, '0')}`;
}
