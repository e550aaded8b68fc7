// Bench-only reference: scorer-pd-kv-cache-aware as it was before issue 12 (the
// formulas of shared/design/PLUGINS.md), kept verbatim under the type name
// bench-scorer-pd-kv-cache-aware-v0. Not registered in the product.
// scorer-pd-kv-cache-aware (PD groups). Costs, lower is better:
//   prefill pod p: cP(p) = wMiss * (1 - hit(p)) + wUsage * usage(p) + wPWait * waiting(p) / normP
//   decode pod d:  cD(d) = wUsage * usage(d) + wDWait * waiting(d) / normD
//   group g:       cost(g) = prefillPodScoreWeight * min_p cP(p) + decodePodScoreWeight * min_d cD(d)
// (the KV cache moves to decode, so prefix hits count only on prefill).
// normP / normD = max(1, largest known waiting queue among the prefill /
// decode pods of all candidate groups), so groups compare on one scale.
// hit(p) is the cache-indexer's hit rate (0 for all when it failed).
// Unknown usage or waiting counts 0.5, the neutral middle of its term.
//   maxPossibleCost = prefillPodScoreWeight * (wMiss + wUsage + wPWait)
//                   + decodePodScoreWeight  * (wUsage + wDWait)
//   score(g) = 1 - cost(g) / maxPossibleCost
// pdChoices carries the best prefill and decode pod of each group (ties
// among pods at random). Endpoint candidates (no PD filter) are scored as
// prefill pods on their own.
import { z } from 'zod';
import type { EndpointView, PdChoice } from '../../../../src/scheduling/types.js';
import {
  costToScore,
  hitRate,
  indexerNeed,
  kvCacheManagerParams,
  minCostRandom,
  podsOf,
  usageTerm,
  waitingNorm,
  waitingTerm,
  weightParam,
} from '../../../../src/plugins/common.js';
import { definePlugin } from '../../../../src/plugins/plugin.js';

const TYPE = 'bench-scorer-pd-kv-cache-aware-v0';

export const scorerPdKvCacheAwareV0 = definePlugin({
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
    const maxPrefill = wMiss + wUsage + wPWait;
    const maxGroup = wP * maxPrefill + wD * (wUsage + wDWait);
    return {
      type: TYPE,
      name,
      dataNeeds: { indexer: indexerNeed(p) },
      score: (ctx, candidates) => {
        const n = candidates.length;
        // Plain endpoints are normalised with the prefill pods.
        const prefillSide = podsOf(candidates, 'prefill');
        for (const c of candidates) if (c.kind === 'endpoint') prefillSide.push(c.endpoint);
        const normP = waitingNorm(prefillSide);
        const normD = waitingNorm(podsOf(candidates, 'decode'));
        const prefillCost = (v: EndpointView) =>
          wMiss * (1 - hitRate(ctx, v)) + wUsage * usageTerm(v) + wPWait * waitingTerm(v, normP);
        const decodeCost = (v: EndpointView) => wUsage * usageTerm(v) + wDWait * waitingTerm(v, normD);

        const scores = new Float64Array(n);
        const pdChoices: Array<PdChoice | undefined> = new Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind === 'endpoint') {
            scores[i] = costToScore(prefillCost(c.endpoint), maxPrefill);
            continue;
          }
          const bp = minCostRandom(ctx, c.group.prefill, prefillCost);
          const bd = minCostRandom(ctx, c.group.decode, decodeCost);
          scores[i] = costToScore(wP * bp.cost + wD * bd.cost, maxGroup);
          pdChoices[i] = { prefill: bp.item, decode: bd.item };
        }
        return { scores, pdChoices };
      },
    };
  },
});
