// Back from an outage: tell Redis what it missed while this replica worked
// alone -- the endpoint set, signals written meanwhile, releases and first
// tokens it could not send -- and re-charge every pick still open (renewed
// if Redis still has it, charged again if not; picks made while degraded
// are charged with their bucket amounts decayed by the local events since).
import type { Endpoint, EndpointSignals, PickCharges } from '../../scheduling/types.js';
import { decayed } from '../charges.js';
import type { MemoryStateStore } from '../memory-store.js';
import type { PickReceipt, StateStore } from '../store.js';
import type { OwnPick, OwnPicks } from './own-picks.js';

/** What the resilient wrapper needs of the shared backend beyond StateStore. */
export interface ResyncableStore extends StateStore {
  ping(): Promise<void>;
  /** Idempotent charge: renews the pick if still stored, else charges `charges`. */
  restorePick(chargeId: string, charges: PickCharges, leaseMs: number): Promise<PickReceipt>;
}

export interface ResyncInputs {
  primary: ResyncableStore;
  picks: OwnPicks;
  overlay: MemoryStateStore;
  endpoints: readonly Endpoint[] | undefined;
  /** Signals Redis has not seen; each is removed once written (unless rewritten meanwhile). */
  dirtySignals: Map<string, EndpointSignals>;
  now: () => number;
}

/**
 * Sends Redis what it missed; throws (to retry at the next probe) when a call
 * fails. Picks opened locally during its awaits are not restored: the caller
 * checks `localPicksOpen` synchronously before it leaves degraded mode.
 */
export async function resync(r: ResyncInputs): Promise<void> {
  const { primary, picks } = r;
  if (r.endpoints) await primary.replaceEndpoints(r.endpoints);
  for (const [id, s] of [...r.dirtySignals]) {
    await primary.writeSignals(id, s);
    if (r.dirtySignals.get(id) === s) r.dirtySignals.delete(id);
  }
  for (const rel of picks.unsentReleases()) {
    await primary.release(rel.pick.receipt);
    rel.doneSeq = picks.nextSeq();
  }
  for (const p of picks.open.values()) {
    if (p.origin === 'redis' && p.prefillDoneSeq === Infinity) {
      await primary.releasePrefill(p.receipt);
      p.prefillDoneSeq = picks.nextSeq();
    }
  }
  const restored = new Set<OwnPick>();
  for (let round = 0; round < 5; round++) {
    const todo = [...picks.open.values()].filter((p) => !restored.has(p));
    if (todo.length === 0) break;
    const overlayEvent = (await r.overlay.readSnapshot({})).poolEvent;
    for (const p of todo) {
      restored.add(p);
      await restore(r, p, overlayEvent);
    }
  }
}

/** True while a pick charged only locally is open (then degraded mode must go on). */
export function localPicksOpen(picks: OwnPicks): boolean {
  for (const p of picks.open.values()) if (p.origin === 'local') return true;
  return false;
}

async function restore(r: ResyncInputs, p: OwnPick, overlayEvent: number): Promise<void> {
  const id = p.commit.chargeId;
  const leaseMs = Math.max(1_000, p.expiresAtMs - r.now());
  if (p.origin === 'redis') {
    // Still stored: lease renewed. Lost (outage longer than the lease, or
    // Redis restarted empty): the counted charges come back; the bucket part
    // stays on the original receipt so release() still undoes it.
    await r.primary.restorePick(id, openCounts(p), leaseMs);
    return;
  }
  const charges = decayedCharges(p.commit.charges, p.receipt.chargedAtEvent, overlayEvent);
  if (p.prefillDoneSeq !== undefined) delete charges.prefillTokens;
  const receipt = await r.primary.restorePick(id, charges, leaseMs);
  if (r.picks.open.get(id) === p) {
    p.origin = 'redis';
    p.receipt = receipt;
    p.seq = r.picks.nextSeq();
    // Its first token came before the restore: Redis never held that charge.
    if (p.prefillDoneSeq !== undefined) p.prefillDoneSeq = 0;
  } else {
    // Released while we were restoring it.
    await r.primary.release(receipt);
  }
}

/** The counts a Redis pick still holds: in-flight, and prefill tokens until its first token. */
function openCounts(p: OwnPick): PickCharges {
  const c: PickCharges = { inFlight: p.commit.charges.inFlight };
  if (p.prefillDoneSeq === undefined && p.commit.charges.prefillTokens)
    c.prefillTokens = p.commit.charges.prefillTokens;
  return c;
}

function decayedCharges(c: PickCharges, from: number, to: number): PickCharges {
  const out: PickCharges = { inFlight: c.inFlight };
  if (c.prefillTokens) out.prefillTokens = c.prefillTokens;
  if (!c.bucket) return out;
  const d = c.bucket.decayFactor;
  out.bucket = {
    decayFactor: d,
    items: c.bucket.items.map((it) => ({ ...it, amount: decayed(it.amount, from, to, d) })),
  };
  return out;
}
