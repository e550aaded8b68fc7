// The cost model of the KV-aware scorers, in one unit: prompt tokens of
// prefill work (a TTFT in tokens; divide by the prefill rate for seconds).
// A miss and a queue then compare directly, as in NVIDIA Dynamo's KV router
// (overlap x blocks to prefill + blocks already queued/decoding):
//   miss(e)  = (1 - hit(e)) * P              tokens this request prefills on e
//   queue(e) = prefill tokens queued ahead of it on e
//   usage(e) = kvCacheUsage(e) * P            the cost of squeezing P more
//              tokens into a cache that is filling up: nothing when empty, as
//              much as recomputing the prompt when full (preemption by
//              recompute is what vLLM does then). Linear since round two of
//              issue 12: the square let a first holder of a hot prefix keep
//              every request until it saturated (hot-prefix knee 65.5 -> 80.5
//              QPS, 3 seeds), within 1% on the other synthetic workloads,
//              trace TTFT p90 +6% at scale 0.1 (docs/benchmarks.md).
// P = the request's prompt tokens (at least 1). Each term is weighed by the
// product's weight of the same meaning. How `queue` is measured:
//   waiting(e) = max(scraped waiting, inFlight(e) - scraped running): the
//     router's in-flight count is current and shared by every replica,
//     the scrape is up to one interval old (requests sent since then are
//     not in it);
//   queue(e)   = waiting(e) * (1 - hit(e)) * P  (each queued request is
//     counted at this request's miss on e: the router does not know their
//     lengths, and requests queued on a prefix holder mostly share the
//     prefix). Measured alternatives (at full length P, the router's
//     pendingPrefillTokens) are knobs below and lost in the simulator.
// Bounded affinity (round three of issue 12): a holder keeps its prefix
// only while it is not both congested and overloaded against the others,
//   bound      = 1.15 * mean over candidates of inFlight(c) + 8 requests
//   hit(e) := 0 for this pick when inFlight(e) > bound and scraped waiting(e) >= 1
//             and usage(e) < 0.8
// (SGLang's cache-aware router bounds the load imbalance; this bound is
// relative, as an absolute 32-request guard ruined shared-prefix, and it
// applies only where requests already wait, so an idle cluster keeps every
// prefix where it is). Over-loaded holders then lose requests to the
// least-cost other endpoint, which becomes a second holder: a hot prefix is
// copied once its first holder queues (hot-prefix knee 80.5 -> 84.6 QPS), a
// server that drew too many shared-prefix groups sheds some before its KV
// cache saturates (knee 32.7 -> 41.0 QPS), 3 seeds (docs/benchmarks.md).
// A holder whose cache is >= 80% full is spared (round five of issue 12): it
// is about to preempt, under that load the others fill at the same pace, and
// moving its requests copies its prefixes into them and only puts one more
// server into the preempting regime (shared-prefix tok/s at 60 QPS 24,626 ->
// 25,062, gie-default 25,316; knee 40.9 -> 40.0 QPS; 3 seeds,
// docs/benchmarks.md round five).
// Copy price (round four of issue 12): the part of the prompt the best
// candidate holds (after the bound) and e does not costs more on e,
//   copy(e) = 30 * usage(e)^3 * (bestHit - hit(e)) * P     added to miss(e)
// A copy pins a second instance of a prefix for as long as its requests keep
// coming, in a cache that is filling: near nothing on an idle server (0.24 x
// the tokens at 20% usage: a busy holder's prefix is still copied to an idle
// one), 3.75 x at 50%, 15 x at 80%. It stops the copies that spread
// shared-prefix-cold's overload over every server (cold knee 32.2 -> 34.3
// QPS, tok/s at 60 QPS 20,943 -> 22,531, trace TTFT p90 at x0.1 0.816 ->
// 0.656 s; 3 seeds, docs/benchmarks.md round four). A holder past the bound
// sets no price (its hit is 0 there), so the bound still copies hot prefixes.
// Unknown signals: usage counts its neutral 0.5; an unknown scrape leaves
// queue = inFlight(e) / 2 * miss (half of what the router sent is taken as
// still queued) and never counts as congested.
import type { Candidate, CycleContext, EndpointView } from '../scheduling/types.js';
import { IN_FLIGHT_WAITING, NEUTRAL, SCRAPED_WAITING, clamp01, waitingOf } from './common.js';

/** Exponent of the usage term. Measured in the routing simulator (docs/benchmarks.md). */
export const USAGE_POWER = 1;
/** Affinity bound: (1 + this) x the candidates' mean in-flight count ... */
export const AFFINITY_RELATIVE_BOUND = 0.15;
/** ... + this many requests (so small counts at low load never trip it). */
export const AFFINITY_BOUND_SLACK = 8;
/** Copy price: COPY_PRICE x usage^COPY_USAGE_POWER per token copied (round four of issue 12). */
export const COPY_PRICE = 30;
export const COPY_USAGE_POWER = 3;
/**
 * Round five of issue 12 measured sparing a holder whose KV usage is at least
 * this from the affinity bound (bench variant kv-r5-sp8): +1.8% shared-prefix
 * tok/s at 60 QPS for a lower, less robust knee (40.9 -> 40.0 QPS), so the
 * product leaves it off (boundSpareFullUsage 0).
 */
export const BOUND_SPARE_USAGE = 0.8;

export interface KvCostWeights {
  miss: number;
  usage: number;
  wait: number;
}

/** Knobs the routing benchmark varies; the product runs DEFAULT_KV_COST. */
export interface KvCostModel {
  usagePower: number;
  /** Queued requests cost P (true) or P * (1 - hit(e)) (false: they hit like this one). */
  queueAtFullLength: boolean;
  /** Extra cost of a miss per missed token (holding another copy of a prefix). */
  duplication: number;
  /**
   * Copy price: the part of the prompt another candidate holds and this one
   * does not costs copyPrice * usage^copyUsagePower more per token (0 = off):
   * a copy that lands on a filling cache costs more.
   */
  copyPrice: number;
  copyUsagePower: number;
  /** The copy price counts a holder's hit even when the affinity bound took it away for this pick. */
  copyPriceThroughBound: boolean;
  /** ... and the copy term reads each candidate's own hit before the bound too (a holder never pays for a copy of itself). */
  copyPriceOwnRawHit: boolean;
  /** A holder past the bound keeps its queue counted at its hit before the bound (its queued requests still hit there). */
  boundQueueAtRawHit: boolean;
  /**
   * Where queue(e) comes from: 'waiting' (requests waiting x tokens each),
   * 'pending' (the router's outstanding prefill tokens), 'max' (the larger).
   */
  queueFrom: 'waiting' | 'pending' | 'max';
  /** The usage term scales the prompt (P) or only the tokens it adds to e's cache ((1 - hit) * P). */
  usageOnMiss: boolean;
  /**
   * SGLang's bounded load: when the candidates' in-flight counts differ by
   * more than this many requests, prefix hits are ignored for this pick and
   * load alone decides (0 = never).
   */
  imbalanceGuard: number;
  /**
   * Relative bounded load (per candidate): an endpoint whose in-flight count
   * exceeds (1 + relativeBound) * the candidates' mean + boundSlack loses its
   * prefix hit for this pick (0 = off).
   */
  relativeBound: number;
  boundSlack: number;
  /** The bound applies only to a congested endpoint: always, when requests wait there, or at high KV usage. */
  boundGate: 'none' | 'waiting' | 'usage' | 'scraped' | 'scraped4';
  /**
   * Charge the pick's outstanding prefill tokens (pendingPrefillTokens) at
   * the scorer's expected hit (indexer or routing history) instead of the
   * scheduler's indexer-only estimate.
   */
  chargeExpectedHit: boolean;
  /**
   * The affinity bound fires only while some candidate has room: no scraped
   * waiting request and KV usage below this fraction (0 = always fires).
   * Past that the pool is saturated, and moving a prefix only adds a copy.
   */
  boundRoomUsage: number;
  /**
   * The affinity bound spares a holder whose KV usage is at least this
   * (0 = off): it is already preempting, and moving its requests only puts
   * another server into that regime.
   */
  boundSpareFullUsage: number;
  /** ... but not once its usage reaches this (bench; 0 = spared however full it is). */
  boundSpareUpTo: number;
  /**
   * How queue(e) counts when no candidate holds any of the prompt (a new
   * prefix: this pick decides where its later requests go): 'waiting' as
   * every pick, 'inflight' every request in flight (running ones too),
   * 'pending' the router's outstanding prefill tokens, 'max' the larger of
   * 'waiting' and 'pending', 'scraped' the scraped waiting count alone.
   */
  newPrefixQueue: 'waiting' | 'inflight' | 'pending' | 'max' | 'scraped';
}

export const DEFAULT_KV_COST: KvCostModel = {
  usagePower: USAGE_POWER,
  queueAtFullLength: false,
  duplication: 0,
  copyPrice: COPY_PRICE,
  copyUsagePower: COPY_USAGE_POWER,
  copyPriceThroughBound: false,
  copyPriceOwnRawHit: false,
  boundQueueAtRawHit: false,
  queueFrom: 'waiting',
  usageOnMiss: false,
  imbalanceGuard: 0,
  relativeBound: AFFINITY_RELATIVE_BOUND,
  boundSlack: AFFINITY_BOUND_SLACK,
  boundGate: 'scraped',
  chargeExpectedHit: false,
  boundRoomUsage: 0,
  boundSpareFullUsage: 0,
  boundSpareUpTo: 0,
  newPrefixQueue: 'waiting',
};

/** True when `v` is past the affinity bound (and congested as the model's gate asks). */
export function pastBound(v: EndpointView, bound: number, m: KvCostModel): boolean {
  if (!(v.inFlight > bound)) return false;
  if (m.boundSpareFullUsage > 0) {
    const u = usageOf(v);
    if (u >= m.boundSpareFullUsage && !(m.boundSpareUpTo > 0 && u >= m.boundSpareUpTo)) return false;
  }
  if (m.boundGate === 'waiting') return (waitingEstimate(v) ?? 0) >= 1;
  if (m.boundGate === 'usage') return usageOf(v) >= 0.9;
  if (m.boundGate === 'scraped') return (v.waitingQueueSize ?? 0) >= 1;
  if (m.boundGate === 'scraped4') return (v.waitingQueueSize ?? 0) >= 4;
  return true;
}

/** In-flight count above which a candidate's prefix hit is ignored (Infinity = no bound). */
export function affinityBound(views: readonly EndpointView[], m: KvCostModel): number {
  if (!(m.relativeBound > 0) || views.length < 2) return Infinity;
  if (m.boundRoomUsage > 0 && !views.some((v) => hasRoom(v, m.boundRoomUsage))) return Infinity;
  let sum = 0;
  for (const v of views) sum += v.inFlight;
  return boundOf(sum, views.length, m);
}

/**
 * affinityBound over the endpoint candidates among `candidates`, in their order (the same
 * sum, so the same number), without building their list: a scorer's per-decision path.
 */
export function candidatesAffinityBound(candidates: readonly Candidate[], m: KvCostModel): number {
  if (!(m.relativeBound > 0)) return Infinity;
  const roomUsage = m.boundRoomUsage;
  let n = 0;
  let sum = 0;
  let room = false;
  for (const c of candidates) {
    if (c.kind !== 'endpoint') continue;
    n++;
    sum += c.endpoint.inFlight;
    if (roomUsage > 0 && !room && hasRoom(c.endpoint, roomUsage)) room = true;
  }
  if (n < 2 || (roomUsage > 0 && !room)) return Infinity;
  return boundOf(sum, n, m);
}

function boundOf(inFlightSum: number, count: number, m: KvCostModel): number {
  return (1 + m.relativeBound) * (inFlightSum / count) + m.boundSlack;
}

/** True when `v` is known to take a request without queueing it: nothing waits (scraped) and usage < `usage`. */
export function hasRoom(v: EndpointView, usage: number): boolean {
  const w = v.waitingQueueSize;
  const u = v.kvCacheUsage;
  return w !== undefined && w === 0 && u !== undefined && u < usage;
}

/** True when `views` are imbalanced past the model's guard (see KvCostModel.imbalanceGuard). */
export function imbalanced(views: Iterable<EndpointView>, m: KvCostModel): boolean {
  if (!(m.imbalanceGuard > 0)) return false;
  let min = Infinity;
  let max = -Infinity;
  for (const v of views) {
    if (v.inFlight < min) min = v.inFlight;
    if (v.inFlight > max) max = v.inFlight;
  }
  return max - min > m.imbalanceGuard;
}

/** imbalanced over the endpoint candidates among `candidates` (no list built). */
export function candidatesImbalanced(candidates: readonly Candidate[], m: KvCostModel): boolean {
  if (!(m.imbalanceGuard > 0)) return false;
  return imbalanced(endpointsOf(candidates), m);
}

function* endpointsOf(candidates: readonly Candidate[]): Generator<EndpointView> {
  for (const c of candidates) if (c.kind === 'endpoint') yield c.endpoint;
}

/**
 * Requests waiting at `v`: max(scraped waiting, inFlight - running), or the
 * scraped waiting alone where in-flight charges outlive the request's stay
 * (PD prefill pods stay charged while decode runs); undefined when never scraped.
 */
export function waitingEstimate(v: EndpointView, useInFlight = true): number | undefined {
  return waitingOf(v, useInFlight ? IN_FLIGHT_WAITING : SCRAPED_WAITING);
}

/** Usage as a fraction, neutral when unknown. */
export function usageOf(v: EndpointView): number {
  const u = v.kvCacheUsage;
  return u === undefined || Number.isNaN(u) ? NEUTRAL : clamp01(u);
}

/** The three terms of `v`'s cost for a prompt of `p` tokens with hit rate `hit`, in tokens. */
export function kvCostTerms(
  v: EndpointView,
  p: number,
  hit: number,
  m: KvCostModel = DEFAULT_KV_COST,
  bestHit = hit,
  rawHit = hit,
): { miss: number; usage: number; queue: number } {
  const miss = (1 - hit) * p;
  const from = m.newPrefixQueue !== 'waiting' && !(bestHit > 0) ? m.newPrefixQueue : m.queueFrom;
  let queue = 0;
  if (from === 'inflight') queue = v.inFlight * miss;
  else if (from !== 'pending') {
    const w = waitingEstimate(v, from !== 'scraped');
    const waiting = w === undefined ? v.inFlight * NEUTRAL : w;
    queue = waiting * (m.queueAtFullLength ? p : m.boundQueueAtRawHit ? (1 - rawHit) * p : miss);
  }
  if ((from === 'pending' || from === 'max') && v.pendingPrefillTokens > queue)
    queue = v.pendingPrefillTokens;
  return {
    miss: miss * (1 + m.duplication) + copyCost(v, p, m.copyPriceOwnRawHit ? rawHit : hit, bestHit, m),
    usage: powerOf(usageOf(v), m.usagePower) * (m.usageOnMiss ? miss : p),
    queue,
  };
}

/**
 * Price of copying onto `v` the part of the prompt the best candidate holds
 * and `v` does not, (bestHit - hit) * P, scaled by copyPrice * usage(v)^copyUsagePower.
 */
export function copyCost(v: EndpointView, p: number, hit: number, bestHit: number, m: KvCostModel): number {
  if (!(m.copyPrice > 0) || !(bestHit > hit)) return 0;
  return m.copyPrice * powerOf(usageOf(v), m.copyUsagePower) * (bestHit - hit) * p;
}

/**
 * Math.pow(u, e), skipping the call for e = 1 (the product's usage power): pow(x, 1) is x
 * exactly (fdlibm returns x for y = 1), and a general Math.pow took ~25-130 ns here, 32 a
 * decision. Other powers go through Math.pow as before: u * u * u differs from it in the
 * last bit for about a quarter of the usages, which would move ties.
 */
function powerOf(u: number, e: number): number {
  return e === 1 ? u : Math.pow(u, e);
}

/** Weighted cost of `v` in tokens; `bestHit` = the highest hit among the candidates (copy price). */
export function kvCost(
  w: KvCostWeights,
  v: EndpointView,
  p: number,
  hit: number,
  m: KvCostModel = DEFAULT_KV_COST,
  bestHit = hit,
  rawHit = hit,
): number {
  const t = kvCostTerms(v, p, hit, m, bestHit, rawHit);
  return w.miss * t.miss + w.usage * t.usage + w.wait * t.queue;
}

/** The request's prompt length for the cost model (at least one token). */
export function promptTokensOf(ctx: CycleContext): number {
  const p = ctx.request.promptTokens;
  return p >= 1 ? p : 1;
}

/**
 * Costs to scores in [0,1]: score = 1 - cost / max cost over the
 * candidates, so the cheapest candidate scores highest and the dearest 0;
 * all equal (or all 0) gives 1 everywhere.
 */
export function costsToScores(costs: Float64Array): Float64Array {
  let max = 0;
  for (const c of costs) if (c > max) max = c;
  const out = new Float64Array(costs.length);
  for (let i = 0; i < costs.length; i++) out[i] = max > 0 ? 1 - costs[i]! / max : 1;
  return out;
}
