// The in-process approximate prefix index (MemoryStateStore): which endpoint
// was sent which prompt blocks, with an exact LRU of at most `capacity`
// blocks per endpoint. Block keys are the 53-bit numbers of
// src/request/prefix-hash.ts. Everything lives in typed arrays:
//   blocks     key -> block id (open addressing), and per block id a holder
//              bitmap over endpoint slots (`words` uint32 per block);
//   per slot   key -> LRU node (open addressing) and a doubly linked list of
//              nodes, oldest first.
// A match walks the prompt's keys once: one table probe and one AND per
// bitmap word per block; a record moves known blocks to the list's tail.
// Neither allocates per block.

const EMPTY = -1;

/**
 * Open-addressing map from block key (a non-negative integer < 2^53) to a
 * non-negative int, linear probing, backward-shift deletion (no tombstones).
 * A key's low 32 bits (uniform: they are a hash lane) pick its slot.
 */
export class KeyTable {
  private keys: Float64Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 16) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.keys = new Float64Array(cap).fill(EMPTY);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  /** The value stored for `key`, or -1. */
  get(key: number): number {
    const keys = this.keys;
    const mask = this.mask;
    let i = (key >>> 0) & mask;
    for (;;) {
      const k = keys[i]!;
      if (k === key) return this.vals[i]!;
      if (k === EMPTY) return EMPTY;
      i = (i + 1) & mask;
    }
  }

  /** Stores `val` under `key` (a new key or a replacement). */
  set(key: number, val: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    const keys = this.keys;
    const mask = this.mask;
    let i = (key >>> 0) & mask;
    for (;;) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === EMPTY) {
        keys[i] = key;
        this.size++;
        break;
      }
      i = (i + 1) & mask;
    }
    this.vals[i] = val;
  }

  /** Removes `key`; true when it was there. */
  delete(key: number): boolean {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    let i = (key >>> 0) & mask;
    for (;;) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === EMPTY) return false;
      i = (i + 1) & mask;
    }
    // Backward shift: pull later keys of the same run into the hole unless
    // their home slot lies (cyclically) after the hole.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j]!;
      if (k === EMPTY) break;
      const home = (k >>> 0) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!stays) {
        keys[i] = k;
        vals[i] = vals[j]!;
        i = j;
      }
    }
    keys[i] = EMPTY;
    this.size--;
    return true;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = oldKeys.length * 2;
    this.keys = new Float64Array(cap).fill(EMPTY);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i]!;
      if (k !== EMPTY) this.set(k, oldVals[i]!);
    }
  }
}

/** One endpoint's blocks in recency order (an exact LRU), nodes in typed arrays. */
class EndpointLru {
  readonly nodes = new KeyTable();
  private prev = new Int32Array(16);
  private next = new Int32Array(16);
  /** Block id of each node (its key is the block's). */
  blockOf = new Int32Array(16);
  private free: number[] = [];
  private used = 0;
  head = EMPTY;
  private tail = EMPTY;
  size = 0;

  /** Appends a node for `block` under `key` (newest). */
  push(key: number, block: number): void {
    let n = this.free.pop();
    if (n === undefined) {
      if (this.used === this.blockOf.length) this.grow();
      n = this.used++;
    }
    this.blockOf[n] = block;
    this.prev[n] = this.tail;
    this.next[n] = EMPTY;
    if (this.tail !== EMPTY) this.next[this.tail] = n;
    else this.head = n;
    this.tail = n;
    this.nodes.set(key, n);
    this.size++;
  }

  /** Makes node `n` the newest. */
  touch(n: number): void {
    if (n === this.tail) return;
    this.unlink(n);
    this.prev[n] = this.tail;
    this.next[n] = EMPTY;
    this.next[this.tail] = n;
    this.tail = n;
  }

  /** Removes node `n` (stored under `key`). */
  remove(n: number, key: number): void {
    this.unlink(n);
    this.nodes.delete(key);
    this.free.push(n);
    this.size--;
  }

  /** Node ids oldest first. */
  *order(): Generator<number> {
    for (let n = this.head; n !== EMPTY; n = this.next[n]!) yield n;
  }

  private unlink(n: number): void {
    const p = this.prev[n]!;
    const x = this.next[n]!;
    if (p !== EMPTY) this.next[p] = x;
    else this.head = x;
    if (x !== EMPTY) this.prev[x] = p;
    else this.tail = p;
  }

  private grow(): void {
    const cap = this.blockOf.length * 2;
    this.prev = grown(this.prev, cap);
    this.next = grown(this.next, cap);
    this.blockOf = grown(this.blockOf, cap);
  }
}

function grown(a: Int32Array, cap: number): Int32Array<ArrayBuffer> {
  const out = new Int32Array(cap);
  out.set(a);
  return out;
}

export class PrefixIndex {
  private readonly blocks = new KeyTable();
  /** Key of each block id. */
  private blockKey = new Float64Array(16);
  /** Holder bitmap of each block id: `words` uint32 from blockId * words. */
  private holders = new Uint32Array(16);
  private words = 1;
  private freeBlocks: number[] = [];
  private usedBlocks = 0;
  private readonly slotOf = new Map<string, number>();
  private slotIds: Array<string | undefined> = [];
  private lrus: Array<EndpointLru | undefined> = [];
  private freeSlots: number[] = [];
  /** Endpoints still matching during a match (scratch, `words` long). */
  private alive = new Uint32Array(1);

  /** Leading blocks of `keys` held per endpoint; only endpoints holding the first block appear. */
  match(keys: ArrayLike<number>): Map<string, number> {
    const out = new Map<string, number>();
    if (keys.length === 0) return out;
    const first = this.blocks.get(keys[0]!);
    if (first === EMPTY) return out;
    const w = this.words;
    const holders = this.holders;
    const alive = this.alive;
    let at = first * w;
    for (let j = 0; j < w; j++) alive[j] = holders[at + j]!;
    let i = 1;
    let any = true;
    for (; i < keys.length && any; i++) {
      const b = this.blocks.get(keys[i]!);
      if (b === EMPTY) break;
      at = b * w;
      any = false;
      for (let j = 0; j < w; j++) {
        const a = alive[j]!;
        const h = holders[at + j]!;
        const lost = a & ~h;
        if (lost !== 0) this.emitBits(lost, j, i, out);
        const left = a & h;
        alive[j] = left;
        if (left !== 0) any = true;
      }
    }
    for (let j = 0; j < w; j++) if (alive[j] !== 0) this.emitBits(alive[j]!, j, i, out);
    return out;
  }

  /** Records `keys` on `endpointId` as its newest blocks (the first newest), then evicts its oldest beyond `capacity`. */
  record(endpointId: string, keys: ArrayLike<number>, capacity: number): void {
    const slot = this.slotFor(endpointId);
    const lru = this.lrus[slot]!;
    const w = this.words;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    // Last block first, so the first ends newest: the LRU then evicts a
    // prompt's tail before its head (as vLLM frees a finished request's
    // blocks), and holder sets stay nested along a prompt.
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const n = lru.nodes.get(key);
      if (n !== EMPTY) {
        lru.touch(n);
        continue;
      }
      let b = this.blocks.get(key);
      if (b === EMPTY) b = this.newBlock(key);
      this.holders[b * w + word]! |= bit;
      lru.push(key, b);
    }
    while (lru.size > capacity) {
      const n = lru.head;
      const b = lru.blockOf[n]!;
      const key = this.blockKey[b]!;
      lru.remove(n, key);
      this.unhold(b, word, bit);
    }
  }

  /** Forgets every block of `endpointId` and frees its slot. */
  drop(endpointId: string): void {
    const slot = this.slotOf.get(endpointId);
    if (slot === undefined) return;
    const lru = this.lrus[slot]!;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    for (const n of lru.order()) this.unhold(lru.blockOf[n]!, word, bit);
    this.slotOf.delete(endpointId);
    this.slotIds[slot] = undefined;
    this.lrus[slot] = undefined;
    this.freeSlots.push(slot);
  }

  /** Endpoints with blocks recorded. */
  endpoints(): IterableIterator<string> {
    return this.slotOf.keys();
  }

  private emitBits(bits: number, word: number, matched: number, out: Map<string, number>): void {
    while (bits !== 0) {
      const low = bits & -bits;
      const slot = word * 32 + (31 - Math.clz32(low));
      out.set(this.slotIds[slot]!, matched);
      bits ^= low;
    }
  }

  private unhold(b: number, word: number, bit: number): void {
    const w = this.words;
    const at = b * w;
    this.holders[at + word]! &= ~bit;
    for (let j = 0; j < w; j++) if (this.holders[at + j] !== 0) return;
    this.blocks.delete(this.blockKey[b]!);
    this.freeBlocks.push(b);
  }

  private newBlock(key: number): number {
    let b = this.freeBlocks.pop();
    if (b === undefined) {
      if (this.usedBlocks === this.blockKey.length) {
        const cap = this.blockKey.length * 2;
        const keys = new Float64Array(cap);
        keys.set(this.blockKey);
        this.blockKey = keys;
        const h = new Uint32Array(cap * this.words);
        h.set(this.holders);
        this.holders = h;
      }
      b = this.usedBlocks++;
    }
    this.blockKey[b] = key;
    this.holders.fill(0, b * this.words, (b + 1) * this.words);
    this.blocks.set(key, b);
    return b;
  }

  private slotFor(endpointId: string): number {
    const known = this.slotOf.get(endpointId);
    if (known !== undefined) return known;
    // Lowest free slot keeps the bitmaps short.
    let slot: number;
    if (this.freeSlots.length > 0) {
      this.freeSlots.sort((a, b) => b - a);
      slot = this.freeSlots.pop()!;
    } else slot = this.slotIds.length;
    if (slot >>> 5 >= this.words) this.widen((slot >>> 5) + 1);
    this.slotOf.set(endpointId, slot);
    this.slotIds[slot] = endpointId;
    this.lrus[slot] = new EndpointLru();
    return slot;
  }

  /** More endpoint slots than the bitmaps hold: re-lay them `words` uint32 per block. */
  private widen(words: number): void {
    const old = this.holders;
    const ow = this.words;
    const h = new Uint32Array(this.blockKey.length * words);
    for (let b = 0; b < this.usedBlocks; b++)
      for (let j = 0; j < ow; j++) h[b * words + j] = old[b * ow + j]!;
    this.holders = h;
    this.words = words;
    this.alive = new Uint32Array(words);
  }
}
