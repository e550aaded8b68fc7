// Bench-only reference: scorer-pd-bucket as it was after round two of issue 12
// (balance by pending prefill / mean, a flat beta outside the share), kept under
// the type name bench-scorer-pd-bucket-r2 (shares and buckets from the product's
// module, unchanged) so the routing benchmark shows round three's change. Not
// registered in the product.
// scorer-pd-bucket (PD groups): keeps long and short prompts on different
// prefill pods, gives each length bucket a share of the prefill pods that
// matches its load, and balances load inside the share.
//   bucket b    = long if promptTokens > bucketSeperateLength, else short
//   L[p][x]     = pod p's load in bucket x, decayed to the pool's event:
//                 stored * decayFactor^(poolEvent - atEvent)
//   cap(p)      = the number in label `capacityLabelName` (absent/invalid = 1)
//   load(p)     = (L[p][short] + L[p][long]) / cap(p)
//   mean        = mean load(q) over the same-role pods q of all candidate
//                 groups (0 makes the load term 0)
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
//   cost(p)     = alpha * load(p) / mean + beta * (1 - own(p, b))
// Decode pods: cost(d) = alpha * load(d) / mean (decode has no head-of-line
// blocking between lengths, so only the KV it holds is balanced; their
// load is charged in prompt tokens, the KV each sequence brings).
//   cost(g)     = min_p cost(prefill p) + min_d cost(decode d)   (ties at random)
//   maxPossibleCost(g) = alpha * (nPrefill + nDecode) + beta   (load/mean <= n)
//   score(g)    = 1 - cost(g) / maxPossibleCost
// Why: the earlier formula (load / max load + beta * other-bucket share, see
// docs/plugins.md) let a pod already holding the request's bucket beat every
// other pod however loaded it was, so one prefill pod took ~95% of the long
// prompts. Here a whole share is balanced, and a pod outside the share is
// used only when it is beta/alpha mean loads lighter than the best pod
// inside (SGLang's bucket policy: cut buckets by load, balance inside).
// A pick charges the prefill pod and the decode pod max(1, promptTokens) in
// bucket b; the store decays-and-charges atomically and advances the pool
// event. A pod with no record has no load: this count is ours, never an
// unknown. Plain endpoint candidates (no PD filter) are scored and charged
// like prefill pods, maxPossibleCost alpha * n + beta.
// Deprecated, accepted and ignored: loadNormalization (pre-issue-12 knob).
import { z } from 'zod';
import { decayed } from '../../../../src/state/charges.js';
import type { BucketCharge, CycleContext, EndpointView, PdChoice } from '../../../../src/scheduling/types.js';
import {
  costToScore,
  minCostRandom,
  podsOf,
  stringParam,
  weightParam,
} from '../../../../src/plugins/common.js';
import { definePlugin } from '../../../../src/plugins/plugin.js';
import {
  bucketOf,
  capacityOf,
  shareOf,
  type Bucket,
  type PodLoad,
} from '../../../../src/plugins/scorer-pd-bucket.js';

const TYPE = 'bench-scorer-pd-bucket-r2';

export const scorerPdBucketR2 = definePlugin({
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
    // Deprecated no-op: the pre-issue-12 formula's load normaliser (the
    // new one divides by the mean). Accepted so configurations that set it load.
    loadNormalization: z
      .enum(['max', 'mean'], { error: 'expected "max" or "mean" (deprecated, ignored)' })
      .optional(),
  }),
  create: (name, p) => {
    const { alpha, beta, decayFactor: d, bucketSeperateLength: sep, capacityLabelName } = p;

    const podLoad = (ctx: CycleContext, v: EndpointView): PodLoad => {
      const id = v.endpoint.id;
      const cap = capacityOf(v, capacityLabelName);
      const rec = ctx.data.bucketLoads.get(id);
      if (!rec) return { id, short: 0, long: 0, cap };
      const now = ctx.data.poolEvent;
      return {
        id,
        short: decayed(rec.short, rec.atEvent, now, d),
        long: decayed(rec.long, rec.atEvent, now, d),
        cap,
      };
    };
    /**
     * Per-role cost table: pod id -> cost, computed once per cycle. `work`
     * is the load the balance term compares (per unit of capacity); `b` the
     * request's bucket for the prefill shares (undefined: no separation).
     */
    const roleCosts = (
      ctx: CycleContext,
      pods: readonly EndpointView[],
      work: (v: EndpointView, x: PodLoad) => number,
      b: Bucket | undefined,
    ): Map<string, number> => {
      const ls = pods.map((v) => podLoad(ctx, v));
      const ws = pods.map((v, i) => work(v, ls[i]!) / ls[i]!.cap);
      let sum = 0;
      for (const w of ws) sum += w;
      const mean = ls.length > 0 ? sum / ls.length : 0;
      const own = b === undefined ? undefined : shareOf(ls, b);
      const out = new Map<string, number>();
      for (let i = 0; i < ls.length; i++) {
        const x = ls[i]!;
        const balance = mean > 0 ? ws[i]! / mean : 0;
        const outside = own && !own.has(x.id) ? 1 : 0;
        out.set(x.id, alpha * balance + beta * outside);
      }
      return out;
    };
    const pendingPrefill = (v: EndpointView) => v.pendingPrefillTokens;
    const bucketLoad = (_v: EndpointView, x: PodLoad) => x.short + x.long;

    return {
      type: TYPE,
      name,
      dataNeeds: { bucketLoads: true },
      score: (ctx, candidates) => {
        const b = bucketOf(ctx.request.promptTokens, sep);
        const prefillSide = podsOf(candidates, 'prefill');
        for (const c of candidates) if (c.kind === 'endpoint') prefillSide.push(c.endpoint);
        const decodeSide = podsOf(candidates, 'decode');
        const costP = roleCosts(ctx, prefillSide, pendingPrefill, b);
        const costD = roleCosts(ctx, decodeSide, bucketLoad, undefined);
        const maxP = alpha * prefillSide.length + beta;
        const maxG = maxP + alpha * decodeSide.length;
        const n = candidates.length;
        const scores = new Float64Array(n);
        const pdChoices: Array<PdChoice | undefined> = new Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind === 'endpoint') {
            scores[i] = costToScore(costP.get(c.endpoint.endpoint.id)!, maxP);
            continue;
          }
          const bp = minCostRandom(ctx, c.group.prefill, (v) => costP.get(v.endpoint.id)!);
          const bd = minCostRandom(ctx, c.group.decode, (v) => costD.get(v.endpoint.id)!);
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
              { endpointId: result.pd.decode.endpoint.id, bucket: b, amount: tokens },
            ]
          : [{ endpointId: result.primary.endpoint.id, bucket: b, amount: tokens }];
        return { bucket: { decayFactor: d, items } };
      },
    };
  },
});
