// In-memory block index: block key -> pods holding it, and pod -> its keys
// (to drop a pod at once). The default when no --redis-url is given.
import { leadingRuns, type BlockIndexStore, type PodChange } from './index-store.js';

export class MemoryIndexStore implements BlockIndexStore {
  readonly kind = 'memory' as const;
  private readonly holders = new Map<string, Set<string>>();
  private readonly podKeys = new Map<string, Set<string>>();

  private add(pod: string, key: string): void {
    let h = this.holders.get(key);
    if (!h) this.holders.set(key, (h = new Set()));
    h.add(pod);
    let k = this.podKeys.get(pod);
    if (!k) this.podKeys.set(pod, (k = new Set()));
    k.add(key);
  }

  private remove(pod: string, key: string): void {
    const h = this.holders.get(key);
    if (h && h.delete(pod) && h.size === 0) this.holders.delete(key);
    this.podKeys.get(pod)?.delete(key);
  }

  private clear(pod: string): void {
    const keys = this.podKeys.get(pod);
    if (!keys) return;
    for (const key of keys) {
      const h = this.holders.get(key);
      if (h && h.delete(pod) && h.size === 0) this.holders.delete(key);
    }
    this.podKeys.delete(pod);
  }

  async apply(changes: readonly PodChange[]): Promise<void> {
    for (const c of changes) {
      if (c.clear) this.clear(c.pod);
      for (const k of c.remove ?? []) this.remove(c.pod, k);
      for (const k of c.add ?? []) this.add(c.pod, k);
    }
  }

  async replacePod(pod: string, keys: readonly string[]): Promise<void> {
    this.clear(pod);
    for (const k of keys) this.add(pod, k);
  }

  async lookup(keys: readonly string[], candidates: readonly string[]): Promise<number[]> {
    return leadingRuns(
      keys.length,
      candidates,
      (b, c) => this.holders.get(keys[b]!)?.has(candidates[c]!) ?? false,
    );
  }

  /** Blocks indexed for a pod (tests, /pods). */
  blocksOf(pod: string): number {
    return this.podKeys.get(pod)?.size ?? 0;
  }

  async close(): Promise<void> {}
}
