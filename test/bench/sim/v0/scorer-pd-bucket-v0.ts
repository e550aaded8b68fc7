// Bench-only reference: scorer-pd-bucket as it was before issue 12 (the formulas of
// shared/design/PLUGINS.md), kept verbatim under the type name bench-scorer-pd-bucket-v0
// so the routing benchmark can show the new formulas against the old ones.
// Not registered in the product.
// scorer-pd-bucket (PD groups): keeps long and short prompts on different
// pods while balancing load.
//   bucket b  = long if promptTokens > bucketSeperateLength, else short
//   L[p][x]   = pod p's load in bucket x, decayed to the pool's event:
//               stored * decayFactor^(poolEvent - atEvent)
//   load(p)   = (L[p][short] + L[p][long]) / capacity(p)
//   cost(p)   = alpha * load(p) / norm
//             + beta  * L[p][other(b)] / (L[p][short] + L[p][long] + EPS)
//   norm      = max load(q) over the same-role pods q of all candidate groups
//               (prefill loads are tokens, decode loads are sequences; a
//               norm of 0 makes the term 0)
//   cost(g)   = min_p cost(prefill p) + min_d cost(decode d)   (ties at random)
// Both terms lie in [0,1], so per pod the cost is at most alpha + beta and
//   maxPossibleCost(g) = 2 * (alpha + beta),   score(g) = 1 - cost(g) / maxPossibleCost
// Optional `loadNormalization` (default "max", the formula above):
//   "mean": norm = mean load(q) over the same-role pods q (n of them), so
//   the load term is load(p) / mean, in [0, n]. With "max" the load term
//   never exceeds 1 < beta, so a pod already holding the request's bucket
//   always beats a pod holding the other one, however loaded it is: one
//   prefill pod ends up with all the long prompts. Normalised by the mean,
//   a pod more than beta/alpha means above another sheds load to it, and
//   separation still wins while the loads are comparable. The score uses
//   the matching bound: maxPossibleCost(g) = alpha * (nPrefill + nDecode) + 2 * beta
//   (alpha * nPrefill + beta for plain endpoints).
// capacity(p): the number in label `capacityLabelName` (e.g. 2 for a pod
// with twice the tensor parallelism; absent or invalid = 1).
// A pick charges (charges()) the prefill pod max(1, promptTokens) and the
// decode pod 1 (one sequence) in bucket b; the store decays-and-charges
// atomically and advances the pool event. A pod with no record has no load:
// this count is ours, never an unknown. Plain endpoint candidates (no PD
// filter) are scored and charged like prefill pods, maxPossibleCost alpha + beta.
import { z } from 'zod';
import { decayed } from '../../../../src/state/store.js';
import type { BucketCharge, CycleContext, EndpointView, PdChoice } from '../../../../src/scheduling/types.js';
import {
  costToScore,
  minCostRandom,
  podsOf,
  stringParam,
  weightParam,
} from '../../../../src/plugins/common.js';
import { definePlugin } from '../../../../src/plugins/plugin.js';

const TYPE = 'bench-scorer-pd-bucket-v0';

/** Keeps the bucket-share term defined on an empty pod (load in tokens or sequences). */
const EPS = 1e-9;

type Bucket = 'short' | 'long';

function bucketOf(promptTokens: number, separateLength: number): Bucket {
  return promptTokens > separateLength ? 'long' : 'short';
}

/** Capacity from a label value: a positive finite number, else 1. */
function capacityOf(v: EndpointView, labelName: string): number {
  const raw = v.endpoint.labels[labelName];
  if (raw === undefined) return 1;
  const c = Number(raw);
  return Number.isFinite(c) && c > 0 ? c : 1;
}

export const scorerPdBucketV0 = definePlugin({
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
    loadNormalization: z.enum(['max', 'mean'], { error: 'expected "max" or "mean"' }).default('max'),
  }),
  create: (name, p) => {
    const { alpha, beta, decayFactor: d, bucketSeperateLength: sep, capacityLabelName } = p;
    const byMean = p.loadNormalization === 'mean';

    /** Decayed (short, long) load of a pod at the pool's current event. */
    const loads = (ctx: CycleContext, v: EndpointView): [number, number] => {
      const rec = ctx.data.bucketLoads.get(v.endpoint.id);
      if (!rec) return [0, 0];
      const now = ctx.data.poolEvent;
      return [decayed(rec.short, rec.atEvent, now, d), decayed(rec.long, rec.atEvent, now, d)];
    };
    const loadTerm = (ctx: CycleContext, v: EndpointView): number => {
      const [s, l] = loads(ctx, v);
      return (s + l) / capacityOf(v, capacityLabelName);
    };
    /** The load norm of one role: max (documented) or mean load term over `pods`. */
    const loadNorm = (ctx: CycleContext, pods: readonly EndpointView[]): number => {
      let m = 0;
      let sum = 0;
      for (const v of pods) {
        const t = loadTerm(ctx, v);
        sum += t;
        if (t > m) m = t;
      }
      return byMean ? (pods.length > 0 ? sum / pods.length : 0) : m;
    };
    /** Largest possible load term of a role with `n` pods. */
    const maxBalance = (n: number): number => (byMean ? Math.max(1, n) : 1);
    const podCost = (ctx: CycleContext, v: EndpointView, b: Bucket, norm: number): number => {
      const [s, l] = loads(ctx, v);
      const other = b === 'long' ? s : l;
      const balance = norm > 0 ? (s + l) / capacityOf(v, capacityLabelName) / norm : 0;
      return alpha * balance + beta * (other / (s + l + EPS));
    };

    return {
      type: TYPE,
      name,
      dataNeeds: { bucketLoads: true },
      score: (ctx, candidates) => {
        const b = bucketOf(ctx.request.promptTokens, sep);
        const prefillSide = podsOf(candidates, 'prefill');
        for (const c of candidates) if (c.kind === 'endpoint') prefillSide.push(c.endpoint);
        const decodeSide = podsOf(candidates, 'decode');
        const normP = loadNorm(ctx, prefillSide);
        const normD = loadNorm(ctx, decodeSide);
        const maxP = alpha * maxBalance(prefillSide.length) + beta;
        const maxG = maxP + alpha * maxBalance(decodeSide.length) + beta;
        const n = candidates.length;
        const scores = new Float64Array(n);
        const pdChoices: Array<PdChoice | undefined> = new Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind === 'endpoint') {
            scores[i] = costToScore(podCost(ctx, c.endpoint, b, normP), maxP);
            continue;
          }
          const bp = minCostRandom(ctx, c.group.prefill, (v) => podCost(ctx, v, b, normP));
          const bd = minCostRandom(ctx, c.group.decode, (v) => podCost(ctx, v, b, normD));
          scores[i] = costToScore(bp.cost + bd.cost, maxG);
          pdChoices[i] = { prefill: bp.item, decode: bd.item };
        }
        return { scores, pdChoices };
      },
      charges: (ctx, result) => {
        const b = bucketOf(ctx.request.promptTokens, sep);
        const tokens = Math.max(1, ctx.request.promptTokens);
        const items: BucketCharge[] = result.pd
          ? [
              { endpointId: result.pd.prefill.endpoint.id, bucket: b, amount: tokens },
              { endpointId: result.pd.decode.endpoint.id, bucket: b, amount: 1 },
            ]
          : [{ endpointId: result.primary.endpoint.id, bucket: b, amount: tokens }];
        return { bucket: { decayFactor: d, items } };
      },
    };
  },
});
