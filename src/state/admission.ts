// The admission ledger of the in-process store: reservations of picks that
// flow control let through and that are not committed yet. Synchronous, so
// "count the others, add this one" is one step for every Director sharing
// the store; the Redis store does the same in one script (lua/admission.ts).
import type { AdmissionQuery } from './store.js';

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
