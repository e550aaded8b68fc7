// The prefix hashing as it was before the hashing loop lost its per-block
// callback (main at 11b8d7f, src/request/prefix-hash.ts), kept verbatim in
// its arithmetic and written for clarity, not speed: the block keys and
// text hashes of the product must stay these exactly (they are what the
// prefix index, Redis and every replica already hold). The digest is given
// by its definition, read byte by byte, so the product's word loop is
// checked against something that shares none of its code.

function seedOf(model: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [a | 0, b | 0];
}

/** The words of a prompt's UTF-8: little-endian uint32, the last one zero-padded. */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(bytes.length / 4));
  for (let i = 0; i < bytes.length; i++) out[i >> 2]! |= bytes[i]! << (8 * (i & 3));
  return out;
}

interface Chain {
  /** Both lanes (uint32) of each full block hashed. */
  blocks: Array<[number, number]>;
  /** The lanes after the last block (int32), what the digest continues from. */
  end: [number, number];
}

function chain(words: Uint32Array, blockWords: number, maxBlocks: number, model: string): Chain {
  const n = Math.min(Math.floor(words.length / blockWords), maxBlocks);
  let [h1, h2] = seedOf(model);
  const blocks: Array<[number, number]> = [];
  for (let b = 0; b < n; b++) {
    for (let i = b * blockWords; i < (b + 1) * blockWords; i++) {
      let k = Math.imul(words[i]!, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h1 ^= k;
      h1 = (h1 << 13) | (h1 >>> 19);
      h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
      h2 = (Math.imul(h2 ^ k, 0x85ebca6b) + h1) | 0;
    }
    h1 ^= h1 >>> 16;
    h1 = Math.imul(h1, 0x85ebca6b);
    h1 ^= h1 >>> 13;
    h2 ^= h2 >>> 15;
    h2 = Math.imul(h2, 0xc2b2ae35);
    h2 ^= h2 >>> 16;
    blocks.push([h1 >>> 0, h2 >>> 0]);
  }
  return { blocks, end: [h1, h2] };
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

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const LANE_MUL = [0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f];

/**
 * The digest by its definition: the chain over the full blocks keyed (at
 * most maxBlocks), then the words after them dealt into four lanes (word j
 * of the rest into lane j mod 4; a lane steps h -> rotl((h ^ w) * m, 13), no
 * rotation after a lane's last word when the rest is not a multiple of 4),
 * folded, after the byte length.
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
  const rest = Array.from(words.subarray(c.blocks.length * blockTokens));
  const [e1, e2] = c.end;
  const lane = [e1, e2, e1 ^ 0x9e3779b9, e2 ^ 0x7f4a7c15];
  const full = rest.length - (rest.length % 4);
  rest.forEach((w, j) => {
    const l = j % 4;
    const m = Math.imul(lane[l]! ^ w, LANE_MUL[l]!);
    lane[l] = j < full ? rotl(m, 13) : m;
  });
  const [a, b, cc, d] = lane as [number, number, number, number];
  const h1 = fmix32(
    a ^
      rest.length ^
      Math.imul(rotl(b, 8), 0x85ebca6b) ^
      Math.imul(rotl(cc, 16), 0xc2b2ae35) ^
      Math.imul(rotl(d, 24), 0x27d4eb2f),
  );
  const h2 = fmix32(
    b ^
      Math.imul(rotl(cc, 8), 0x165667b1) ^
      Math.imul(rotl(d, 16), 0xd3a2646d) ^
      Math.imul(rotl(a, 24), 0xfd7046c5),
  );
  return `${prefix}${bytes.length}.${h1.toString(36)}${h2.toString(36).padStart(7, '0')}`;
}
