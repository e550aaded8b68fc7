// The admission ledger of the in-process store: reservations of picks that
// flow control let through and that are not committed yet. Synchronous, so
// "count the others, add this one" is one step for every Director sharing
// the store; the Redis store does the same in one script (lua/admission.ts).
import type { AdmissionQuery, ForeignHead, QueueHead, StateSnapshot } from './store.js';

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
  /** Per head, its enqueue time on this store's clock (kept from its first publication). */
  heads: Array<{ priority: number; seq: number; enqueuedAtMs: number }>;
  expiresAtMs: number;
}

/**
 * The queue heads each replica published (cross-replica fair dispatch,
 * src/flow/fair-share.ts), for the in-process store; the Redis store keeps
 * them in the admission script (lua/admission.ts). Published and read in the
 * admission step, synchronously. A head published again keeps the enqueue
 * time of its first publication, so every reader compares the same times.
 */
export class HeadBoard {
  private readonly byOwner = new Map<string, Published>();

  /**
   * Replaces `owner`'s heads with `heads` (none: removed); returns every live
   * head as this store now sees it, the other owners' and then `owner`'s own.
   */
  publish(owner: string, heads: readonly QueueHead[], ttlMs: number, nowMs: number): ForeignHead[] {
    const out: ForeignHead[] = [];
    let kept: Published | undefined;
    for (const [o, p] of this.byOwner) {
      if (p.expiresAtMs <= nowMs) this.byOwner.delete(o);
      else if (o === owner) kept = p;
      else for (const h of p.heads) out.push(seen(o, h, nowMs, p.expiresAtMs));
    }
    if (heads.length === 0) {
      this.byOwner.delete(owner);
      return out;
    }
    const expiresAtMs = nowMs + ttlMs;
    const mine = heads.map((h) => ({
      priority: h.priority,
      seq: h.seq,
      enqueuedAtMs: kept?.heads.find((k) => k.seq === h.seq)?.enqueuedAtMs ?? nowMs - h.ageMs,
    }));
    this.byOwner.set(owner, { heads: mine, expiresAtMs });
    for (const h of mine) out.push(seen(owner, h, nowMs, expiresAtMs));
    return out;
  }

  clear(owner: string): void {
    this.byOwner.delete(owner);
  }
}

function seen(
  owner: string,
  h: { priority: number; seq: number; enqueuedAtMs: number },
  nowMs: number,
  expiresAtMs: number,
): ForeignHead {
  return {
    owner,
    priority: h.priority,
    ageMs: nowMs - h.enqueuedAtMs,
    seq: h.seq,
    expiresInMs: expiresAtMs - nowMs,
  };
}

/** Puts the heads an admission step answered into the snapshot: the other owners' and `owner`'s own. */
export function splitHeads(snap: StateSnapshot, owner: string, heads: readonly ForeignHead[]): void {
  const foreign: ForeignHead[] = [];
  const own: ForeignHead[] = [];
  for (const h of heads) (h.owner === owner ? own : foreign).push(h);
  snap.foreignHeads = foreign;
  snap.ownHeads = own;
}
