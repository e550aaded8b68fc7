// The admission ledger of the in-process store: reservations of picks that
// flow control let through and that are not committed yet. Synchronous, so
// "count the others, add this one" is one step for every Director sharing
// the store; the Redis store does the same in one script (lua/admission.ts).
import type { AdmissionQuery, ForeignHead, QueueHead } from './store.js';

interface Reservation {
  owner: string;
  expiresAtMs: number;
}

export class AdmissionLedger {
  private readonly open = new Map<string, Reservation>();

  /** Counts other owners' live reservations, then adds `q`'s; returns that count. */
  reserve(q: AdmissionQuery, nowMs: number): number {
    let others = 0;
    for (const [id, r] of this.open) {
      if (r.expiresAtMs <= nowMs) this.open.delete(id);
      else if (r.owner !== q.owner) others++;
    }
    this.open.set(q.id, { owner: q.owner, expiresAtMs: nowMs + q.ttlMs });
    return others;
  }

  /** The pick was committed (its charge now counts) or not admitted. */
  remove(id: string): void {
    this.open.delete(id);
  }
}

interface Published {
  heads: readonly QueueHead[];
  /** When they were published (ages grow from there). */
  atMs: number;
  expiresAtMs: number;
}

/**
 * The queue heads each replica published (cross-replica fair dispatch,
 * src/flow/fair-share.ts), for the in-process store; the Redis store keeps
 * them in the admission script (lua/admission.ts). Published and read in the
 * admission step, synchronously.
 */
export class HeadBoard {
  private readonly byOwner = new Map<string, Published>();

  /** Replaces `owner`'s heads with `heads` (none: removed); returns the other owners' live heads. */
  publish(owner: string, heads: readonly QueueHead[], ttlMs: number, nowMs: number): ForeignHead[] {
    const out: ForeignHead[] = [];
    for (const [o, p] of this.byOwner) {
      if (p.expiresAtMs <= nowMs) this.byOwner.delete(o);
      else if (o !== owner) {
        for (const h of p.heads) {
          out.push({
            owner: o,
            priority: h.priority,
            ageMs: h.ageMs + (nowMs - p.atMs),
            seq: h.seq,
            expiresInMs: p.expiresAtMs - nowMs,
          });
        }
      }
    }
    if (heads.length === 0) this.byOwner.delete(owner);
    else this.byOwner.set(owner, { heads: heads.slice(), atMs: nowMs, expiresAtMs: nowMs + ttlMs });
    return out;
  }

  clear(owner: string): void {
    this.byOwner.delete(owner);
  }
}
