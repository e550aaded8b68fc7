// An in-memory KV block index: which endpoints hold which chained block
// hash. It stands in for the cache-indexer's index (fed by BlockStored /
// BlockRemoved events) in the benchmarks. Because hashes are chained, the
// leading run of a prompt's hashes found on an endpoint is the prefix that
// endpoint has cached.
export class BlockIndex {
  private readonly holders = new Map<string, Set<string>>();
  /** Per endpoint, its hashes oldest first (only with a capacity). */
  private readonly lru = new Map<string, Map<string, true>>();

  /** @param capacityPerEndpoint blocks kept per endpoint (LRU); unbounded when omitted. */
  constructor(private readonly capacityPerEndpoint?: number) {}

  get size(): number {
    return this.holders.size;
  }

  add(endpointId: string, hash: string): void {
    let s = this.holders.get(hash);
    if (!s) this.holders.set(hash, (s = new Set()));
    s.add(endpointId);
    const cap = this.capacityPerEndpoint;
    if (cap === undefined) return;
    let l = this.lru.get(endpointId);
    if (!l) this.lru.set(endpointId, (l = new Map()));
    l.delete(hash);
    l.set(hash, true);
    if (l.size > cap) {
      const oldest = l.keys().next().value as string;
      l.delete(oldest);
      this.unhold(endpointId, oldest);
    }
  }

  remove(endpointId: string, hash: string): void {
    this.lru.get(endpointId)?.delete(hash);
    this.unhold(endpointId, hash);
  }

  has(endpointId: string, hash: string): boolean {
    return this.holders.get(hash)?.has(endpointId) ?? false;
  }

  /**
   * Leading blocks of `hashes` held by each candidate. Walks the prompt once
   * and stops as soon as no candidate still matches, so the cost is the
   * longest match, not the prompt length.
   */
  matchLeading(hashes: readonly string[], candidates: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    const alive = candidates.slice();
    let n = alive.length;
    let i = 0;
    for (; i < hashes.length && n > 0; i++) {
      const s = this.holders.get(hashes[i]!);
      if (!s) break;
      let k = 0;
      for (let j = 0; j < n; j++) {
        const c = alive[j]!;
        if (s.has(c)) alive[k++] = c;
        else out.set(c, i);
      }
      n = k;
    }
    for (let j = 0; j < n; j++) out.set(alive[j]!, i);
    return out;
  }

  private unhold(endpointId: string, hash: string): void {
    const s = this.holders.get(hash);
    if (!s) return;
    s.delete(endpointId);
    if (s.size === 0) this.holders.delete(hash);
  }
}
