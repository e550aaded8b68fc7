// Where the cache-indexer keeps "which pods hold which block": one
// interface, an in-memory and a Redis backend. Keys are the indexer's own
// chained block hashes (src/kvcache/block-hash.ts), never a producer's, so
// a lookup needs only the prompt's tokens.

/** Changes for one pod, applied in order: clear first, then removals, then additions. */
export interface PodChange {
  pod: string;
  clear?: boolean;
  add?: string[];
  remove?: string[];
}

export interface BlockIndexStore {
  readonly kind: 'memory' | 'redis';
  apply(changes: readonly PodChange[]): Promise<void>;
  /**
   * For each candidate, how many leading blocks of `keys` it holds (the
   * first block it lacks ends its run). One round trip for remote stores.
   */
  lookup(keys: readonly string[], candidates: readonly string[]): Promise<number[]>;
  /** Replaces everything stored for `pod` with `keys` (resync after a store outage). */
  replacePod(pod: string, keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** The length of the leading run per candidate, given a membership test. */
export function leadingRuns(
  blocks: number,
  candidates: readonly string[],
  holds: (block: number, candidate: number) => boolean,
): number[] {
  const runs = new Array<number>(candidates.length).fill(0);
  let alive = candidates.length;
  const open = new Array<boolean>(candidates.length).fill(true);
  for (let b = 0; b < blocks && alive > 0; b++) {
    for (let c = 0; c < candidates.length; c++) {
      if (!open[c]) continue;
      if (holds(b, c)) runs[c]!++;
      else {
        open[c] = false;
        alive--;
      }
    }
  }
  return runs;
}
