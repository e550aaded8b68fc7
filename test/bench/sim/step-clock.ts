// Bench-only (docs/benchmarks.md, branch pdstep): decode step clocks seen
// in streamed responses, as a router's ext_proc response path could record
// them. A vLLM-like server emits
// one token per running sequence per engine step, and a streamed
// (`stream: true`) completion forwards each as its own SSE chunk, so the
// time a chunk reaches this replica is one of its pod's step boundaries
// (plus the forwarding lag) and the gap between two chunks of one stream
// is one step. Any one stream on a pod reveals the pod's step phase: the
// record is per replica, in memory, and needs no shared store.
//   lastMs    = arrival of the newest chunk that opened a new step
//   periodMs  = gap between the newest two chunks of one stream
// A chunk arriving less than half a period after lastMs belongs to the
// same step (another stream of that pod, or forwarding jitter) and leaves
// lastMs alone: the earliest chunk of a step carries the least lag.
// Bounded: a clock not refreshed for `horizonMs` is dropped on the next
// observation or read (a pod that stopped streaming has no known phase).

/** One pod's engine step clock as seen in its streamed chunks. */
export interface StepClock {
  /** When the newest step boundary was observed, ms (the router's clock). */
  lastMs: number;
  /** The most recent step length, ms (undefined until a stream showed two chunks). */
  periodMs: number | undefined;
}

export class StepClocks {
  private readonly clocks = new Map<string, StepClock>();

  constructor(private readonly horizonMs = 2_000) {}

  /**
   * A response chunk from `endpointId` arrived at `atMs`; `prevChunkMs` is
   * when the same stream's previous chunk arrived (undefined for its first).
   */
  observe(endpointId: string, atMs: number, prevChunkMs?: number): void {
    let c = this.clocks.get(endpointId);
    if (!c) {
      this.prune(atMs);
      c = { lastMs: atMs, periodMs: undefined };
      this.clocks.set(endpointId, c);
    }
    if (prevChunkMs !== undefined && atMs > prevChunkMs && atMs - prevChunkMs < this.horizonMs) {
      c.periodMs = atMs - prevChunkMs;
    }
    const half = c.periodMs === undefined ? 0 : c.periodMs / 2;
    if (atMs - c.lastMs >= half) c.lastMs = atMs;
  }

  /** The fresh clocks at `nowMs` (the scheduling context's copy). */
  view(nowMs: number): ReadonlyMap<string, StepClock> {
    this.prune(nowMs);
    const out = new Map<string, StepClock>();
    for (const [id, c] of this.clocks) out.set(id, { lastMs: c.lastMs, periodMs: c.periodMs });
    return out;
  }

  get size(): number {
    return this.clocks.size;
  }

  private prune(nowMs: number): void {
    for (const [id, c] of this.clocks) if (nowMs - c.lastMs > this.horizonMs) this.clocks.delete(id);
  }
}
