// The director: for one parsed request, fetch what the profile needs (state
// snapshot, cache-indexer hit rates) within a time budget, run the pure
// scheduler, and charge the pick to shared state. It is the only place the
// request path awaits I/O; plugins never do.
import { randomBytes } from 'node:crypto';
import type { DataNeeds, SaturationDetector } from '../scheduling/plugin.js';
import { collectNeeds, type CompiledProfile } from '../scheduling/profile.js';
import { schedule } from '../scheduling/scheduler.js';
import { SchedulingError } from '../scheduling/types.js';
import type {
  CycleContext,
  CycleData,
  Endpoint,
  EndpointView,
  HitRates,
  LLMRequest,
  SchedulingResult,
} from '../scheduling/types.js';
import {
  textBlockKeys,
  textKeysAndDigest,
  tokenBlockKeys,
  tokenKeysAndDigest,
  utf8BlockKeys,
  utf8KeysAndDigest,
  type KeysAndDigest,
} from '../request/prefix-hash.js';
import { hasPrefill } from '../state/charges.js';
import type {
  AdmissionQuery,
  ForeignHead,
  PickReceipt,
  QueueHead,
  StateSnapshot,
  StateStore,
} from '../state/store.js';
import {
  parseMatchSort,
  type CacheIndexerClient,
  type IndexerOutcome,
} from '../datalayer/cache-indexer-client.js';

export interface DirectorHooks {
  /** A cache-indexer call ended (or was skipped by the breaker). */
  onIndexer?(outcome: IndexerOutcome): void;
  /** A state-store call failed; scheduling went on without it. */
  onStateError?(op: string, err: Error): void;
  /** A pick's charges were released (capacity freed: flow control dispatches). */
  onReleased?(): void;
  /**
   * A pick's prefill-token charge was released at its first token: capacity
   * for a detector that counts pending prefill tokens (concurrency-detector,
   * tokens mode).
   */
  onPrefillReleased?(): void;
}

export interface DirectorOptions {
  store: StateStore;
  profile: CompiledProfile;
  indexer?: CacheIndexerClient;
  /** Signals older than this are unknown (--metrics-staleness-threshold). */
  stalenessMs?: number;
  /** In-flight charge lease (renewed while the response streams). */
  leaseMs?: number;
  /** How long a cache-indexer answer is reused for the same prompt. */
  indexerCacheTtlMs?: number;
  random?: () => number;
  now?: () => number;
  hooks?: DirectorHooks;
  /** Judges the candidates before a sheddable request is scheduled (GIE legacy admission). */
  saturationDetector?: SaturationDetector;
  /** Filters the shared endpoint list to what this replica discovered (src/discovery/discovered-set.ts). */
  admitEndpoints?: (shared: readonly Endpoint[]) => Endpoint[];
  /**
   * Asked at each release: whether other replicas have requests queued that
   * this one would not dispatch itself (FlowController.othersWaiting); the
   * release then wakes them (StateStore.release with wakeFrom).
   */
  wakeOthersOnRelease?: () => boolean;
}

/** Per-request options of Director.pick. */
export interface PickOptions {
  /**
   * Restricts the candidates (the gateway's subset hint): endpoints it
   * rejects are not scheduled; none left -> SchedulingError NO_CANDIDATES.
   */
  candidates?: (endpoint: EndpointView['endpoint']) => boolean;
  /**
   * Priority < 0 (its InferenceObjective): refused with SchedulingError
   * SATURATED when the saturation detector judges the candidates >= 1.
   */
  sheddable?: boolean;
  /**
   * Judges the candidates before scheduling, on the same snapshot; throws to
   * refuse (flow control holds the request while the pool is saturated).
   * With it the snapshot read also reserves the pick's place in the store's
   * shared admission count (StateStore AdmissionQuery): `elsewhere` is how
   * many picks other replicas let through and have not charged yet
   * (undefined: the shared store was unreachable, the view is local);
   * `heads` the queue heads as the store keeps them, the other replicas'
   * and this one's, when `heads` was given (undefined on the local view). A refusal that leaves the pool's room to
   * another replica says so (`leavesRoom: true` on the error): withdrawing
   * its reservation then wakes the other replicas (StateStore.cancelAdmission).
   */
  admit?: (
    views: readonly EndpointView[],
    elsewhere: number | undefined,
    heads: SeenHeads | undefined,
  ) => void;
  /**
   * With admit: this replica's queue heads, published in the same admission
   * step (cross-replica fair dispatch, src/flow/fair-share.ts), lapsing after
   * `headsTtlMs` unless published again.
   */
  heads?: readonly QueueHead[];
  headsTtlMs?: number;
  /**
   * Judges the scheduled destination before it is charged; throws to refuse
   * (as admit). `cachedShare`: the share of the prompt expected cached there
   * (cachedShareOf), undefined when the profile measures none.
   */
  admitTarget?: (primary: EndpointView, cachedShare: number | undefined) => void;
}

/** The queue heads an admission step answered (StateSnapshot.foreignHeads, ownHeads). */
export interface SeenHeads {
  own: readonly ForeignHead[];
  foreign: readonly ForeignHead[];
}

/** An admit refusal that left the pool's room to another replica (PickOptions.admit). */
function leavesRoom(e: unknown): boolean {
  return (e as { leavesRoom?: unknown } | null)?.leavesRoom === true;
}

/** How many parsed indexer answers a director keeps (Director.parsedAnswers). */
const PARSED_ANSWERS = 256;

/** A reservation outlives its pick's snapshot-to-commit window only when its replica died. */
export const ADMISSION_TTL_MS = 2_000;

/**
 * An open pick's charges, owned by the Director until released. Whoever
 * carries the response calls firstToken() when its first byte comes back
 * and release() when it ends, however it ends; both are idempotent.
 */
export interface PickTicket {
  /** What the store needs to undo the pick (charge id, charges, event). */
  readonly receipt: PickReceipt;
  /** The response's first token: releases the prefill-token charge (once; never throws). */
  firstToken(): void;
  /** Releases every charge still held (once; never throws); resolves when the store has it. */
  release(): Promise<void>;
}

export interface Decision {
  result: SchedulingResult;
  ticket: PickTicket;
  /** Scheduling alone (the pure part), microseconds. */
  scheduleUs: number;
}

export function promptHashes(req: LLMRequest, blockSizeTokens: number, maxBlocks: number): Float64Array {
  if (req.tokenIds) return tokenBlockKeys(req.tokenIds, req.model, blockSizeTokens, maxBlocks);
  // The body reader's bytes when it kept them: the prompt is never made a string to be hashed.
  if (req.promptUtf8) return utf8BlockKeys(req.promptUtf8, req.model, blockSizeTokens, maxBlocks);
  return textBlockKeys(req.promptText, req.model, blockSizeTokens, maxBlocks);
}

/** Endpoint views from a snapshot: stale signals become unknown. */
export function endpointViews(snap: StateSnapshot, nowMs: number, stalenessMs: number): EndpointView[] {
  const out: EndpointView[] = new Array(snap.endpoints.length);
  for (let i = 0; i < snap.endpoints.length; i++) {
    const e = snap.endpoints[i]!;
    const s = snap.signals.get(e.id);
    const age = s ? nowMs - s.updatedAtMs : undefined;
    const fresh = s !== undefined && age! <= stalenessMs;
    out[i] = {
      endpoint: e,
      waitingQueueSize: fresh ? s.waitingQueueSize : undefined,
      runningRequests: fresh ? s.runningRequests : undefined,
      kvCacheUsage: fresh ? s.kvCacheUsage : undefined,
      inFlight: snap.inFlight.get(e.id) ?? 0,
      pendingPrefillTokens: snap.pendingPrefillTokens.get(e.id) ?? 0,
      signalsAgeMs: age,
      lora: fresh ? s.lora : undefined,
    };
  }
  return out;
}

export class Director {
  readonly needs: DataNeeds;
  private readonly store: StateStore;
  private readonly profile: CompiledProfile;
  private readonly indexer: CacheIndexerClient | undefined;
  private readonly stalenessMs: number;
  private readonly leaseMs: number;
  private readonly indexerCacheTtlMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly hooks: DirectorHooks;
  /** Open picks by charge id: their leases are renewed until released. */
  private readonly open = new Map<string, Ticket>();
  /** Releases sent and not yet answered (awaited at shutdown). */
  private readonly releasing = new Set<Promise<void>>();
  private renewTimer: NodeJS.Timeout | undefined;
  /**
   * Charge ids are ours, never the client's x-request-id (two requests may
   * share one): a per-instance random prefix (unique across replicas and
   * restarts) and a counter.
   */
  private readonly chargePrefix = randomBytes(9).toString('base64url');
  private chargeSeq = 0;
  /**
   * The hit rates of the answers this director parsed last, by answer-cache key, with the
   * text they came from: a cached answer read again with the same text (the prompt repeated
   * within the cache's TTL) is not parsed again (JSON.parse of a 32-endpoint answer was
   * ~17-20 us). The text is compared, so an entry another replica or call replaced is parsed.
   * The maps are shared between decisions: HitRates is read-only.
   */
  private readonly parsedAnswers = new Map<string, { text: string; rates: HitRates }>();

  constructor(private readonly opts: DirectorOptions) {
    this.store = opts.store;
    this.profile = opts.profile;
    this.indexer = opts.indexer;
    this.stalenessMs = opts.stalenessMs ?? 2_000;
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.indexerCacheTtlMs = opts.indexerCacheTtlMs ?? 500;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.hooks = opts.hooks ?? {};
    this.needs = collectNeeds(opts.profile);
  }

  get profileName(): string {
    return this.profile.name;
  }

  /** Schedules one request; throws SchedulingError when no endpoint can serve it. */
  async pick(req: LLMRequest, opts?: PickOptions): Promise<Decision> {
    const needs = this.needs;
    let prefixHashes: Float64Array | undefined;
    let indexerKey: string | undefined;
    if (needs.indexer) {
      // One pass gives the blocks and the answer's cache key (their chain continued to the end).
      const both = promptKeysAndDigest(req, needs.prefix);
      if (needs.prefix) prefixHashes = both.keys;
      indexerKey = `${req.model}|${both.digest}`;
    } else if (needs.prefix) {
      prefixHashes = promptHashes(req, needs.prefix.blockSizeTokens, needs.prefix.maxPrefixBlocksToMatch);
    }
    const chargeId = this.nextChargeId();
    const admitting = opts?.admit !== undefined;
    const snap = await this.store.readSnapshot({
      prefixHashes,
      indexerCacheKey: indexerKey,
      bucketLoads: needs.bucketLoads,
      admission: admitting ? this.admissionQuery(chargeId, opts) : undefined,
    });
    try {
      return await this.scheduleOn(snap, req, opts, chargeId, prefixHashes, indexerKey);
    } catch (e) {
      // Not admitted or not scheduled: its reservation must not hold a place.
      if (admitting) {
        const wakeFrom = leavesRoom(e) ? this.chargePrefix : undefined;
        void this.guarded('cancelAdmission', () => this.store.cancelAdmission(chargeId, wakeFrom));
      }
      throw e;
    }
  }

  private admissionQuery(id: string, opts: PickOptions | undefined): AdmissionQuery {
    const q: AdmissionQuery = { id, owner: this.chargePrefix, ttlMs: ADMISSION_TTL_MS };
    if (opts?.heads) {
      q.heads = opts.heads;
      q.headsTtlMs = opts.headsTtlMs;
    }
    return q;
  }

  /** This replica's name in the shared store (its charge-id prefix, AdmissionQuery.owner). */
  get owner(): string {
    return this.chargePrefix;
  }

  /** The queue emptied: withdraws the heads this replica published (not awaited; never throws). */
  clearQueueHeads(): void {
    void this.guarded('clearHeads', () => this.store.clearHeads(this.chargePrefix));
  }

  private async scheduleOn(
    snap: StateSnapshot,
    req: LLMRequest,
    opts: PickOptions | undefined,
    chargeId: string,
    prefixHashes: Float64Array | undefined,
    indexerKey: string | undefined,
  ): Promise<Decision> {
    const needs = this.needs;
    const nowMs = this.now();
    const admit = this.opts.admitEndpoints;
    // The shared list is a cache: only what this replica's discovery vouches for is scheduled.
    let views = endpointViews(
      admit ? { ...snap, endpoints: admit(snap.endpoints) } : snap,
      nowMs,
      this.stalenessMs,
    );
    const only = opts?.candidates;
    if (only) {
      views = views.filter((v) => only(v.endpoint));
      if (views.length === 0) {
        throw new SchedulingError(
          'NO_CANDIDATES',
          'failed to find endpoint candidates for serving the request (subset hint)',
        );
      }
    }
    const detector = this.opts.saturationDetector;
    if (opts?.sheddable && detector && detector.saturation(views) >= 1) {
      throw new SchedulingError('SATURATED', 'system saturated, sheddable request dropped');
    }
    const heads = snap.foreignHeads && { own: snap.ownHeads ?? [], foreign: snap.foreignHeads };
    opts?.admit?.(views, snap.admissionsElsewhere, heads);
    let hitRates: HitRates | undefined;
    if (needs.indexer && indexerKey !== undefined) {
      hitRates = await this.hitRates(needs.indexer, req, views, snap.indexerAnswer, indexerKey);
    }
    const data: CycleData = {
      nowMs,
      bucketLoads: snap.bucketLoads,
      poolEvent: snap.poolEvent,
      hitRates,
      prefixMatches: snap.prefixMatches,
      prefixHashes,
      prefixBlockTokens: needs.prefix?.blockSizeTokens,
    };
    const ctx: CycleContext = { request: req, data, random: this.random };
    const t0 = performance.now();
    const result = schedule(this.profile, ctx, views);
    const scheduleUs = (performance.now() - t0) * 1000;
    opts?.admitTarget?.(result.primary, cachedShareOf(data, result.primary.endpoint.id));
    const receipt = await this.commit(chargeId, req, result, needs);
    const ticket = new Ticket(receipt, this);
    this.open.set(receipt.chargeId, ticket);
    return { result, ticket, scheduleUs };
  }

  /** Picks charged and not yet released. */
  get openPicks(): number {
    return this.open.size;
  }

  /** Renews the leases of every open pick each `intervalMs`, so a long response keeps its charge. */
  startRenewal(intervalMs: number): void {
    if (this.renewTimer) return;
    this.renewTimer = setInterval(() => void this.renewOpen(), intervalMs);
    this.renewTimer.unref();
  }

  stopRenewal(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  /**
   * Shutdown: releases every open pick and resolves once the store has every
   * release, including those already under way (streams cut by a drain).
   */
  async releaseAll(): Promise<void> {
    for (const t of [...this.open.values()]) void t.release();
    await Promise.all([...this.releasing]);
  }

  /** Runs one renewal now (tests; the timer does it otherwise). */
  async renewOpen(): Promise<void> {
    if (this.open.size === 0) return;
    await this.guarded('renewLeases', () => this.store.renewLeases([...this.open.keys()], this.leaseMs));
  }

  /** @internal Ticket.firstToken. */
  releasePrefill(t: Ticket): void {
    if (!this.open.has(t.receipt.chargeId) || !hasPrefill(t.receipt.charges)) return;
    void this.guarded('releasePrefill', () => this.store.releasePrefill(t.receipt)).then(() =>
      this.hooks.onPrefillReleased?.(),
    );
  }

  /** @internal Ticket.release. */
  releaseTicket(t: Ticket): Promise<void> {
    if (this.open.get(t.receipt.chargeId) === t) this.open.delete(t.receipt.chargeId);
    const wakeFrom = this.opts.wakeOthersOnRelease?.() ? this.chargePrefix : undefined;
    const p = this.guarded('release', () => this.store.release(t.receipt, wakeFrom));
    this.releasing.add(p);
    void p.then(() => {
      this.releasing.delete(p);
      this.hooks.onReleased?.();
    });
    return p;
  }

  private nextChargeId(): string {
    return `${this.chargePrefix}.${(++this.chargeSeq).toString(36)}`;
  }

  /** Store failures are reported, never thrown: the request goes on without shared bookkeeping. */
  private async guarded(op: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.hooks.onStateError?.(op, e as Error);
    }
  }

  private async hitRates(
    need: NonNullable<DataNeeds['indexer']>,
    req: LLMRequest,
    views: readonly EndpointView[],
    cached: string | undefined,
    key: string,
  ): Promise<HitRates | undefined> {
    if (cached !== undefined) {
      const seen = this.parsedAnswers.get(key);
      if (seen !== undefined && seen.text === cached) return seen.rates;
      try {
        const rates = cachedHitRates(cached);
        this.rememberParsed(key, cached, rates);
        return rates;
      } catch {
        // A corrupt cache entry is just a miss.
      }
    }
    if (!this.indexer || views.length === 0) return undefined;
    const candidates = views.map((v) => v.endpoint.id);
    const outcome = await this.indexer.matchSort(need.url, req, candidates, need.timeoutMs);
    this.hooks.onIndexer?.(outcome);
    if (outcome.hitRates) {
      const text = outcome.answer ?? JSON.stringify([...outcome.hitRates]);
      this.store
        .putIndexerAnswer(key, text, this.indexerCacheTtlMs)
        .catch((e: Error) => this.hooks.onStateError?.('putIndexerAnswer', e));
      this.rememberParsed(key, text, outcome.hitRates);
    }
    return outcome.hitRates;
  }

  /** Keeps the last PARSED_ANSWERS parsed answers (parsedAnswers), the oldest dropped first. */
  private rememberParsed(key: string, text: string, rates: HitRates): void {
    const m = this.parsedAnswers;
    m.delete(key);
    m.set(key, { text, rates });
    if (m.size > PARSED_ANSWERS) m.delete(m.keys().next().value!);
  }

  private async commit(
    chargeId: string,
    req: LLMRequest,
    result: SchedulingResult,
    needs: DataNeeds,
  ): Promise<PickReceipt> {
    const commit = {
      chargeId,
      charges: result.charges,
      leaseMs: this.leaseMs,
      prefixCapacityPerEndpoint: needs.prefix?.lruCapacityPerServer,
      decision: {
        requestId: req.requestId,
        atMs: this.now(),
        model: req.model,
        profile: result.profile,
        endpoint: result.primary.endpoint.id,
        fallbacks: result.fallbacks.map((f) => f.endpoint.id),
        prefill: result.pd?.prefill.endpoint.id,
        decode: result.pd?.decode.endpoint.id,
        promptTokens: req.promptTokens,
        score: result.score,
      },
    };
    try {
      return await this.store.commitPick(commit);
    } catch (e) {
      // The pick stands; only the shared bookkeeping is lost.
      this.hooks.onStateError?.('commitPick', e as Error);
      return { chargeId: commit.chargeId, charges: result.charges, chargedAtEvent: 0 };
    }
  }
}

class Ticket implements PickTicket {
  private firstTokenSeen = false;
  private released: Promise<void> | undefined;

  constructor(
    readonly receipt: PickReceipt,
    private readonly director: Director,
  ) {}

  firstToken(): void {
    if (this.firstTokenSeen || this.released) return;
    this.firstTokenSeen = true;
    this.director.releasePrefill(this);
  }

  release(): Promise<void> {
    this.released ??= this.director.releaseTicket(this);
    return this.released;
  }
}

/**
 * The hit rates of a cached indexer answer: the /match_sort answer as the indexer sent it
 * (IndexerOutcome.answer), or the [endpoint, hitRate] pairs of a map (a client that kept no
 * text, or a replica from before the text was kept). Throws on a corrupt entry.
 */
export function cachedHitRates(cached: string): HitRates {
  const pairs = cached.charCodeAt(0) === 0x5b; // '[': JSON.stringify of the pairs starts with it
  return pairs ? new Map(JSON.parse(cached) as Array<[string, number]>) : parseMatchSort(cached);
}

/**
 * Share of the prompt expected cached on `endpointId`: the cache-indexer's
 * hit rate when known, else the approximate prefix match over the blocks
 * hashed (at most maxPrefixBlocksToMatch: the head of a long prompt stands
 * for it), undefined when the profile measures neither.
 */
export function cachedShareOf(d: CycleData, endpointId: string): number | undefined {
  const hit = d.hitRates?.get(endpointId);
  if (hit !== undefined) return hit;
  const n = d.prefixHashes?.length ?? 0;
  if (n === 0 || !d.prefixMatches) return undefined;
  return Math.min(n, d.prefixMatches.get(endpointId) ?? 0) / n;
}

/**
 * The prompt's block keys under `prefix` (none without it) and a digest of
 * the whole prompt, in one pass (prefix-hash.ts, textKeysAndDigest).
 */
export function promptKeysAndDigest(
  req: LLMRequest,
  prefix: { blockSizeTokens: number; maxPrefixBlocksToMatch: number } | undefined,
): KeysAndDigest {
  const block = prefix?.blockSizeTokens ?? 1;
  const max = prefix?.maxPrefixBlocksToMatch ?? 0;
  if (req.tokenIds) return tokenKeysAndDigest(req.tokenIds, req.model, block, max);
  if (req.promptUtf8) return utf8KeysAndDigest(req.promptUtf8, req.model, block, max);
  return textKeysAndDigest(req.promptText, req.model, block, max);
}

/** Cache key of a cache-indexer answer: the model plus a digest of the whole prompt (as pick derives it). */
export function indexerCacheKey(
  req: LLMRequest,
  prefix?: { blockSizeTokens: number; maxPrefixBlocksToMatch: number },
): string {
  return `${req.model}|${promptKeysAndDigest(req, prefix).digest}`;
}
