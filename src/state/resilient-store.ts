// The shared (Redis) state as the EPP uses it: while Redis answers, every
// call goes straight to it; when a call fails or times out the store goes
// degraded (resilient/breaker.ts) and answers locally, never throwing to the
// request path: reads from the last good snapshot plus this replica's own
// charges (resilient/shadow-snapshot.ts), writes into a local
// MemoryStateStore (the overlay). A background probe resynchronises
// (resilient/resync.ts) and returns to Redis. Every snapshot handed out
// already includes this replica's own picks the read could not see
// (resilient/own-pending.ts), so concurrent requests do not herd.
import type { Endpoint, EndpointSignals } from '../scheduling/types.js';
import { hasPrefill } from './charges.js';
import { MemoryStateStore } from './memory-store.js';
import { Breaker, type StateLogger } from './resilient/breaker.js';
import { OwnPending } from './resilient/own-pending.js';
import { foreignPick, OwnPicks } from './resilient/own-picks.js';
import { localPicksOpen, resync, type ResyncableStore } from './resilient/resync.js';
import { shadowSnapshot } from './resilient/shadow-snapshot.js';
import type {
  DecisionRecord,
  PickCommit,
  PickReceipt,
  ResilienceCounters,
  SnapshotQuery,
  StateSnapshot,
  StateStore,
  StoreHealth,
} from './store.js';

export type { ResyncableStore } from './resilient/resync.js';
export type { StateLogger } from './resilient/breaker.js';

export interface ResilientStoreOptions {
  /** How often Redis is probed while degraded. */
  probeIntervalMs?: number;
  /** At most one "still degraded" log line per interval. */
  logIntervalMs?: number;
  logger?: StateLogger;
  decisionsLimit?: number;
  now?: () => number;
}

export class ResilientStateStore implements StateStore {
  private readonly breaker: Breaker;
  private readonly picks: OwnPicks;
  private readonly pending = new OwnPending();
  private overlay: MemoryStateStore;
  /** Pool event of the baseline when degraded mode began. */
  private e0 = 0;
  private baseline: StateSnapshot | undefined;
  private baselineSeq = 0;
  private lastEndpoints: Endpoint[] | undefined;
  private readonly latestSignals = new Map<string, EndpointSignals>();
  private readonly dirtySignals = new Map<string, EndpointSignals>();
  /** The profile's bucket decay factor, learnt from the charges (records do not carry it). */
  private decayFactor: number | undefined;
  private readonly decisionsLimit: number | undefined;
  private readonly now: () => number;

  constructor(
    private readonly primary: ResyncableStore,
    opts: ResilientStoreOptions = {},
  ) {
    this.decisionsLimit = opts.decisionsLimit;
    this.now = opts.now ?? Date.now;
    this.picks = new OwnPicks(this.now);
    this.overlay = this.freshOverlay();
    this.breaker = new Breaker({
      probeIntervalMs: opts.probeIntervalMs ?? 500,
      logIntervalMs: opts.logIntervalMs ?? 10_000,
      logger: opts.logger,
      now: this.now,
      probe: () => this.probe(),
      onTrip: () => {
        this.e0 = this.baseline?.poolEvent ?? 0;
      },
    });
  }

  health(): StoreHealth {
    return {
      backend: this.primary.health().backend,
      shared: true,
      degraded: this.breaker.degraded,
      counters: this.breaker.counters,
    };
  }

  onHealthChange(cb: (health: StoreHealth) => void): () => void {
    return this.breaker.onChange(() => cb(this.health()));
  }

  /** Live counters (metrics read them at scrape time). */
  get counters(): Readonly<ResilienceCounters> {
    return this.breaker.counters;
  }

  /** Enter degraded mode from outside (e.g. Redis unreachable at start-up, a dropped connection). */
  markUnavailable(err: Error): void {
    this.breaker.fail('connect', err);
  }

  /** A Redis command nobody awaited failed (a pick's prefix record): counted like any failed call. */
  backgroundFailed(op: string, err: Error): void {
    this.breaker.fail(op, err);
  }

  /** Runs one probe + resync now (tests; the timer does it otherwise); true when healthy after. */
  probeNow(): Promise<boolean> {
    return this.breaker.probeOnce();
  }

  private get degraded(): boolean {
    return this.breaker.degraded;
  }

  async replaceEndpoints(endpoints: readonly Endpoint[]): Promise<void> {
    this.lastEndpoints = endpoints.slice();
    await this.overlay.replaceEndpoints(endpoints);
    const live = new Set(endpoints.map((e) => e.id));
    for (const id of this.latestSignals.keys()) if (!live.has(id)) this.latestSignals.delete(id);
    if (this.degraded) return;
    // Re-published on resync when this fails.
    await this.tryPrimary('replaceEndpoints', () => this.primary.replaceEndpoints(endpoints));
  }

  async writeSignals(endpointId: string, signals: EndpointSignals): Promise<void> {
    this.latestSignals.set(endpointId, signals);
    await this.overlay.writeSignals(endpointId, signals);
    if (
      !this.degraded &&
      (await this.tryPrimary('writeSignals', () => this.primary.writeSignals(endpointId, signals)))
    ) {
      return;
    }
    this.dirtySignals.set(endpointId, signals);
  }

  async readSnapshot(query: SnapshotQuery): Promise<StateSnapshot> {
    const issued = this.picks.nextSeq();
    const snap = await this.readAt(query, issued);
    // Own picks issued after this read are not in it: add them before anyone schedules on it.
    this.pending.apply(snap, issued, query.bucketLoads === true, (id) => this.prefillOpen(id));
    return snap;
  }

  async commitPick(commit: PickCommit): Promise<PickReceipt> {
    if (commit.charges.bucket) this.decayFactor = commit.charges.bucket.decayFactor;
    const nowMs = this.now();
    const expiresAtMs = nowMs + commit.leaseMs;
    const issued = this.picks.nextSeq();
    this.pending.noteCommit(issued, nowMs, commit.chargeId, commit.charges);
    if (!this.degraded) {
      try {
        const receipt = await this.primary.commitPick(commit);
        this.picks.track({ commit, origin: 'redis', receipt, seq: issued, expiresAtMs });
        return receipt;
      } catch (e) {
        // The script may still have run (timeout): restorePick is idempotent, so resync cannot double count.
        this.breaker.fail('commitPick', e as Error);
      }
    }
    this.breaker.fallback();
    const local = await this.overlay.commitPick(commit);
    this.picks.track({ commit, origin: 'local', receipt: local, seq: issued, expiresAtMs });
    return { ...local, chargedAtEvent: this.e0 + local.chargedAtEvent };
  }

  async release(receipt: PickReceipt, wakeFrom?: string): Promise<void> {
    const p = this.picks.take(receipt.chargeId);
    if (p?.origin === 'local') {
      // Charged while degraded: Redis never saw it, so its release frees nothing the others see.
      await this.overlay.release(p.receipt);
      return;
    }
    const redisReceipt = p ? p.receipt : receipt;
    if (!this.degraded) {
      const issued = this.picks.nextSeq();
      try {
        await this.primary.release(redisReceipt, wakeFrom);
        if (p) this.picks.released.push({ pick: p, doneSeq: issued });
        return;
      } catch (e) {
        this.breaker.fail('release', e as Error);
      }
    }
    this.breaker.fallback();
    this.picks.released.push({ pick: p ?? foreignPick(receipt), doneSeq: Infinity });
  }

  async releasePrefill(receipt: PickReceipt): Promise<void> {
    const p = this.picks.open.get(receipt.chargeId);
    if (!p) {
      // Not ours (another handle committed it): Redis alone knows; lost if it is down (the lease ends it).
      if (!hasPrefill(receipt.charges)) return;
      if (!this.degraded) await this.tryPrimary('releasePrefill', () => this.primary.releasePrefill(receipt));
      else this.breaker.fallback();
      return;
    }
    if (p.prefillDoneSeq !== undefined || !hasPrefill(p.commit.charges)) return;
    if (p.origin === 'local') {
      p.prefillDoneSeq = 0;
      await this.overlay.releasePrefill(p.receipt);
      return;
    }
    if (!this.degraded) {
      p.prefillDoneSeq = this.picks.nextSeq();
      try {
        await this.primary.releasePrefill(p.receipt);
        return;
      } catch (e) {
        this.breaker.fail('releasePrefill', e as Error);
      }
    }
    this.breaker.fallback();
    // Sent on resync (with the rest of the pick if it is released by then).
    p.prefillDoneSeq = Infinity;
  }

  async cancelAdmission(id: string, wakeFrom?: string): Promise<void> {
    await this.overlay.cancelAdmission(id);
    // Degraded, the reservation (if Redis got it) lapses by its TTL, and nobody hears the wake.
    if (!this.degraded)
      await this.tryPrimary('cancelAdmission', () => this.primary.cancelAdmission(id, wakeFrom));
  }

  async clearHeads(owner: string): Promise<void> {
    // Sent to Redis first, in this call's turn: a publication of heads issued after it lands after it.
    // Degraded, the heads (if Redis has them) lapse by their TTL.
    const sent = this.degraded
      ? undefined
      : this.tryPrimary('clearHeads', () => this.primary.clearHeads(owner));
    await this.overlay.clearHeads(owner);
    await sent;
  }

  /** Wakes come from the other replicas, through Redis only (its subscriber reconnects by itself). */
  onWake(cb: (from: string) => void): () => void {
    return this.primary.onWake(cb);
  }

  async renewLeases(chargeIds: readonly string[], leaseMs: number): Promise<void> {
    const expiresAtMs = this.now() + leaseMs;
    for (const id of chargeIds) {
      const p = this.picks.open.get(id);
      if (p) p.expiresAtMs = expiresAtMs;
    }
    await this.overlay.renewLeases(chargeIds, leaseMs);
    if (this.degraded) return;
    await this.tryPrimary('renewLeases', () => this.primary.renewLeases(chargeIds, leaseMs));
  }

  async tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    if (!this.degraded) {
      try {
        return await this.primary.tryAcquireLease(name, holder, ttlMs);
      } catch (e) {
        this.breaker.fail('tryAcquireLease', e as Error);
      }
    }
    // Cut off from the others: do the shared work ourselves.
    this.breaker.fallback();
    return this.overlay.tryAcquireLease(name, holder, ttlMs);
  }

  async putIndexerAnswer(key: string, answer: string, ttlMs: number): Promise<void> {
    if (
      !this.degraded &&
      (await this.tryPrimary('putIndexerAnswer', () => this.primary.putIndexerAnswer(key, answer, ttlMs)))
    ) {
      return;
    }
    await this.overlay.putIndexerAnswer(key, answer, ttlMs);
  }

  async recentDecisions(limit: number): Promise<DecisionRecord[]> {
    if (!this.degraded) {
      try {
        return await this.primary.recentDecisions(limit);
      } catch (e) {
        this.breaker.fail('recentDecisions', e as Error);
      }
    }
    this.breaker.fallback();
    return this.overlay.recentDecisions(limit);
  }

  async close(): Promise<void> {
    this.breaker.close();
    await this.primary.close();
  }

  // -------------------------------------------------------------------------

  private async readAt(query: SnapshotQuery, issued: number): Promise<StateSnapshot> {
    if (!this.degraded) {
      try {
        const snap = await this.primary.readSnapshot(query);
        if (snap.endpoints.length === 0 && this.lastEndpoints && this.lastEndpoints.length > 0) {
          // Redis lost the endpoint set (flushed, or restarted without our noticing): re-publish it.
          snap.endpoints = this.lastEndpoints;
          const eps = this.lastEndpoints;
          void this.tryPrimary('replaceEndpoints', () => this.primary.replaceEndpoints(eps));
        }
        this.baseline = snap;
        this.baselineSeq = issued;
        this.picks.settledBefore(issued);
        return snap;
      } catch (e) {
        this.breaker.fail('readSnapshot', e as Error);
      }
    }
    this.breaker.fallback();
    return shadowSnapshot({
      baseline: this.baseline,
      baselineSeq: this.baselineSeq,
      overlay: await this.overlay.readSnapshot(query),
      e0: this.e0,
      decayFactor: this.decayFactor,
      withLoads: query.bucketLoads === true,
      picks: this.picks,
      ownEndpoints: this.lastEndpoints !== undefined,
    });
  }

  private prefillOpen(chargeId: string): boolean {
    return this.picks.open.get(chargeId)?.prefillDoneSeq === undefined;
  }

  private freshOverlay(): MemoryStateStore {
    return new MemoryStateStore({ decisionsLimit: this.decisionsLimit, now: this.now });
  }

  /** Runs a primary call; on failure goes degraded and returns false. */
  private async tryPrimary(op: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      this.breaker.fail(op, e as Error);
      return false;
    }
  }

  /** The breaker's probe: ping, resynchronise, then start afresh on Redis. */
  private async probe(): Promise<void> {
    await this.primary.ping();
    await resync({
      primary: this.primary,
      picks: this.picks,
      overlay: this.overlay,
      endpoints: this.lastEndpoints,
      dirtySignals: this.dirtySignals,
      now: this.now,
    });
    // From here to recovered() nothing awaits, so no local pick can slip in unrestored.
    if (localPicksOpen(this.picks)) throw new Error('local picks opened during the resync');
    this.picks.dropUnsent();
    this.baseline = undefined;
    this.e0 = 0;
    const overlay = (this.overlay = this.freshOverlay());
    this.breaker.recovered();
    // The next outage's overlay starts from what this replica knows.
    if (this.lastEndpoints) await overlay.replaceEndpoints(this.lastEndpoints);
    for (const [id, s] of this.latestSignals) await overlay.writeSignals(id, s);
  }
}
