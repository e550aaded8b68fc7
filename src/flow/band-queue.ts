// The flow-control queue itself, pure and synchronous (the EPP's edge
// controller and the routing simulator both drive it): one FIFO per priority
// band, the highest band served first, bounded per band and overall by
// request count and body bytes. It holds items and answers questions; it
// never decides when to dispatch.
import type { BandLimits, FlowControlSettings } from '../config/flow-control.js';

export interface QueueItem {
  readonly priority: number;
  readonly bytes: number;
  /** When it was queued (ms, the caller's clock). */
  readonly enqueuedAtMs: number;
}

export type EnqueueVerdict = 'queued' | 'band-full' | 'queue-full';

interface Band<T> {
  readonly priority: number;
  readonly limits: BandLimits;
  /** Insertion-ordered: FCFS, and O(1) removal of a cancelled item. */
  readonly items: Set<T>;
  bytes: number;
}

export interface BandStats {
  priority: number;
  length: number;
  bytes: number;
  maxRequests: number;
  maxBytes: number;
  /** Age of the oldest item, ms (0 when empty). */
  oldestWaitMs: number;
}

export class BandQueue<T extends QueueItem> {
  private readonly bands = new Map<number, Band<T>>();
  /** Band priorities, highest first. */
  private order: number[] = [];
  private count = 0;
  private bytes = 0;

  constructor(private readonly settings: FlowControlSettings) {
    // Configured bands exist (and show in stats) before their first request.
    for (const p of settings.bands.keys()) this.band(p);
  }

  get length(): number {
    return this.count;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** Adds `item` at the tail of its band, or says which bound refused it. */
  enqueue(item: T): EnqueueVerdict {
    const s = this.settings;
    if (s.maxRequests > 0 && this.count + 1 > s.maxRequests) return 'queue-full';
    if (s.maxBytes > 0 && this.bytes + item.bytes > s.maxBytes) return 'queue-full';
    const b = this.band(item.priority);
    if (b.items.size + 1 > b.limits.maxRequests || b.bytes + item.bytes > b.limits.maxBytes)
      return 'band-full';
    b.items.add(item);
    b.bytes += item.bytes;
    this.count++;
    this.bytes += item.bytes;
    return 'queued';
  }

  /** Takes `item` out (dispatched, expired, cancelled); false when it was not queued. */
  remove(item: T): boolean {
    const b = this.bands.get(item.priority);
    if (!b || !b.items.delete(item)) return false;
    b.bytes -= item.bytes;
    this.count--;
    this.bytes -= item.bytes;
    return true;
  }

  has(item: T): boolean {
    return this.bands.get(item.priority)?.items.has(item) ?? false;
  }

  /** The next to dispatch: the oldest item of the highest non-empty band. */
  head(): T | undefined {
    for (const p of this.order) {
      const b = this.bands.get(p)!;
      for (const item of b.items) return item;
    }
    return undefined;
  }

  /** The oldest item of each non-empty band, highest band first. */
  heads(): T[] {
    const out: T[] = [];
    for (const p of this.order) {
      for (const item of this.bands.get(p)!.items) {
        out.push(item);
        break;
      }
    }
    return out;
  }

  /** Items queued at `priority` or above (they go before a new item of that priority). */
  aheadOf(priority: number): number {
    let n = 0;
    for (const p of this.order) {
      if (p < priority) break;
      n += this.bands.get(p)!.items.size;
    }
    return n;
  }

  /** When the oldest item queued at `priority` or above was queued (undefined when none). */
  oldestAtOrAbove(priority: number): number | undefined {
    let oldest: number | undefined;
    for (const p of this.order) {
      if (p < priority) break;
      for (const item of this.bands.get(p)!.items) {
        if (oldest === undefined || item.enqueuedAtMs < oldest) oldest = item.enqueuedAtMs;
        break;
      }
    }
    return oldest;
  }

  /** Every item, highest band first, FCFS within a band. */
  *items(): IterableIterator<T> {
    for (const p of this.order) yield* this.bands.get(p)!.items;
  }

  /** Items queued at or before `cutoffMs`, oldest first per band. */
  queuedBefore(cutoffMs: number): T[] {
    const out: T[] = [];
    for (const p of this.order) {
      for (const item of this.bands.get(p)!.items) {
        // FCFS: the rest of the band is younger.
        if (item.enqueuedAtMs > cutoffMs) break;
        out.push(item);
      }
    }
    return out;
  }

  stats(nowMs: number): BandStats[] {
    return this.order.map((p) => {
      const b = this.bands.get(p)!;
      let oldest: T | undefined;
      for (const item of b.items) {
        oldest = item;
        break;
      }
      return {
        priority: p,
        length: b.items.size,
        bytes: b.bytes,
        maxRequests: b.limits.maxRequests,
        maxBytes: b.limits.maxBytes,
        oldestWaitMs: oldest ? Math.max(0, nowMs - oldest.enqueuedAtMs) : 0,
      };
    });
  }

  private band(priority: number): Band<T> {
    let b = this.bands.get(priority);
    if (!b) {
      const limits = this.settings.bands.get(priority) ?? this.settings.defaultBand;
      b = { priority, limits, items: new Set(), bytes: 0 };
      this.bands.set(priority, b);
      this.order = [...this.bands.keys()].sort((x, y) => y - x);
    }
    return b;
  }
}
