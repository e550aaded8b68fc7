// scorer-pd-bucket (PD groups): keeps long and short prompts on different
// prefill pods, gives each length bucket a share of the prefill pods that
// matches its load, and inside the share sends a request where it waits
// least. Costs are slowdowns (a delay over the prefill work it delays).
//   b           = long if P = promptTokens > bucketSeperateLength, else short
//   L[p][x]     = pod p's load in bucket x (prompt tokens charged), decayed to
//                 the pool's event: stored * decayFactor^(poolEvent - atEvent)
//   cap(p)      = the number in label `capacityLabelName` (absent/invalid = 1)
// Prefill shares (over the candidate prefill pods P, n = |P|):
//   share(x)    = sum_p L[p][x] / sum_p (L[p][short] + L[p][long])
//   the bucket with the smaller share gets the pods, most devoted to it
//   first (largest L[p][x] / (L[p][short] + L[p][long]); empty pods count
//   1/2; ties by endpoint id), until their capacity reaches
//   share(x) * sum cap: rounded up to whole pods, because the minority
//   bucket is the one a rounding down would leave with no pod. The other
//   bucket gets the rest. With n >= 2 each bucket keeps at least one pod;
//   with n = 1, or while a bucket has no load, there are no shares.
//   own(p, b)   = 1 if p is in bucket b's share (or there are no shares), else 0
// Prefill pod p:
//   wait(p)     = pendingPrefillTokens(p) / cap(p): prefill work queued ahead
//                 (the router's own charges, all replicas, released at first token)
//   cost(p)     = alpha * wait(p) / P
//               + beta * (1 - own(p, b)) * max(1, P / max(1, bucketSeperateLength))
//   The load term is the request's own slowdown (its wait in units of its
//   own prefill). The separation term is the slowdown it causes the other
//   bucket: a prompt of P tokens on a pod of the short share delays
//   prompts of at most bucketSeperateLength tokens by P tokens of work; a
//   short prompt on a long pod costs the flat beta.
// Decode pod d (no head-of-line blocking between lengths; a sequence joins
// at the end of the running step, and each step reads the KV in use):
//   busy(d)     = 0 if d's scraped running count and the router's in-flight
//                 count are both 0, else 1
//   kv(d)       = busy(d) + kvCacheUsage(d)    when every candidate decode
//                 pod has both scraped signals; else the decayed charges
//                 (L[d][short] + L[d][long]) / cap(d) for all of them
//   mean        = mean kv over the candidate decode pods (0 makes the term 0)
//   cost(d)     = alpha * kv(d) / mean
//   (usage is a share of the pod's own cache, so cap(d) enters only the
//   fallback)
//   An idle pod starts the sequence at once; on a busy one it waits for the
//   running step, which is longer the more KV it reads (vLLM's decode step
//   grows with the KV in use). The decayed charges remember long prompts
//   whose sequences have ended (at 4 QPS the charges' half-life is tens of
//   seconds, a sequence decodes for ~3 s): by them short requests' p90 TTFT
//   was 0.036 s at 4 QPS on long-short-mix, by idle-then-usage 0.034 s
//   (docs/benchmarks.md, issue 12).
//   cost(g)     = min_p cost(prefill p) + min_d cost(decode d)   (ties at random)
//   score(g)    = 1 - cost(g) / max over candidate groups of cost (all 0 -> 1)
// Why: round two balanced by pending / mean pending, so a 300-token prompt
// (long bucket at the default 200) waited behind 8k-32k-token prefills in
// the long share rather than pay beta = 2 for the idle short pod
// (docs/benchmarks.md, round three). In slowdown units a short prompt never
// waits behind long work, and a long prompt stays in its share unless that
// share's queue is beta * P / bucketSeperateLength of its own prefills
// deeper (a flat price in slowdown units would let it cross much sooner).
// A pick charges the prefill pod and the decode pod max(1, promptTokens) in
// bucket b; the store decays-and-charges atomically and advances the pool
// event. A pod with no record has no load: this count is ours, never an
// unknown. Plain endpoint candidates (no PD filter) are scored and charged
// like prefill pods.
// Deprecated, accepted and ignored: loadNormalization (pre-issue-12 knob).
import { z } from 'zod';
import { decayed } from '../state/charges.js';
import type { BucketCharge, CycleContext, EndpointView, PdChoice } from '../scheduling/types.js';
import { clamp01, minCostRandom, podsOf, stringParam, weightParam } from './common.js';
import { costsToScores } from './kv-cost.js';
import { definePlugin } from './plugin.js';

const TYPE = 'scorer-pd-bucket';

export type Bucket = 'short' | 'long';

export function bucketOf(promptTokens: number, separateLength: number): Bucket {
  return promptTokens > separateLength ? 'long' : 'short';
}

/** Capacity from a label value: a positive finite number, else 1. */
export function capacityOf(v: EndpointView, labelName: string): number {
  const raw = v.endpoint.labels[labelName];
  if (raw === undefined) return 1;
  const c = Number(raw);
  return Number.isFinite(c) && c > 0 ? c : 1;
}

/** One pod's decayed bucket loads and capacity, read once per cycle. */
export interface PodLoad {
  id: string;
  short: number;
  long: number;
  cap: number;
}

/**
 * The ids of the pods in bucket `b`'s share (see the top comment), or
 * undefined when there are no shares (fewer than 2 pods, or a bucket without load).
 */
export function shareOf(pods: readonly PodLoad[], b: Bucket): Set<string> | undefined {
  if (pods.length < 2) return undefined;
  let s = 0;
  let l = 0;
  let capSum = 0;
  for (const p of pods) {
    s += p.short;
    l += p.long;
    capSum += p.cap;
  }
  // Shares start once both buckets carry load: an empty bucket keeps no pod idle.
  if (!(s > 0 && l > 0)) return undefined;
  const minority: Bucket = l <= s ? 'long' : 'short';
  const target = ((minority === 'long' ? l : s) / (s + l)) * capSum;
  const devotion = (p: PodLoad) => {
    const t = p.short + p.long;
    const mine = minority === 'long' ? p.long : p.short;
    return t > 0 ? mine / t : 0.5;
  };
  const order = [...pods].sort(
    (a, c) => devotion(c) - devotion(a) || (a.id < c.id ? -1 : a.id > c.id ? 1 : 0),
  );
  const minorityIds = new Set<string>();
  let acc = 0;
  for (let i = 0; i < order.length - 1; i++) {
    // Round up: take pods until the share's capacity is covered.
    if (i > 0 && acc >= target) break;
    minorityIds.add(order[i]!.id);
    acc += order[i]!.cap;
  }
  if (b === minority) return minorityIds;
  const rest = new Set<string>();
  for (const p of pods) if (!minorityIds.has(p.id)) rest.add(p.id);
  return rest;
}

/** The parameters the cost tables read (the plugin's own, as parsed). */
export interface PdBucketParams {
  alpha: number;
  beta: number;
  decayFactor: number;
  bucketSeperateLength: number;
  capacityLabelName: string;
}

/** One pod's decayed bucket loads at this cycle's pool event, and its capacity. */
export function podLoadOf(ctx: CycleContext, v: EndpointView, p: PdBucketParams): PodLoad {
  const id = v.endpoint.id;
  const cap = capacityOf(v, p.capacityLabelName);
  const rec = ctx.data.bucketLoads.get(id);
  if (!rec) return { id, short: 0, long: 0, cap };
  const now = ctx.data.poolEvent;
  return {
    id,
    short: decayed(rec.short, rec.atEvent, now, p.decayFactor),
    long: decayed(rec.long, rec.atEvent, now, p.decayFactor),
    cap,
  };
}

/**
 * Prefill cost table (pod id -> cost) for a prompt of `tokens` tokens in
 * bucket `b`: the request's own slowdown plus, outside its share, the
 * slowdown it causes the other bucket (see the top comment). `crossExempt`
 * (benchmark variants only) waives that second term for some pods.
 */
export function prefillCosts(
  ctx: CycleContext,
  pods: readonly EndpointView[],
  b: Bucket,
  tokens: number,
  p: PdBucketParams,
  crossExempt?: (v: EndpointView) => boolean,
): Map<string, number> {
  const ls = pods.map((v) => podLoadOf(ctx, v, p));
  const own = shareOf(ls, b);
  const cross = p.beta * Math.max(1, tokens / Math.max(1, p.bucketSeperateLength));
  const out = new Map<string, number>();
  for (let i = 0; i < ls.length; i++) {
    const x = ls[i]!;
    const wait = pods[i]!.pendingPrefillTokens / x.cap;
    const crossed = own !== undefined && !own.has(x.id) && !(crossExempt?.(pods[i]!) ?? false);
    out.set(x.id, (p.alpha * wait) / tokens + (crossed ? cross : 0));
  }
  return out;
}

/**
 * Decode cost table over the mean: idle first, then the least KV in use
 * (scraped), or the decayed bucket loads per capacity while some pod's
 * scrape is missing (see the top comment).
 */
export function decodeCosts(
  ctx: CycleContext,
  pods: readonly EndpointView[],
  p: PdBucketParams,
): Map<string, number> {
  const ls = pods.map((v) => podLoadOf(ctx, v, p));
  const scraped = pods.every((v) => v.kvCacheUsage !== undefined && v.runningRequests !== undefined);
  const ws = scraped
    ? pods.map((v) => (v.runningRequests === 0 && v.inFlight === 0 ? 0 : 1) + clamp01(v.kvCacheUsage!))
    : ls.map((x) => (x.short + x.long) / x.cap);
  let sum = 0;
  for (const w of ws) sum += w;
  const mean = ls.length > 0 ? sum / ls.length : 0;
  const out = new Map<string, number>();
  for (let i = 0; i < ls.length; i++) out.set(ls[i]!.id, mean > 0 ? (p.alpha * ws[i]!) / mean : 0);
  return out;
}

export const scorerPdBucket = definePlugin({
  type: TYPE,
  parameters: z.strictObject({
    alpha: weightParam(1.0),
    beta: weightParam(2.0),
    decayFactor: z
      .number({ error: 'expected a number in (0, 1)' })
      .gt(0, 'expected a decay factor > 0 and < 1')
      .lt(1, 'expected a decay factor > 0 and < 1')
      .default(0.99),
    // The product's spelling, accepted as written.
    bucketSeperateLength: z
      .number({ error: 'expected a prompt length in tokens (integer)' })
      .int('expected a prompt length in tokens (integer)')
      .nonnegative('expected a prompt length >= 0 tokens')
      .default(200),
    capacityLabelName: stringParam('openfuyao.com/capacity'),
    // Deprecated no-op: the pre-issue-12 formula's load normaliser. Accepted so
    // configurations that set it load.
    loadNormalization: z
      .enum(['max', 'mean'], { error: 'expected "max" or "mean" (deprecated, ignored)' })
      .optional(),
  }),
  create: (name, p) => {
    const { decayFactor: d, bucketSeperateLength: sep } = p;

    return {
      type: TYPE,
      name,
      dataNeeds: { bucketLoads: true },
      score: (ctx, candidates) => {
        const b = bucketOf(ctx.request.promptTokens, sep);
        const prefillSide = podsOf(candidates, 'prefill');
        for (const c of candidates) if (c.kind === 'endpoint') prefillSide.push(c.endpoint);
        const decodeSide = podsOf(candidates, 'decode');
        const costP = prefillCosts(ctx, prefillSide, b, Math.max(1, ctx.request.promptTokens), p);
        const costD = decodeCosts(ctx, decodeSide, p);
        const n = candidates.length;
        const costs = new Float64Array(n);
        const pdChoices: Array<PdChoice | undefined> = new Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind === 'endpoint') {
            costs[i] = costP.get(c.endpoint.endpoint.id)!;
            continue;
          }
          const bp = minCostRandom(ctx, c.group.prefill, (v) => costP.get(v.endpoint.id)!);
          const bd = minCostRandom(ctx, c.group.decode, (v) => costD.get(v.endpoint.id)!);
          costs[i] = bp.cost + bd.cost;
          pdChoices[i] = { prefill: bp.item, decode: bd.item };
        }
        return { scores: costsToScores(costs), pdChoices };
      },
      charges: (ctx, result) => {
        const b = bucketOf(ctx.request.promptTokens, sep);
        const tokens = Math.max(1, ctx.request.promptTokens);
        const items: BucketCharge[] = result.pd
          ? [
              { endpointId: result.pd.prefill.endpoint.id, bucket: b, amount: tokens },
              { endpointId: result.pd.decode.endpoint.id, bucket: b, amount: tokens },
            ]
          : [{ endpointId: result.primary.endpoint.id, bucket: b, amount: tokens }];
        return { bucket: { decayFactor: d, items } };
      },
    };
  },
});
