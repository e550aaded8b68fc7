// The degraded view: what a snapshot would say if Redis answered, from the
// last good snapshot (the baseline) plus this replica's own charges since.
// Bucket loads are combined in the pool's event space: the overlay (a local
// MemoryStateStore holding the picks made while degraded) counts its events
// from E0 = the baseline's pool event, so
//   load(now) = decay(baseline, now) + decay(overlay, E0 + its event, now)
//             + own Redis picks the baseline did not see - own releases it did see
// (decay is linear, so the parts add up exactly). Counts (in-flight,
// pending prefill tokens) are combined the same way, without decay.
import type { BucketLoadRecord } from '../../scheduling/types.js';
import {
  addCount,
  applyInFlight,
  applyPrefill,
  chargeLoad,
  decayed,
  decayRecord,
  hasPrefill,
  releaseLoad,
} from '../charges.js';
import type { StateSnapshot } from '../store.js';
import type { OwnPick, OwnPicks } from './own-picks.js';

export interface ShadowInputs {
  /** Last snapshot Redis returned (undefined: none yet) and the sequence its read was issued at. */
  baseline: StateSnapshot | undefined;
  baselineSeq: number;
  /** The overlay's own snapshot for the same query. */
  overlay: StateSnapshot;
  /** Pool event of the baseline when degraded mode began. */
  e0: number;
  /** The profile's bucket decay factor, learnt from the charges (records do not carry it). */
  decayFactor: number | undefined;
  withLoads: boolean;
  picks: OwnPicks;
  /** This replica knows the endpoint set itself (it was told, not only the baseline). */
  ownEndpoints: boolean;
}

const NO_SNAPSHOT: StateSnapshot = {
  endpoints: [],
  signals: new Map(),
  inFlight: new Map(),
  pendingPrefillTokens: new Map(),
  bucketLoads: new Map(),
  poolEvent: 0,
};

export function shadowSnapshot(i: ShadowInputs): StateSnapshot {
  const o = i.overlay;
  const b = i.baseline ?? NO_SNAPSHOT;
  const now = i.e0 + o.poolEvent;
  const signals = new Map(b.signals);
  for (const [id, s] of o.signals) {
    const cur = signals.get(id);
    if (!cur || s.updatedAtMs >= cur.updatedAtMs) signals.set(id, s);
  }
  const inFlight = new Map(b.inFlight);
  for (const [id, n] of o.inFlight) addCount(inFlight, id, n);
  const pendingPrefill = new Map(b.pendingPrefillTokens);
  for (const [id, n] of o.pendingPrefillTokens) addCount(pendingPrefill, id, n);
  const loads = new Map<string, BucketLoadRecord>();
  const d = i.decayFactor;
  if (i.withLoads && d === undefined) {
    // No bucket charge seen here yet (so the overlay has none): the baseline as stored.
    for (const [id, r] of b.bucketLoads) loads.set(id, { ...r });
  } else if (i.withLoads && d !== undefined) {
    // Everything re-expressed at the combined event `now`.
    for (const [id, r] of b.bucketLoads) addLoad(loads, id, decayRecord(r, now, d));
    for (const [id, r] of o.bucketLoads)
      addLoad(loads, id, decayRecord({ ...r, atEvent: i.e0 + r.atEvent }, now, d));
  }
  const adjust = i.withLoads && d !== undefined ? loads : undefined;
  // Own Redis picks the baseline did not include, and own releases it did.
  const bSeq = i.baselineSeq;
  for (const p of i.picks.open.values()) {
    if (p.origin === 'redis' && p.seq > bSeq) applyCharge(inFlight, adjust, p, now, +1);
  }
  for (const r of i.picks.released) {
    if (r.pick.seq <= bSeq && r.doneSeq >= bSeq) applyCharge(inFlight, adjust, r.pick, now, -1);
  }
  adjustPrefill(pendingPrefill, i.picks, bSeq);
  const snap: StateSnapshot = {
    endpoints: i.ownEndpoints ? o.endpoints : b.endpoints,
    signals,
    inFlight,
    pendingPrefillTokens: pendingPrefill,
    bucketLoads: loads,
    poolEvent: now,
  };
  if (o.prefixMatches) snap.prefixMatches = o.prefixMatches;
  if (o.indexerAnswer !== undefined) snap.indexerAnswer = o.indexerAnswer;
  return snap;
}

/**
 * Own Redis picks' prefill charges: what is charged now (open, not yet
 * released) minus what the baseline holds (committed before its read, and
 * released in Redis, if at all, after it).
 */
function adjustPrefill(pending: Map<string, number>, picks: OwnPicks, bSeq: number): void {
  const inBaseline = (p: OwnPick, releasedSeq: number) =>
    p.seq <= bSeq && releasedSeq > bSeq && (p.prefillDoneSeq === undefined || p.prefillDoneSeq > bSeq);
  for (const p of picks.open.values()) {
    if (p.origin !== 'redis' || !hasPrefill(p.commit.charges)) continue;
    const charged = p.prefillDoneSeq === undefined ? 1 : 0;
    const delta = charged - (inBaseline(p, Infinity) ? 1 : 0);
    if (delta !== 0) applyPrefill(pending, p.commit.charges, delta);
  }
  for (const r of picks.released) {
    if (r.pick.origin === 'redis' && hasPrefill(r.pick.commit.charges) && inBaseline(r.pick, r.doneSeq))
      applyPrefill(pending, r.pick.commit.charges, -1);
  }
}

/** Sums two records expressed at the same event. */
function addLoad(into: Map<string, BucketLoadRecord>, id: string, rec: BucketLoadRecord): void {
  const cur = into.get(id);
  if (cur) {
    cur.short += rec.short;
    cur.long += rec.long;
  } else into.set(id, rec);
}

function applyCharge(
  inFlight: Map<string, number>,
  loads: Map<string, BucketLoadRecord> | undefined,
  p: OwnPick,
  now: number,
  sign: 1 | -1,
): void {
  applyInFlight(inFlight, p.commit.charges, sign);
  const b = p.commit.charges.bucket;
  if (!loads || !b) return;
  const at = p.receipt.chargedAtEvent;
  for (const it of b.items) {
    const rec = loads.get(it.endpointId);
    loads.set(
      it.endpointId,
      sign > 0
        ? chargeLoad(rec, { ...it, amount: decayed(it.amount, at, now, b.decayFactor) }, now, b.decayFactor)
        : releaseLoad(rec ?? decayRecord(undefined, now, b.decayFactor), it, at, now, b.decayFactor),
    );
  }
}
