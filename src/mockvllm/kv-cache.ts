// mock-vllm's KV cache: a fixed pool of blocks with vLLM-style automatic
// prefix caching. Full prompt blocks are kept under their chained hash;
// blocks referenced by running requests are pinned; unreferenced cached
// blocks stay reusable until evicted, least recently freed first. A
// request's partial last block and its output blocks are anonymous (used,
// never cached). Every store and eviction is reported as a KV event.
import type { KvEvent } from '../kvcache/events.js';

interface CachedBlock {
  id: number;
  hash: Buffer;
  refs: number;
}

export interface Allocation {
  /** Cached blocks this request pins, in prompt order. */
  blocks: CachedBlock[];
  anonymous: number;
  /** Leading prompt blocks that were already cached (prefix cache hits). */
  hitBlocks: number;
  released: boolean;
}

export class KvBlockManager {
  private readonly cached = new Map<string, CachedBlock>();
  /** Unreferenced cached blocks in eviction order (first = least recently freed). */
  private readonly evictable = new Map<string, CachedBlock>();
  private anonymous = 0;
  private nextId = 0;

  constructor(
    readonly totalBlocks: number,
    readonly blockSize: number,
    private readonly emit: (ev: KvEvent) => void,
  ) {}

  /** Blocks held by running requests (pinned cached + anonymous). */
  get usedBlocks(): number {
    return this.cached.size - this.evictable.size + this.anonymous;
  }

  get cachedBlocks(): number {
    return this.cached.size;
  }

  /** Leading blocks of `hashes` present in the cache (no side effects). */
  matchPrefix(hashes: readonly Buffer[]): number {
    let n = 0;
    while (n < hashes.length && this.cached.has(keyOf(hashes[n]!))) n++;
    return n;
  }

  /**
   * Pins the cached prefix, stores the prompt's new full blocks (evicting
   * as needed) and reserves `anonymous` more blocks. Returns null, changing
   * nothing, when the pool cannot hold it right now.
   */
  allocate(hashes: readonly Buffer[], tokens: ArrayLike<number>, anonymous: number): Allocation | null {
    const hitBlocks = this.matchPrefix(hashes);
    // Blocks already cached past the first miss (a parent was evicted before its child) are reused too.
    let reused = 0;
    let reusedEvictable = 0;
    for (let i = 0; i < hashes.length; i++) {
      const b = this.cached.get(keyOf(hashes[i]!));
      if (b) {
        reused++;
        if (b.refs === 0) reusedEvictable++;
      }
    }
    const fresh = hashes.length - reused + anonymous;
    const free = this.totalBlocks - this.usedBlocks - reusedEvictable;
    if (fresh > free) return null;

    const blocks: CachedBlock[] = new Array(hashes.length);
    for (let i = 0; i < hashes.length; i++) {
      const b = this.cached.get(keyOf(hashes[i]!));
      if (b) {
        if (b.refs++ === 0) this.evictable.delete(keyOf(b.hash));
        blocks[i] = b;
      }
    }
    // Make room: unreferenced blocks go, least recently freed first.
    this.evictFor(fresh);
    let run: { start: number; hashes: Buffer[] } | undefined;
    const flush = () => {
      if (!run) return;
      const parent = run.start === 0 ? null : hashes[run.start - 1]!;
      const end = run.start + run.hashes.length;
      this.emit({
        type: 'BlockStored',
        blockHashes: run.hashes,
        parentBlockHash: parent,
        tokenIds: Array.from(sliceTokens(tokens, run.start * this.blockSize, end * this.blockSize)),
        blockSize: this.blockSize,
        loraId: null,
        medium: 'GPU',
        loraName: null,
      });
      run = undefined;
    };
    for (let i = 0; i < hashes.length; i++) {
      if (blocks[i]) {
        flush();
        continue;
      }
      const b: CachedBlock = { id: this.nextId++, hash: hashes[i]!, refs: 1 };
      this.cached.set(keyOf(b.hash), b);
      blocks[i] = b;
      if (!run) run = { start: i, hashes: [] };
      run.hashes.push(b.hash);
    }
    flush();
    this.anonymous += anonymous;
    return { blocks, anonymous, hitBlocks, released: false };
  }

  private evictFor(fresh: number): void {
    const removed: Buffer[] = [];
    for (const [key, b] of this.evictable) {
      if (this.totalBlocks - this.cached.size - this.anonymous >= fresh) break;
      this.evictable.delete(key);
      this.cached.delete(key);
      removed.push(b.hash);
    }
    if (removed.length > 0) this.emit({ type: 'BlockRemoved', blockHashes: removed, medium: 'GPU' });
  }

  release(a: Allocation): void {
    if (a.released) return;
    a.released = true;
    this.anonymous -= a.anonymous;
    // Tail blocks first, so a prefix's last blocks are evicted before its first ones (as vLLM does).
    for (let i = a.blocks.length - 1; i >= 0; i--) {
      const b = a.blocks[i]!;
      if (--b.refs === 0) this.evictable.set(keyOf(b.hash), b);
    }
  }

  /** Drops every cached block (vLLM's reset_prefix_cache); refused while requests run. */
  reset(): boolean {
    if (this.usedBlocks > 0) return false;
    this.cached.clear();
    this.evictable.clear();
    this.emit({ type: 'AllBlocksCleared' });
    return true;
  }

  /** Block ids a request holds (what a prefill instance reports as remote_block_ids). */
  static blockIds(a: Allocation): number[] {
    return a.blocks.map((b) => b.id);
  }
}

function keyOf(h: Buffer): string {
  return h.toString('latin1');
}

function sliceTokens(tokens: ArrayLike<number>, start: number, end: number): ArrayLike<number> {
  if (ArrayBuffer.isView(tokens)) return (tokens as unknown as Uint32Array).subarray(start, end);
  return Array.prototype.slice.call(tokens, start, end) as number[];
}
