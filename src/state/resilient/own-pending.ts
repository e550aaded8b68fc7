// Not herding within a replica: a remote read takes a round trip, so
// requests whose reads overlap would all see the same loads and pick the
// same endpoint. A snapshot gets this replica's own picks issued after its
// read was issued (which Redis, running one connection's commands in order,
// did not include): those issued before it resolved when it does, and those
// issued while its consumer has yet to schedule on it (the rest of the same
// burst of replies) as they are issued. Once the event loop moves on, every
// consumer of the burst has built its views, so later picks go unapplied.
import type { PickCharges } from '../../scheduling/types.js';
import { applyInFlight, applyPrefill, chargeLoad } from '../charges.js';
import type { StateSnapshot } from '../store.js';

interface RecentPick {
  seq: number;
  atMs: number;
  chargeId: string;
  charges: PickCharges;
}

interface LiveSnapshot {
  snap: StateSnapshot;
  withLoads: boolean;
}

/** A snapshot is used within milliseconds of its read: older picks are in every snapshot still to come. */
const KEEP_MS = 2_000;
const KEEP_MAX = 10_000;

export class OwnPending {
  /** Own picks by issue sequence, oldest first. */
  private recent: RecentPick[] = [];
  /** Snapshots handed out in this turn of the event loop (their consumers have not scheduled yet). */
  private live: LiveSnapshot[] = [];

  noteCommit(seq: number, atMs: number, chargeId: string, charges: PickCharges): void {
    this.recent.push({ seq, atMs, chargeId, charges });
    let drop = 0;
    while (
      drop < this.recent.length &&
      (this.recent[drop]!.atMs < atMs - KEEP_MS || this.recent.length - drop > KEEP_MAX)
    )
      drop++;
    if (drop > 0) this.recent.splice(0, drop);
    for (const l of this.live) addPick(l.snap, charges, l.withLoads, true);
  }

  /**
   * Adds, in place, the picks issued after `readSeq` to `snap` (bucket loads
   * only if the read asked for them), now and until this turn of the event
   * loop ends; `prefillOpen` tells whether a pick's prefill charge still
   * stands (its first token may already have come).
   */
  apply(
    snap: StateSnapshot,
    readSeq: number,
    withLoads: boolean,
    prefillOpen: (chargeId: string) => boolean,
  ): void {
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i]!;
      if (r.seq <= readSeq) break;
      addPick(snap, r.charges, withLoads, prefillOpen(r.chargeId));
    }
    if (this.live.length === 0) setImmediate(() => (this.live = []));
    this.live.push({ snap, withLoads });
  }
}

function addPick(snap: StateSnapshot, charges: PickCharges, withLoads: boolean, prefillOpen: boolean): void {
  applyInFlight(snap.inFlight, charges, 1);
  if (prefillOpen) applyPrefill(snap.pendingPrefillTokens, charges, 1);
  const b = charges.bucket;
  if (!b || !withLoads) return;
  for (const it of b.items) {
    const rec = snap.bucketLoads.get(it.endpointId);
    snap.bucketLoads.set(it.endpointId, chargeLoad(rec, it, snap.poolEvent, b.decayFactor));
  }
}
