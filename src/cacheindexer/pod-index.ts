// One pod's view as the indexer rebuilds it from that pod's KV events.
// The producer's block hashes are opaque: each maps to the indexer's own
// chained hash of the block's token ids (a token-prefix index), so the
// index needs no agreement on the producer's hash algorithm or seed. A
// block the pod keeps on several media (GPU, CPU offload) counts as held
// until its last copy is removed; two producer hashes that map to the same
// tokens (extra keys the indexer ignores) are reference counted.
import { blockHash, rootHash } from '../kvcache/block-hash.js';
import { hashKey, isRootParent, type BlockRemoved, type BlockStored } from '../kvcache/events.js';
import type { PodChange } from './index-store.js';

interface Entry {
  key: string;
  mediums: Set<string>;
}

export interface ApplyStats {
  storedBlocks: number;
  removedBlocks: number;
  /** Blocks whose parent the index never saw (lost events): not indexable. */
  orphanBlocks: number;
  /** Removals of blocks the index never saw. */
  unknownRemovals: number;
  /** Blocks whose token_ids did not cover block_size tokens. */
  malformedBlocks: number;
}

export function emptyStats(): ApplyStats {
  return { storedBlocks: 0, removedBlocks: 0, orphanBlocks: 0, unknownRemovals: 0, malformedBlocks: 0 };
}

const DEFAULT_MEDIUM = 'GPU';

/** The index key of a block hash: base64url of the 32-byte digest. */
export function indexKey(h: Buffer): string {
  return h.toString('base64url');
}

export class PodIndex {
  private readonly byProducer = new Map<string, Entry>();
  private readonly refs = new Map<string, number>();
  /** Digests by index key, to chain children of a known parent. */
  private readonly digests = new Map<string, Buffer>();

  constructor(readonly pod: string) {}

  get blocks(): number {
    return this.refs.size;
  }

  /** Every index key the pod holds (resync). */
  keys(): string[] {
    return [...this.refs.keys()];
  }

  stored(ev: BlockStored, change: PodChange, stats: ApplyStats): void {
    let parent: Buffer;
    if (isRootParent(ev.parentBlockHash)) {
      parent = rootHash(ev.loraName);
    } else {
      const p = this.byProducer.get(hashKey(ev.parentBlockHash!));
      if (!p) {
        stats.orphanBlocks += ev.blockHashes.length;
        return;
      }
      parent = this.digests.get(p.key)!;
    }
    const bs = ev.blockSize;
    const medium = ev.medium ?? DEFAULT_MEDIUM;
    for (let i = 0; i < ev.blockHashes.length; i++) {
      if ((i + 1) * bs > ev.tokenIds.length || bs <= 0) {
        stats.malformedBlocks += ev.blockHashes.length - i;
        return;
      }
      const digest = blockHash(parent, ev.tokenIds, i * bs, (i + 1) * bs);
      parent = digest;
      const pk = hashKey(ev.blockHashes[i]!);
      const existing = this.byProducer.get(pk);
      if (existing) {
        existing.mediums.add(medium);
        continue;
      }
      const key = indexKey(digest);
      this.byProducer.set(pk, { key, mediums: new Set([medium]) });
      const n = this.refs.get(key) ?? 0;
      this.refs.set(key, n + 1);
      if (n === 0) {
        this.digests.set(key, digest);
        (change.add ??= []).push(key);
        stats.storedBlocks++;
      }
    }
  }

  removed(ev: BlockRemoved, change: PodChange, stats: ApplyStats): void {
    for (const h of ev.blockHashes) {
      const pk = hashKey(h);
      const e = this.byProducer.get(pk);
      if (!e) {
        stats.unknownRemovals++;
        continue;
      }
      // No medium named: every copy goes.
      if (ev.medium === null) e.mediums.clear();
      else e.mediums.delete(ev.medium);
      if (e.mediums.size > 0) continue;
      this.byProducer.delete(pk);
      const n = this.refs.get(e.key)! - 1;
      if (n > 0) {
        this.refs.set(e.key, n);
        continue;
      }
      this.refs.delete(e.key);
      this.digests.delete(e.key);
      (change.remove ??= []).push(e.key);
      // An add of the same key earlier in this batch must not survive its removal.
      if (change.add) change.add = change.add.filter((k) => k !== e.key);
      stats.removedBlocks++;
    }
  }

  cleared(change: PodChange): void {
    this.byProducer.clear();
    this.refs.clear();
    this.digests.clear();
    change.clear = true;
    change.add = [];
    change.remove = [];
  }
}
