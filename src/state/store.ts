// The StateStore: everything scheduling shares between EPP replicas. One
// interface, two backends (memory for one replica, Redis for many). The hot
// path is one read (readSnapshot) and one write (commitPick) per request.
import type {
  BlockKeys,
  BucketLoadRecord,
  Endpoint,
  EndpointSignals,
  PickCharges,
} from '../scheduling/types.js';

export interface SnapshotQuery {
  /** Approximate prefix index: match these prompt block keys (in order). */
  prefixHashes?: BlockKeys;
  /** Look up a cached cache-indexer answer under this key. */
  indexerCacheKey?: string;
  /** Also return PD bucket loads and the pool's event counter. */
  bucketLoads?: boolean;
  /** Flow control's admission: reserve a place for this pick in the same step (admission.ts). */
  admission?: AdmissionQuery;
}

/**
 * One pick's place in the shared admission count. The store counts the
 * reservations of other replicas not yet committed (or cancelled, or
 * expired) and adds this one, as one atomic step: of two replicas reading
 * at once, the later sees the earlier, so together they never judge the
 * pool on a view that misses an admitted pick. The pick's commit turns the
 * reservation into its charge in the same step; a pick that is not admitted
 * cancels it (cancelAdmission).
 */
export interface AdmissionQuery {
  /** The pick's charge id (its commit converts the reservation). */
  id: string;
  /** This replica's charge-id prefix (`<owner>.<n>`): its own reservations it counts itself. */
  owner: string;
  /** A reservation neither committed nor cancelled (its replica died) lapses after this. */
  ttlMs: number;
  /**
   * This replica's queue heads (cross-replica fair dispatch,
   * src/flow/fair-share.ts), published in the same step: they replace what
   * this owner published before (an empty list removes them), and the
   * snapshot answers the other owners' live heads (`foreignHeads`). Absent:
   * nothing is published or read.
   */
  heads?: readonly QueueHead[];
  /** Published heads lapse after this unless published again (their replica died or stalled). */
  headsTtlMs?: number;
}

/**
 * The oldest waiting request of one priority band of one replica's queue.
 * Ages, not times, cross the store: the store keeps its own clock, so the
 * replicas' clocks need not agree.
 */
export interface QueueHead {
  /** The band (the request's priority). */
  priority: number;
  /** How long it has waited, ms. */
  ageMs: number;
  /** Its replica's enqueue sequence number: names the request (the same head across reads). */
  seq: number;
}

/** Another replica's queue head, as a snapshot answers it. */
export interface ForeignHead extends QueueHead {
  /** The publishing replica's owner (AdmissionQuery.owner). */
  owner: string;
  /** Time left before it lapses unless its replica publishes it again, ms (<= 0: lapsed). */
  expiresInMs: number;
}

export interface StateSnapshot {
  /** The registered (ready) endpoints. */
  endpoints: Endpoint[];
  signals: Map<string, EndpointSignals>;
  /** Unexpired in-flight charges per endpoint id. */
  inFlight: Map<string, number>;
  /** Unexpired prefill-token charges not yet released by a first token, per endpoint id. */
  pendingPrefillTokens: Map<string, number>;
  bucketLoads: Map<string, BucketLoadRecord>;
  poolEvent: number;
  /** Leading prompt blocks found per endpoint id (only when asked). */
  prefixMatches?: Map<string, number>;
  /** Cached cache-indexer answer (only when asked and present). */
  indexerAnswer?: string;
  /**
   * Admissions other replicas reserved and have not committed yet (only
   * when asked; absent when the shared store could not be reached and the
   * snapshot is this replica's local view).
   */
  admissionsElsewhere?: number;
  /**
   * Other replicas' live queue heads (only when the admission query carried
   * `heads`; absent on the local view, like admissionsElsewhere).
   */
  foreignHeads?: ForeignHead[];
  /**
   * This replica's heads as the store keeps them (with foreignHeads): their
   * ages on the store's clock, the ones to compare with the foreign heads'.
   */
  ownHeads?: ForeignHead[];
}

export interface DecisionRecord {
  requestId: string;
  atMs: number;
  model: string;
  profile: string;
  endpoint: string;
  fallbacks?: string[];
  prefill?: string;
  decode?: string;
  promptTokens: number;
  score: number;
}

export interface PickCommit {
  /**
   * Names this pick's charges: unique per pick, made by the EPP (never the
   * client's x-request-id, which two requests may share).
   */
  chargeId: string;
  charges: PickCharges;
  /** In-flight charges expire after this unless renewed (replica death). */
  leaseMs: number;
  /** Approximate prefix index capacity per endpoint (blocks). */
  prefixCapacityPerEndpoint?: number;
  decision: DecisionRecord;
}

/** What release() needs to undo a pick exactly. */
export interface PickReceipt {
  chargeId: string;
  charges: PickCharges;
  /** Pool event counter right after the bucket charge (decay of the release). */
  chargedAtEvent: number;
}

/** Counters of a shared store's resilience (calls answered locally, failures, resyncs). */
export interface ResilienceCounters {
  /** Calls answered from local state instead of Redis. */
  fallbacks: number;
  /** Redis calls that failed (and started or prolonged degraded mode). */
  errors: number;
  /** Times the store went degraded. */
  degradedEntered: number;
  /** Completed resynchronisations. */
  resyncs: number;
  resyncFailures: number;
}

/** What a store says about itself (readiness, metrics, whether replicas share it). */
export interface StoreHealth {
  readonly backend: 'memory' | 'redis';
  /** Replicas coordinate through this store (scrape and discovery leases). */
  readonly shared: boolean;
  /** The shared backend is unreachable: this replica schedules from local state. */
  readonly degraded: boolean;
  /** Present on stores that fall back to local state. */
  readonly counters?: Readonly<ResilienceCounters>;
}

export interface StateStore {
  health(): StoreHealth;
  /** Calls `cb` each time `health().degraded` changes; returns an unsubscribe. */
  onHealthChange(cb: (health: StoreHealth) => void): () => void;

  // Discovery: the full set of ready endpoints (replaces the previous set).
  replaceEndpoints(endpoints: readonly Endpoint[]): Promise<void>;
  // Scraping: latest signals of one endpoint.
  writeSignals(endpointId: string, signals: EndpointSignals): Promise<void>;

  // Hot path.
  readSnapshot(query: SnapshotQuery): Promise<StateSnapshot>;
  commitPick(commit: PickCommit): Promise<PickReceipt>;
  /**
   * Undoes a pick's charges. With `wakeFrom` (the releasing replica's owner:
   * its own queue is empty and other replicas' are not) the release then
   * wakes the other replicas (onWake), in that order, so the woken see the room.
   */
  release(receipt: PickReceipt, wakeFrom?: string): Promise<void>;
  /**
   * The response's first token: undoes the pick's prefill-token charges
   * (its other charges stay until release). Idempotent; a no-op once the
   * pick was released or its lease expired.
   */
  releasePrefill(receipt: PickReceipt): Promise<void>;
  /**
   * Withdraws an admission reservation whose pick was not committed (held
   * back, failed). With `wakeFrom` (the refusing replica's owner: it left the
   * pool's room to an older request elsewhere) the withdrawal then wakes the
   * other replicas (onWake), in that order, so the woken see the room.
   */
  cancelAdmission(id: string, wakeFrom?: string): Promise<void>;
  /** Removes the queue heads `owner` published (its queue emptied). */
  clearHeads(owner: string): Promise<void>;
  /**
   * Calls `cb` with the waking owner each time a replica yields room or
   * frees it for others (cancelAdmission or release with wakeFrom); returns
   * an unsubscribe. The Redis store
   * subscribes on a connection of its own at the first call.
   */
  onWake(cb: (from: string) => void): () => void;
  /** Extends the in-flight leases of picks whose responses are still open. */
  renewLeases(chargeIds: readonly string[], leaseMs: number): Promise<void>;

  // Shared background work: true when `holder` now holds `name` (acquired or renewed).
  tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;

  // cache-indexer answers, cached briefly per prompt-prefix key.
  putIndexerAnswer(key: string, answer: string, ttlMs: number): Promise<void>;

  // Inspection.
  recentDecisions(limit: number): Promise<DecisionRecord[]>;

  close(): Promise<void>;
}

// The charge algebra lives in charges.ts; re-exported for existing callers.
export { decayed } from './charges.js';
