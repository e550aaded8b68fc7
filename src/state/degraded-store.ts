// Degraded mode for the shared (Redis) state. While Redis answers, every
// call goes straight to it. When a call fails or times out, the wrapper
// flips to degraded: it answers from the last good snapshot plus this
// replica's own charges kept in a local MemoryStateStore (the overlay), never
// throwing to the request path, and probes Redis in the background. When
// Redis answers again it resynchronises (re-publishes endpoints, signals
// written meanwhile, releases it could not send, and every pick still open)
// and flips back.
//
// Degraded view of the bucket loads, in the pool's event space: the overlay
// counts its own events from E0 = the baseline's pool event, so
//   load(now) = decay(baseline, now) + decay(overlay, E0 + its event, now)
//             + own Redis picks the baseline did not see - own releases it did see
// (decay is linear, so the parts add up exactly).
import type { BucketLoadRecord, Endpoint, EndpointSignals, PickCharges } from '../scheduling/types.js';
import { applyPrefill, hasPrefill } from './charges.js';
import { MemoryStateStore } from './memory-store.js';
import {
  decayed,
  type DecisionRecord,
  type PickCommit,
  type PickReceipt,
  type SnapshotQuery,
  type StateSnapshot,
  type StateStore,
} from './store.js';

/** What the wrapper needs of the shared backend beyond StateStore. */
export interface ResyncableStore extends StateStore {
  ping(): Promise<void>;
  /** Idempotent charge: renews the pick if still stored, else charges `charges`. */
  restorePick(chargeId: string, charges: PickCharges, leaseMs: number): Promise<PickReceipt>;
}

/** pino-compatible. */
export interface StateLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface DegradedCounters {
  /** Calls answered from local state instead of Redis. */
  fallbacks: number;
  /** Redis calls that failed (and triggered or prolonged degraded mode). */
  errors: number;
  /** Times the store went degraded. */
  degradedEntered: number;
  /** Completed resynchronisations. */
  resyncs: number;
  resyncFailures: number;
}

export interface DegradedStoreOptions {
  /** How often Redis is probed while degraded. */
  probeIntervalMs?: number;
  /** At most one "still degraded" log line per interval. */
  logIntervalMs?: number;
  logger?: StateLogger;
  decisionsLimit?: number;
  now?: () => number;
}

interface OpenPick {
  commit: PickCommit;
  /** 'redis': receipt is in Redis; 'local': receipt is the overlay's. */
  origin: 'redis' | 'local';
  receipt: PickReceipt;
  /** Local sequence number when the Redis commit completed. */
  seq: number;
  expiresAtMs: number;
  /**
   * The prefill-token charge's release: undefined while it is charged;
   * Infinity released here but not yet sent to Redis; else the sequence
   * at which Redis applied it (0: never in Redis).
   */
  prefillDoneSeq?: number;
}

interface ReleasedPick {
  pick: OpenPick;
  /** Sequence when Redis applied the release; Infinity = not yet sent. */
  doneSeq: number;
}

const NO_SNAPSHOT: StateSnapshot = {
  endpoints: [],
  signals: new Map(),
  inFlight: new Map(),
  pendingPrefillTokens: new Map(),
  bucketLoads: new Map(),
  poolEvent: 0,
};

export class DegradedStateStore implements StateStore {
  readonly backend: StateStore['backend'];
  readonly counters: DegradedCounters = {
    fallbacks: 0,
    errors: 0,
    degradedEntered: 0,
    resyncs: 0,
    resyncFailures: 0,
  };
  private isDegraded = false;
  private readonly listeners = new Set<(degraded: boolean) => void>();
  private overlay: MemoryStateStore;
  /** Pool event of the baseline when degraded mode began. */
  private e0 = 0;
  private baseline: StateSnapshot | undefined;
  private baselineSeq = 0;
  private seq = 0;
  private readonly open = new Map<string, OpenPick>();
  private released: ReleasedPick[] = [];
  private lastEndpoints: Endpoint[] | undefined;
  private readonly latestSignals = new Map<string, EndpointSignals>();
  private readonly dirtySignals = new Map<string, EndpointSignals>();
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private lastLogMs = 0;
  private fallbacksAtLastLog = 0;
  private closed = false;
  private readonly probeIntervalMs: number;
  private readonly logIntervalMs: number;
  private readonly logger: StateLogger | undefined;
  private readonly decisionsLimit: number | undefined;
  private readonly now: () => number;
  /** Read sequence of each snapshot handed out (for addOwnPending). */
  private readonly snapSeq = new WeakMap<StateSnapshot, number>();
  private readonly loadsAsked = new WeakSet<StateSnapshot>();
  /** Own picks by issue sequence, the last couple of seconds. */
  private recent: Array<{ seq: number; atMs: number; chargeId: string; charges: PickCharges }> = [];
  /** The profile's bucket decay factor, learnt from the charges (records do not carry it). */
  private decayFactor: number | undefined;

  constructor(
    private readonly primary: ResyncableStore,
    opts: DegradedStoreOptions = {},
  ) {
    this.backend = primary.backend;
    this.probeIntervalMs = opts.probeIntervalMs ?? 500;
    this.logIntervalMs = opts.logIntervalMs ?? 10_000;
    this.logger = opts.logger;
    this.decisionsLimit = opts.decisionsLimit;
    this.now = opts.now ?? Date.now;
    this.overlay = this.freshOverlay();
  }

  get degraded(): boolean {
    return this.isDegraded;
  }

  /** Called with the new value each time degraded mode starts or ends; returns an unsubscribe. */
  onDegradedChange(cb: (degraded: boolean) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Enter degraded mode from outside (e.g. Redis unreachable at start-up). */
  markUnavailable(err: Error): void {
    this.fail('connect', err);
  }

  /** Runs one probe + resync now (tests; the timer does it otherwise). */
  async probeNow(): Promise<boolean> {
    if (!this.isDegraded) return true;
    await this.probe();
    return !this.isDegraded;
  }

  async replaceEndpoints(endpoints: readonly Endpoint[]): Promise<void> {
    this.lastEndpoints = endpoints.slice();
    await this.overlay.replaceEndpoints(endpoints);
    const live = new Set(endpoints.map((e) => e.id));
    for (const id of this.latestSignals.keys()) if (!live.has(id)) this.latestSignals.delete(id);
    if (this.isDegraded) return;
    // Re-published on resync when this fails.
    await this.tryPrimary('replaceEndpoints', () => this.primary.replaceEndpoints(endpoints));
  }

  async writeSignals(endpointId: string, signals: EndpointSignals): Promise<void> {
    this.latestSignals.set(endpointId, signals);
    await this.overlay.writeSignals(endpointId, signals);
    if (
      !this.isDegraded &&
      (await this.tryPrimary('writeSignals', () => this.primary.writeSignals(endpointId, signals)))
    ) {
      return;
    }
    this.dirtySignals.set(endpointId, signals);
  }

  async readSnapshot(query: SnapshotQuery): Promise<StateSnapshot> {
    const issued = ++this.seq;
    const snap = await this.readAt(query, issued);
    this.snapSeq.set(snap, issued);
    return snap;
  }

  /**
   * Own picks issued after `snap`'s read was issued are not in it (Redis runs
   * one connection's commands in order): add them, so that requests whose
   * reads overlapped see each other's picks as one in-process replica does.
   */
  addOwnPending(snap: StateSnapshot): void {
    const readSeq = this.snapSeq.get(snap);
    if (readSeq === undefined) return;
    this.snapSeq.delete(snap);
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i]!;
      if (r.seq <= readSeq) break;
      for (const id of r.charges.inFlight) snap.inFlight.set(id, (snap.inFlight.get(id) ?? 0) + 1);
      if (this.open.get(r.chargeId)?.prefillDoneSeq === undefined)
        applyPrefill(snap.pendingPrefillTokens, r.charges, 1);
      const b = r.charges.bucket;
      if (!b || !this.loadsAsked.has(snap)) continue;
      const now = snap.poolEvent;
      for (const it of b.items) {
        const rec = snap.bucketLoads.get(it.endpointId);
        const next = rec
          ? {
              short: decayed(rec.short, rec.atEvent, now, b.decayFactor),
              long: decayed(rec.long, rec.atEvent, now, b.decayFactor),
              atEvent: now,
            }
          : { short: 0, long: 0, atEvent: now };
        next[it.bucket] += it.amount;
        snap.bucketLoads.set(it.endpointId, next);
      }
    }
  }

  private async readAt(query: SnapshotQuery, issued: number): Promise<StateSnapshot> {
    if (!this.isDegraded) {
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
        if (query.bucketLoads) this.loadsAsked.add(snap);
        // Releases Redis applied before this read was sent are in the baseline.
        if (this.released.length > 0) this.released = this.released.filter((r) => r.doneSeq > issued);
        return snap;
      } catch (e) {
        this.fail('readSnapshot', e as Error);
      }
    }
    this.counters.fallbacks++;
    const shadow = await this.shadowSnapshot(query);
    if (query.bucketLoads) this.loadsAsked.add(shadow);
    return shadow;
  }

  async commitPick(commit: PickCommit): Promise<PickReceipt> {
    if (commit.charges.bucket) this.decayFactor = commit.charges.bucket.decayFactor;
    const nowMs = this.now();
    const expiresAtMs = nowMs + commit.leaseMs;
    const issued = ++this.seq;
    this.noteRecent(issued, nowMs, commit.chargeId, commit.charges);
    if (!this.isDegraded) {
      try {
        const receipt = await this.primary.commitPick(commit);
        this.track({ commit, origin: 'redis', receipt, seq: issued, expiresAtMs });
        return receipt;
      } catch (e) {
        // The script may still have run (timeout): restorePick is idempotent, so resync cannot double count.
        this.fail('commitPick', e as Error);
      }
    }
    this.counters.fallbacks++;
    const local = await this.overlay.commitPick(commit);
    this.track({ commit, origin: 'local', receipt: local, seq: issued, expiresAtMs });
    return { ...local, chargedAtEvent: this.e0 + local.chargedAtEvent };
  }

  async release(receipt: PickReceipt): Promise<void> {
    const p = this.open.get(receipt.chargeId);
    this.open.delete(receipt.chargeId);
    if (p?.origin === 'local') {
      await this.overlay.release(p.receipt);
      return;
    }
    const redisReceipt = p ? p.receipt : receipt;
    if (!this.isDegraded) {
      const issued = ++this.seq;
      try {
        await this.primary.release(redisReceipt);
        if (p) this.released.push({ pick: p, doneSeq: issued });
        return;
      } catch (e) {
        this.fail('release', e as Error);
      }
    }
    this.counters.fallbacks++;
    this.released.push({ pick: p ?? unknownPick(receipt), doneSeq: Infinity });
  }

  async releasePrefill(receipt: PickReceipt): Promise<void> {
    const p = this.open.get(receipt.chargeId);
    if (!p) {
      // Not ours (another handle committed it): Redis alone knows; lost if it is down (the lease ends it).
      if (!hasPrefill(receipt.charges)) return;
      if (!this.isDegraded)
        await this.tryPrimary('releasePrefill', () => this.primary.releasePrefill(receipt));
      else this.counters.fallbacks++;
      return;
    }
    if (p.prefillDoneSeq !== undefined || !hasPrefill(p.commit.charges)) return;
    if (p.origin === 'local') {
      p.prefillDoneSeq = 0;
      await this.overlay.releasePrefill(p.receipt);
      return;
    }
    if (!this.isDegraded) {
      const issued = ++this.seq;
      p.prefillDoneSeq = issued;
      try {
        await this.primary.releasePrefill(p.receipt);
        return;
      } catch (e) {
        this.fail('releasePrefill', e as Error);
      }
    }
    this.counters.fallbacks++;
    // Sent on resync (with the rest of the pick if it is released by then).
    p.prefillDoneSeq = Infinity;
  }

  async renewLeases(chargeIds: readonly string[], leaseMs: number): Promise<void> {
    const expiresAtMs = this.now() + leaseMs;
    for (const id of chargeIds) {
      const p = this.open.get(id);
      if (p) p.expiresAtMs = expiresAtMs;
    }
    await this.overlay.renewLeases(chargeIds, leaseMs);
    if (this.isDegraded) return;
    await this.tryPrimary('renewLeases', () => this.primary.renewLeases(chargeIds, leaseMs));
  }

  async tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    if (!this.isDegraded) {
      try {
        return await this.primary.tryAcquireLease(name, holder, ttlMs);
      } catch (e) {
        this.fail('tryAcquireLease', e as Error);
      }
    }
    // Cut off from the others: do the shared work ourselves.
    this.counters.fallbacks++;
    return this.overlay.tryAcquireLease(name, holder, ttlMs);
  }

  async putIndexerAnswer(key: string, answer: string, ttlMs: number): Promise<void> {
    if (
      !this.isDegraded &&
      (await this.tryPrimary('putIndexerAnswer', () => this.primary.putIndexerAnswer(key, answer, ttlMs)))
    ) {
      return;
    }
    await this.overlay.putIndexerAnswer(key, answer, ttlMs);
  }

  async recentDecisions(limit: number): Promise<DecisionRecord[]> {
    if (!this.isDegraded) {
      try {
        return await this.primary.recentDecisions(limit);
      } catch (e) {
        this.fail('recentDecisions', e as Error);
      }
    }
    this.counters.fallbacks++;
    return this.overlay.recentDecisions(limit);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    await this.primary.close();
  }

  // -------------------------------------------------------------------------

  private noteRecent(seq: number, atMs: number, chargeId: string, charges: PickCharges): void {
    this.recent.push({ seq, atMs, chargeId, charges });
    // A snapshot is used within milliseconds of its read: older picks are in every snapshot still to come.
    let drop = 0;
    while (
      drop < this.recent.length &&
      (this.recent[drop]!.atMs < atMs - 2_000 || this.recent.length - drop > 10_000)
    )
      drop++;
    if (drop > 0) this.recent.splice(0, drop);
  }

  private freshOverlay(): MemoryStateStore {
    return new MemoryStateStore({ decisionsLimit: this.decisionsLimit, now: this.now });
  }

  private track(p: OpenPick): void {
    this.open.set(p.commit.chargeId, p);
    // Picks nobody releases (caller bug) must not pile up: forget them once their lease is long gone.
    if (this.open.size % 4096 === 0) {
      const now = this.now();
      for (const [id, o] of this.open) if (o.expiresAtMs < now) this.open.delete(id);
    }
  }

  /** Runs a primary call; on failure goes degraded and returns false. */
  private async tryPrimary(op: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      this.fail(op, e as Error);
      return false;
    }
  }

  private fail(op: string, err: Error): void {
    this.counters.errors++;
    if (this.isDegraded || this.closed) {
      this.logStill();
      return;
    }
    this.isDegraded = true;
    this.counters.degradedEntered++;
    this.e0 = this.baseline?.poolEvent ?? 0;
    this.lastLogMs = this.now();
    this.fallbacksAtLastLog = this.counters.fallbacks;
    this.logger?.warn(
      { op, err: err.message },
      'shared state (Redis) unavailable: scheduling from the last snapshot plus local charges',
    );
    this.emit(true);
    this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
    this.probeTimer.unref();
  }

  private logStill(): void {
    const now = this.now();
    if (now - this.lastLogMs < this.logIntervalMs) return;
    this.logger?.warn(
      { fallbacks: this.counters.fallbacks - this.fallbacksAtLastLog, errors: this.counters.errors },
      'shared state (Redis) still unavailable',
    );
    this.lastLogMs = now;
    this.fallbacksAtLastLog = this.counters.fallbacks;
  }

  private emit(degraded: boolean): void {
    for (const cb of this.listeners) {
      try {
        cb(degraded);
      } catch {
        // A metrics callback must not break the state path.
      }
    }
  }

  private async probe(): Promise<void> {
    if (this.probing || !this.isDegraded || this.closed) return;
    this.probing = true;
    try {
      await this.primary.ping();
      await this.resync();
    } catch (e) {
      this.counters.errors++;
      this.counters.resyncFailures++;
      this.logStill();
      void e;
    } finally {
      this.probing = false;
    }
  }

  /** Re-publishes what Redis must know, then leaves degraded mode. */
  private async resync(): Promise<void> {
    if (this.lastEndpoints) await this.primary.replaceEndpoints(this.lastEndpoints);
    for (const [id, s] of [...this.dirtySignals]) {
      await this.primary.writeSignals(id, s);
      if (this.dirtySignals.get(id) === s) this.dirtySignals.delete(id);
    }
    for (const r of this.released.filter((x) => x.doneSeq === Infinity)) {
      await this.primary.release(r.pick.receipt);
      r.doneSeq = ++this.seq;
    }
    for (const p of this.open.values()) {
      if (p.origin === 'redis' && p.prefillDoneSeq === Infinity) {
        await this.primary.releasePrefill(p.receipt);
        p.prefillDoneSeq = ++this.seq;
      }
    }
    const restored = new Set<OpenPick>();
    for (let round = 0; round < 5; round++) {
      const todo = [...this.open.values()].filter((p) => !restored.has(p));
      if (todo.length === 0) break;
      const overlayEvent = (await this.overlay.readSnapshot({})).poolEvent;
      for (const p of todo) {
        restored.add(p);
        await this.restore(p, overlayEvent);
      }
    }
    // Picks opened locally during the awaits above would be lost to Redis: try again next probe.
    for (const p of this.open.values()) if (p.origin === 'local') throw new Error('local picks still open');
    this.isDegraded = false;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.released = this.released.filter((r) => r.doneSeq !== Infinity);
    this.baseline = undefined;
    this.e0 = 0;
    this.overlay = this.freshOverlay();
    if (this.lastEndpoints) await this.overlay.replaceEndpoints(this.lastEndpoints);
    for (const [id, s] of this.latestSignals) await this.overlay.writeSignals(id, s);
    this.counters.resyncs++;
    this.logger?.info({ fallbacks: this.counters.fallbacks }, 'shared state (Redis) back: resynchronised');
    this.emit(false);
  }

  private async restore(p: OpenPick, overlayEvent: number): Promise<void> {
    const id = p.commit.chargeId;
    const leaseMs = Math.max(1_000, p.expiresAtMs - this.now());
    if (p.origin === 'redis') {
      // Still stored: lease renewed. Lost (outage longer than the lease, or
      // Redis restarted empty): the in-flight charge comes back; the bucket
      // part stays on the original receipt so release() still undoes it.
      await this.primary.restorePick(id, openCounts(p), leaseMs);
      return;
    }
    const charges = decayedCharges(p.commit.charges, p.receipt.chargedAtEvent, overlayEvent);
    if (p.prefillDoneSeq !== undefined) delete charges.prefillTokens;
    const receipt = await this.primary.restorePick(id, charges, leaseMs);
    if (this.open.get(id) === p) {
      p.origin = 'redis';
      p.receipt = receipt;
      p.seq = ++this.seq;
      // Released before the restore: Redis never saw that charge.
      if (p.prefillDoneSeq !== undefined) p.prefillDoneSeq = 0;
    } else {
      // Released while we were restoring it.
      await this.primary.release(receipt);
    }
  }

  private async shadowSnapshot(query: SnapshotQuery): Promise<StateSnapshot> {
    const o = await this.overlay.readSnapshot(query);
    const b = this.baseline ?? NO_SNAPSHOT;
    const now = this.e0 + o.poolEvent;
    const signals = new Map(b.signals);
    for (const [id, s] of o.signals) {
      const cur = signals.get(id);
      if (!cur || s.updatedAtMs >= cur.updatedAtMs) signals.set(id, s);
    }
    const inFlight = new Map(b.inFlight);
    for (const [id, n] of o.inFlight) inFlight.set(id, (inFlight.get(id) ?? 0) + n);
    const pendingPrefill = new Map(b.pendingPrefillTokens);
    for (const [id, n] of o.pendingPrefillTokens) pendingPrefill.set(id, (pendingPrefill.get(id) ?? 0) + n);
    const loads = new Map<string, BucketLoadRecord>();
    const d = this.decayFactor;
    if (query.bucketLoads && d === undefined) {
      // No bucket charge seen here yet (so the overlay has none): the baseline as stored.
      for (const [id, r] of b.bucketLoads) loads.set(id, { ...r });
    } else if (query.bucketLoads && d !== undefined) {
      // Everything re-expressed at the combined event `now`.
      for (const [id, r] of b.bucketLoads) {
        addLoad(loads, id, decayed(r.short, r.atEvent, now, d), decayed(r.long, r.atEvent, now, d), now);
      }
      for (const [id, r] of o.bucketLoads) {
        const at = this.e0 + r.atEvent;
        addLoad(loads, id, decayed(r.short, at, now, d), decayed(r.long, at, now, d), now);
      }
    }
    const adjust = query.bucketLoads && d !== undefined ? loads : undefined;
    // Own Redis picks the baseline did not include, and own releases it did.
    for (const p of this.open.values()) {
      if (p.origin === 'redis' && p.seq > this.baselineSeq) applyCharge(inFlight, adjust, p, now, +1);
    }
    for (const r of this.released) {
      if (r.pick.seq <= this.baselineSeq && r.doneSeq >= this.baselineSeq)
        applyCharge(inFlight, adjust, r.pick, now, -1);
    }
    this.adjustPrefill(pendingPrefill);
    const snap: StateSnapshot = {
      endpoints: this.lastEndpoints ? o.endpoints : b.endpoints,
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
   * released) minus what the baseline holds (committed before its read,
   * and released in Redis, if at all, after it).
   */
  private adjustPrefill(pending: Map<string, number>): void {
    const bSeq = this.baselineSeq;
    const inBaseline = (p: OpenPick, releasedSeq: number) =>
      p.seq <= bSeq && releasedSeq > bSeq && (p.prefillDoneSeq === undefined || p.prefillDoneSeq > bSeq);
    for (const p of this.open.values()) {
      if (p.origin !== 'redis' || !hasPrefill(p.commit.charges)) continue;
      const now = p.prefillDoneSeq === undefined ? 1 : 0;
      const delta = now - (inBaseline(p, Infinity) ? 1 : 0);
      if (delta !== 0) applyPrefill(pending, p.commit.charges, delta);
    }
    for (const r of this.released) {
      if (r.pick.origin === 'redis' && hasPrefill(r.pick.commit.charges) && inBaseline(r.pick, r.doneSeq))
        applyPrefill(pending, r.pick.commit.charges, -1);
    }
  }
}

function openCounts(p: OpenPick): PickCharges {
  const c: PickCharges = { inFlight: p.commit.charges.inFlight };
  if (p.prefillDoneSeq === undefined && p.commit.charges.prefillTokens)
    c.prefillTokens = p.commit.charges.prefillTokens;
  return c;
}

function unknownPick(receipt: PickReceipt): OpenPick {
  const decision = {
    requestId: '',
    atMs: 0,
    model: '',
    profile: '',
    endpoint: '',
    promptTokens: 0,
    score: 0,
  };
  // seq -1: not part of any baseline adjustment, only replayed on resync.
  return {
    commit: { chargeId: receipt.chargeId, charges: receipt.charges, leaseMs: 0, decision },
    origin: 'redis',
    receipt,
    seq: Number.POSITIVE_INFINITY,
    expiresAtMs: 0,
  };
}

function addLoad(
  into: Map<string, BucketLoadRecord>,
  id: string,
  short: number,
  long: number,
  at: number,
): void {
  const cur = into.get(id);
  if (cur) {
    cur.short += short;
    cur.long += long;
  } else into.set(id, { short, long, atEvent: at });
}

function applyCharge(
  inFlight: Map<string, number>,
  loads: Map<string, BucketLoadRecord> | undefined,
  p: OpenPick,
  now: number,
  sign: 1 | -1,
): void {
  for (const id of p.commit.charges.inFlight) {
    const n = (inFlight.get(id) ?? 0) + sign;
    if (n > 0) inFlight.set(id, n);
    else inFlight.delete(id);
  }
  const b = p.commit.charges.bucket;
  if (!loads || !b) return;
  for (const it of b.items) {
    const amount = sign * decayed(it.amount, p.receipt.chargedAtEvent, now, b.decayFactor);
    const rec = loads.get(it.endpointId) ?? { short: 0, long: 0, atEvent: now };
    rec[it.bucket] = Math.max(0, rec[it.bucket] + amount);
    loads.set(it.endpointId, rec);
  }
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
