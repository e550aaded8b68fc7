// scorer-pd-kv-cache-aware (PD groups). Costs in tokens of work for a prompt
// of P tokens (the unit of src/plugins/kv-cost.ts), lower is better:
//   prefill pod p: cP(p) = kvCacheHitNotRateWeight     * (1 - hit(p)) * P
//                        + xpuCacheUsageWeight         * usage(p)^2 * P
//                        + prefillWaitingRequestWeight * queueP(p)
//   decode pod d:  cD(d) = xpuCacheUsageWeight         * usage(d)^2 * P
//                        + decodeWaitingRequestWeight  * waiting(d) * P
//   group g:       cost(g) = prefillPodScoreWeight * min_p cP(p) + decodePodScoreWeight * min_d cD(d)
//   score(g) = 1 - cost(g) / max over candidate groups of cost   (all 0 -> 1)
// (the KV cache moves to decode, so prefix hits count only on prefill).
//   queueP(p) = max(scraped waiting(p) * (1 - hit(p)) * P, pendingPrefillTokens(p)):
//     the router's outstanding prefill tokens on p (all replicas, released
//     at the first token) are current where the scrape is up to one
//     interval old; in-flight counts are not used here because a prefill
//     pod stays charged while its request decodes elsewhere.
// hit(p) is the cache-indexer's hit rate (0 for all when it failed).
// Unknown usage counts 0.5; an unknown waiting queue counts half the pod's
// in-flight requests. pdChoices carries the best prefill and decode pod of
// each group (ties among pods at random). Endpoint candidates (no PD filter)
// are scored as prefill pods on their own.
// Why the unit: the earlier [0,1]-normalised terms (docs/plugins.md,
// "History") let a queue of one outweigh a whole prompt's prefix miss.
import { z } from 'zod';
import type { EndpointView, PdChoice } from '../scheduling/types.js';
import { NEUTRAL, hitRate, indexerNeed, kvCacheManagerParams, minCostRandom, weightParam } from './common.js';
import { costsToScores, promptTokensOf, usageOf, waitingEstimate } from './kv-cost.js';
import { definePlugin } from './plugin.js';

const TYPE = 'scorer-pd-kv-cache-aware';

export const scorerPdKvCacheAware = definePlugin({
  type: TYPE,
  parameters: z.strictObject({
    kvCacheHitNotRateWeight: weightParam(),
    xpuCacheUsageWeight: weightParam(),
    prefillWaitingRequestWeight: weightParam(),
    decodeWaitingRequestWeight: weightParam(),
    prefillPodScoreWeight: weightParam(),
    decodePodScoreWeight: weightParam(),
    ...kvCacheManagerParams,
  }),
  create: (name, p) => {
    const wMiss = p.kvCacheHitNotRateWeight;
    const wUsage = p.xpuCacheUsageWeight;
    const wPWait = p.prefillWaitingRequestWeight;
    const wDWait = p.decodeWaitingRequestWeight;
    const wP = p.prefillPodScoreWeight;
    const wD = p.decodePodScoreWeight;
    return {
      type: TYPE,
      name,
      dataNeeds: { indexer: indexerNeed(p) },
      score: (ctx, candidates) => {
        const n = candidates.length;
        const prompt = promptTokensOf(ctx);
        const prefillCost = (v: EndpointView) => {
          const miss = (1 - hitRate(ctx, v)) * prompt;
          const w = waitingEstimate(v, false);
          const waited = (w === undefined ? v.inFlight * NEUTRAL : w) * miss;
          const queue = v.pendingPrefillTokens > waited ? v.pendingPrefillTokens : waited;
          return wMiss * miss + wUsage * usageOf(v) ** 2 * prompt + wPWait * queue;
        };
        const decodeCost = (v: EndpointView) => {
          const w = waitingEstimate(v, false);
          const waiting = w === undefined ? v.inFlight * NEUTRAL : w;
          return wUsage * usageOf(v) ** 2 * prompt + wDWait * waiting * prompt;
        };
        const costs = new Float64Array(n);
        const pdChoices: Array<PdChoice | undefined> = new Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind === 'endpoint') {
            costs[i] = prefillCost(c.endpoint);
            continue;
          }
          const bp = minCostRandom(ctx, c.group.prefill, prefillCost);
          const bd = minCostRandom(ctx, c.group.decode, decodeCost);
          costs[i] = wP * bp.cost + wD * bd.cost;
          pdChoices[i] = { prefill: bp.item, decode: bd.item };
        }
        const scores = costsToScores(costs);
        return { scores, pdChoices };
      },
    };
  },
});
