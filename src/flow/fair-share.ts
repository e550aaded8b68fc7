// Cross-replica fair dispatch (issue 14 item 3). Queues stay per replica;
// each replica publishes its queue heads (per band: how long its oldest
// waiter has waited) in the admission step it already makes, and reads the
// other replicas' heads in the same step (StateStore AdmissionQuery.heads).
// This file is the decision over those heads, pure: the FlowController asks
// it when the pool has room for its own head.
//
// The rule: a replica whose own head (band p, waited a) has room yields, that
// is leaves the room to the others, when some live foreign head is senior:
// of a higher band, or of band p and waited longer than a (equal waits do
// not yield, so two replicas never yield to each other). It yields to the
// most senior one (highest band, then longest wait).
//
// The guard: a foreign head may be unable to use the room (its candidates,
// after the gateway's subset hint, stay saturated; the room freed on an
// endpoint it cannot use). So a replica yields to one foreign head (named by
// its owner and sequence number) for at most YIELD_LIMIT_MS from the first
// time it yielded to it; after that the head is passed over, as if absent,
// for as long as it stays at the head of its queue. A head that can use the
// room takes it within milliseconds (the yielding replica wakes the others),
// so the limit only ever binds on a stuck head, and each stuck head costs
// each other replica at most that long of room left unused.
import type { ForeignHead } from '../state/store.js';

/** How long a replica keeps yielding to one foreign head (the guard). */
export const YIELD_LIMIT_MS = 250;

/** The head a replica judges: its oldest waiter of its highest band, or a newcomer (waited 0). */
export interface OwnHead {
  priority: number;
  ageMs: number;
}

/** When this replica first yielded to each foreign head, by headKey. */
export type YieldLedger = ReadonlyMap<string, number>;

export interface FairShareVerdict {
  /** The foreign head the room is left to; undefined: take it. */
  yieldTo: ForeignHead | undefined;
  /** The ledger to keep: first yields of the heads still present, plus this one's. */
  ledger: Map<string, number>;
}

export function headKey(h: Pick<ForeignHead, 'owner' | 'seq'>): string {
  return `${h.owner}/${h.seq}`;
}

/** Senior: a higher band, or the same band and a longer wait. */
export function senior(f: ForeignHead, own: OwnHead): boolean {
  return f.priority > own.priority || (f.priority === own.priority && f.ageMs > own.ageMs);
}

/**
 * Whether `own` yields the pool's room, and to which of `foreign` (other
 * replicas' heads as the store answered them; lapsed ones, expiresInMs <= 0,
 * are ignored), given when it first yielded to each (`ledger`) and the guard
 * `limitMs`.
 */
export function fairShare(
  own: OwnHead,
  foreign: readonly ForeignHead[],
  ledger: YieldLedger,
  nowMs: number,
  limitMs = YIELD_LIMIT_MS,
): FairShareVerdict {
  const next = new Map<string, number>();
  let best: ForeignHead | undefined;
  for (const f of foreign) {
    if (f.expiresInMs <= 0) continue;
    const key = headKey(f);
    const since = ledger.get(key);
    // Remembered while present, so a head passed over stays passed over.
    if (since !== undefined) next.set(key, since);
    if (!senior(f, own)) continue;
    if (since !== undefined && nowMs - since >= limitMs) continue;
    if (
      best === undefined ||
      f.priority > best.priority ||
      (f.priority === best.priority && f.ageMs > best.ageMs)
    )
      best = f;
  }
  if (best !== undefined) {
    const key = headKey(best);
    if (!next.has(key)) next.set(key, nowMs);
  }
  return { yieldTo: best, ledger: next };
}
