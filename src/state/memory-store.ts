// In-process StateStore: the default for a single EPP replica. Same
// semantics as the Redis store (leases, decay, TTLs), so the contract test
// suite runs against both.
import type { BucketLoadRecord, Endpoint, EndpointSignals } from '../scheduling/types.js';
import { AdmissionLedger, HeadBoard, splitHeads } from './admission.js';
import { applyInFlight, applyPrefill, chargeLoad, releaseLoad } from './charges.js';
import { PrefixIndex } from './prefix-index.js';
import {
  type DecisionRecord,
  type PickCommit,
  type PickReceipt,
  type SnapshotQuery,
  type StateSnapshot,
  type StateStore,
  type StoreHealth,
} from './store.js';

interface OpenPick {
  charges: PickCommit['charges'];
  expiresAtMs: number;
  /** Prefill-token charges still counted (until the first token, release or expiry). */
  prefillOpen: boolean;
}

export interface MemoryStoreOptions {
  /** Recent decisions kept for inspection. */
  decisionsLimit?: number;
  /** Injectable clock for tests. */
  now?: () => number;
}

const MEMORY_HEALTH: StoreHealth = { backend: 'memory', shared: false, degraded: false };

export class MemoryStateStore implements StateStore {
  private endpoints: Endpoint[] = [];
  /**
   * Latest signals per endpoint, copied on write: a snapshot takes this map as it is (and marks
   * it shared); the first write after that copies it, so the snapshot never sees a later write.
   * Signals change once per scrape, snapshots once per decision: a decision no longer copies
   * them (a burst of writes after a read copies once).
   */
  private signals = new Map<string, EndpointSignals>();
  private signalsShared = false;
  private readonly picks = new Map<string, OpenPick>();
  private readonly inFlight = new Map<string, number>();
  private readonly pendingPrefill = new Map<string, number>();
  private nextExpiryMs = Infinity;
  private readonly bucketLoads = new Map<string, BucketLoadRecord>();
  private poolEvent = 0;
  /** Approximate prefix index: block keys per endpoint, exact LRU. */
  private readonly prefixIndex = new PrefixIndex();
  private readonly indexerAnswers = new Map<string, { value: string; expiresAtMs: number }>();
  private readonly leases = new Map<string, { holder: string; expiresAtMs: number }>();
  /**
   * Recent decisions, a ring once full: `decisionsNext` is where the next one goes (the oldest).
   * Dropping the oldest from the front of an array moved all of them, ~8 us a decision.
   */
  private readonly decisions: DecisionRecord[] = [];
  private decisionsNext = 0;
  private readonly admissions = new AdmissionLedger();
  private readonly heads = new HeadBoard();
  private readonly wakeListeners = new Set<(from: string) => void>();
  private readonly decisionsLimit: number;
  private readonly now: () => number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.decisionsLimit = opts.decisionsLimit ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  health(): StoreHealth {
    return MEMORY_HEALTH;
  }

  /** Never changes: one process, nothing to lose touch with. */
  onHealthChange(): () => void {
    return () => undefined;
  }

  async replaceEndpoints(endpoints: readonly Endpoint[]): Promise<void> {
    this.endpoints = endpoints.slice();
    const live = new Set(endpoints.map((e) => e.id));
    const signals = this.ownSignals();
    for (const id of [...signals.keys()]) if (!live.has(id)) signals.delete(id);
    for (const id of this.bucketLoads.keys()) if (!live.has(id)) this.bucketLoads.delete(id);
    for (const id of [...this.prefixIndex.endpoints()]) if (!live.has(id)) this.prefixIndex.drop(id);
  }

  async writeSignals(endpointId: string, signals: EndpointSignals): Promise<void> {
    this.ownSignals().set(endpointId, signals);
  }

  /** The signals map to write to: a copy when a snapshot holds the current one. */
  private ownSignals(): Map<string, EndpointSignals> {
    if (this.signalsShared) {
      this.signals = new Map(this.signals);
      this.signalsShared = false;
    }
    return this.signals;
  }

  async readSnapshot(query: SnapshotQuery): Promise<StateSnapshot> {
    const now = this.now();
    this.expirePicks(now);
    const snap: StateSnapshot = {
      endpoints: this.endpoints,
      signals: this.signals,
      inFlight: new Map(this.inFlight),
      pendingPrefillTokens: new Map(this.pendingPrefill),
      bucketLoads: query.bucketLoads ? cloneLoads(this.bucketLoads) : new Map(),
      poolEvent: this.poolEvent,
    };
    this.signalsShared = true;
    const a = query.admission;
    if (a) {
      snap.admissionsElsewhere = this.admissions.reserve(a, now);
      if (a.heads)
        splitHeads(snap, a.owner, this.heads.publish(a.owner, a.heads, a.headsTtlMs ?? a.ttlMs, now));
    }
    if (query.prefixHashes) snap.prefixMatches = this.prefixIndex.match(query.prefixHashes);
    if (query.indexerCacheKey) {
      const hit = this.indexerAnswers.get(query.indexerCacheKey);
      if (hit && hit.expiresAtMs > now) snap.indexerAnswer = hit.value;
      else if (hit) this.indexerAnswers.delete(query.indexerCacheKey);
    }
    return snap;
  }

  async commitPick(commit: PickCommit): Promise<PickReceipt> {
    const now = this.now();
    const { charges } = commit;
    const expiresAtMs = now + commit.leaseMs;
    this.admissions.remove(commit.chargeId);
    this.picks.set(commit.chargeId, { charges, expiresAtMs, prefillOpen: true });
    if (expiresAtMs < this.nextExpiryMs) this.nextExpiryMs = expiresAtMs;
    applyInFlight(this.inFlight, charges, 1);
    applyPrefill(this.pendingPrefill, charges, 1);

    let chargedAtEvent = this.poolEvent;
    if (charges.bucket && charges.bucket.items.length > 0) {
      const d = charges.bucket.decayFactor;
      chargedAtEvent = ++this.poolEvent;
      for (const item of charges.bucket.items) {
        this.bucketLoads.set(
          item.endpointId,
          chargeLoad(this.bucketLoads.get(item.endpointId), item, chargedAtEvent, d),
        );
      }
    }
    if (charges.prefixRecord) {
      this.prefixIndex.record(
        charges.prefixRecord.endpointId,
        charges.prefixRecord.hashes,
        commit.prefixCapacityPerEndpoint ?? 31_250,
      );
    }
    if (this.decisions.length < this.decisionsLimit) {
      this.decisions.push(commit.decision);
    } else if (this.decisionsLimit > 0) {
      this.decisions[this.decisionsNext] = commit.decision;
      this.decisionsNext = (this.decisionsNext + 1) % this.decisionsLimit;
    }
    return { chargeId: commit.chargeId, charges, chargedAtEvent };
  }

  async release(receipt: PickReceipt, wakeFrom?: string): Promise<void> {
    const open = this.picks.get(receipt.chargeId);
    // A pick whose lease already expired was released by the expiry.
    if (open) {
      this.picks.delete(receipt.chargeId);
      this.uncount(open);
    }
    const bucket = receipt.charges.bucket;
    if (bucket) {
      const d = bucket.decayFactor;
      const now = this.poolEvent;
      for (const item of bucket.items) {
        const rec = this.bucketLoads.get(item.endpointId);
        if (rec)
          this.bucketLoads.set(item.endpointId, releaseLoad(rec, item, receipt.chargedAtEvent, now, d));
      }
    }
    if (wakeFrom !== undefined) this.wake(wakeFrom);
  }

  async releasePrefill(receipt: PickReceipt): Promise<void> {
    const open = this.picks.get(receipt.chargeId);
    if (!open || !open.prefillOpen) return;
    open.prefillOpen = false;
    applyPrefill(this.pendingPrefill, open.charges, -1);
  }

  async cancelAdmission(id: string, wakeFrom?: string): Promise<void> {
    this.admissions.remove(id);
    if (wakeFrom !== undefined) this.wake(wakeFrom);
  }

  /** After the calling method returns, as a Redis subscriber hears a wake after the write before it. */
  private wake(from: string): void {
    for (const cb of [...this.wakeListeners]) queueMicrotask(() => cb(from));
  }

  async clearHeads(owner: string): Promise<void> {
    this.heads.clear(owner);
  }

  /** An in-process event: every Director sharing this store hears every wake. */
  onWake(cb: (from: string) => void): () => void {
    this.wakeListeners.add(cb);
    return () => this.wakeListeners.delete(cb);
  }

  async renewLeases(chargeIds: readonly string[], leaseMs: number): Promise<void> {
    const expiresAtMs = this.now() + leaseMs;
    for (const id of chargeIds) {
      const open = this.picks.get(id);
      if (open) open.expiresAtMs = expiresAtMs;
    }
  }

  async tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const cur = this.leases.get(name);
    if (cur && cur.expiresAtMs > now && cur.holder !== holder) return false;
    this.leases.set(name, { holder, expiresAtMs: now + ttlMs });
    return true;
  }

  async putIndexerAnswer(key: string, answer: string, ttlMs: number): Promise<void> {
    const now = this.now();
    this.indexerAnswers.set(key, { value: answer, expiresAtMs: now + ttlMs });
    // Bound the cache: drop expired entries once it grows.
    if (this.indexerAnswers.size > 10_000) {
      for (const [k, v] of this.indexerAnswers) if (v.expiresAtMs <= now) this.indexerAnswers.delete(k);
    }
  }

  async recentDecisions(limit: number): Promise<DecisionRecord[]> {
    const n = this.decisions.length;
    const k = limit > 0 ? Math.min(Math.trunc(limit), n) : 0;
    const out: DecisionRecord[] = new Array(k);
    // Newest first: the one before decisionsNext (n - 1 while the ring is not full).
    for (let i = 0; i < k; i++) out[i] = this.decisions[(this.decisionsNext - 1 - i + 2 * n) % n]!;
    return out;
  }

  async close(): Promise<void> {}

  private uncount(p: OpenPick): void {
    applyInFlight(this.inFlight, p.charges, -1);
    if (p.prefillOpen) applyPrefill(this.pendingPrefill, p.charges, -1);
    p.prefillOpen = false;
  }

  private expirePicks(now: number): void {
    if (now < this.nextExpiryMs) return;
    let next = Infinity;
    for (const [id, p] of this.picks) {
      if (p.expiresAtMs <= now) {
        this.picks.delete(id);
        this.uncount(p);
      } else if (p.expiresAtMs < next) next = p.expiresAtMs;
    }
    this.nextExpiryMs = next;
  }
}

function cloneLoads(src: Map<string, BucketLoadRecord>): Map<string, BucketLoadRecord> {
  const out = new Map<string, BucketLoadRecord>();
  for (const [k, v] of src) out.set(k, { short: v.short, long: v.long, atEvent: v.atEvent });
  return out;
}
