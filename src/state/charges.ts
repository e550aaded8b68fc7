// The algebra of a pick's charges, in one place: every store (memory, the
// resilient wrapper's shadow view) and the PD bucket scorer use these, and
// the Lua scripts (lua/scripts.ts) are their one remote mirror (the contract
// suite checks both agree).
//
// Bucket loads decay by pool events, not time: a record {short, long,
// atEvent} reads as value * d^(poolEvent - atEvent). A charge decays the
// record to its new event and adds; a release subtracts the amount decayed
// from the event it was charged at (clamped at 0). Counts (in-flight picks,
// pending prefill tokens) are plain sums that vanish at 0.
import type { BucketCharge, BucketLoadRecord, PickCharges } from '../scheduling/types.js';

/** Load of one bucket record decayed from its event to `nowEvent`. */
export function decayed(value: number, fromEvent: number, nowEvent: number, decayFactor: number): number {
  const steps = nowEvent - fromEvent;
  return steps <= 0 ? value : value * Math.pow(decayFactor, steps);
}

/** The record re-expressed at `nowEvent` (a fresh object). */
export function decayRecord(
  rec: BucketLoadRecord | undefined,
  nowEvent: number,
  decayFactor: number,
): BucketLoadRecord {
  if (!rec) return { short: 0, long: 0, atEvent: nowEvent };
  return {
    short: decayed(rec.short, rec.atEvent, nowEvent, decayFactor),
    long: decayed(rec.long, rec.atEvent, nowEvent, decayFactor),
    atEvent: nowEvent,
  };
}

/** The record after charging `item` at `event`. */
export function chargeLoad(
  rec: BucketLoadRecord | undefined,
  item: BucketCharge,
  event: number,
  decayFactor: number,
): BucketLoadRecord {
  const next = decayRecord(rec, event, decayFactor);
  next[item.bucket] += item.amount;
  return next;
}

/** The record after releasing `item` charged at `chargedAtEvent`, seen at `nowEvent`. */
export function releaseLoad(
  rec: BucketLoadRecord,
  item: BucketCharge,
  chargedAtEvent: number,
  nowEvent: number,
  decayFactor: number,
): BucketLoadRecord {
  const next = decayRecord(rec, nowEvent, decayFactor);
  next[item.bucket] = Math.max(
    0,
    next[item.bucket] - decayed(item.amount, chargedAtEvent, nowEvent, decayFactor),
  );
  return next;
}

/** Adds `delta` to a per-endpoint count; a count at or below 0 is removed. */
export function addCount(counts: Map<string, number>, id: string, delta: number): void {
  const n = (counts.get(id) ?? 0) + delta;
  if (n > 0) counts.set(id, n);
  else counts.delete(id);
}

/** Applies (sign +1) or undoes (-1) a pick's in-flight charge. */
export function applyInFlight(counts: Map<string, number>, charges: PickCharges, sign: 1 | -1): void {
  for (const id of charges.inFlight) addCount(counts, id, sign);
}

/** Applies (sign +1) or undoes (-1) a pick's pending-prefill charge (sign times its tokens). */
export function applyPrefill(counts: Map<string, number>, charges: PickCharges, sign: number): void {
  const items = charges.prefillTokens;
  if (items) for (const it of items) addCount(counts, it.endpointId, sign * it.tokens);
}

/** True when the pick charged prefill tokens (so a first-token release has work to do). */
export function hasPrefill(charges: PickCharges): boolean {
  return charges.prefillTokens !== undefined && charges.prefillTokens.length > 0;
}
