// scorer-aggregate-kv-cache-aware (aggregated serving). Cost of endpoint e,
// lower is better:
//   cost(e) = wMiss  * (1 - hit(e))
//           + wUsage * kvCacheUsage(e)
//           + wWait  * waiting(e) / max(1, max_c waiting(c))
// hit(e): the cache-indexer's hit rate 0..1 for e (0 for every endpoint when
// the indexer failed, timed out or is circuit-broken: the term drops out of
// the comparison). Every term lies in [0,1], so
//   maxPossibleCost = wMiss + wUsage + wWait
// and the framework gets score(e) = 1 - cost(e) / maxPossibleCost.
// Unknown usage or waiting (stale/never scraped) counts 0.5, the neutral
// middle of its term. PD group candidates are not this scorer's business:
// they all get the neutral 0.5.
import { z } from 'zod';
import type { EndpointView } from '../scheduling/types.js';
import {
  NEUTRAL,
  costToScore,
  hitRate,
  indexerNeed,
  kvCacheManagerParams,
  usageTerm,
  waitingNorm,
  waitingTerm,
  weightParam,
} from './common.js';
import { definePlugin } from './plugin.js';

const TYPE = 'scorer-aggregate-kv-cache-aware';

export const scorerAggregateKvCacheAware = definePlugin({
  type: TYPE,
  parameters: z.strictObject({
    kvCacheHitNotRateWeight: weightParam(),
    xpuCacheUsageWeight: weightParam(),
    waitingRequestWeight: weightParam(),
    ...kvCacheManagerParams,
  }),
  create: (name, p) => {
    const wMiss = p.kvCacheHitNotRateWeight;
    const wUsage = p.xpuCacheUsageWeight;
    const wWait = p.waitingRequestWeight;
    const maxCost = wMiss + wUsage + wWait;
    return {
      type: TYPE,
      name,
      dataNeeds: { indexer: indexerNeed(p) },
      score: (ctx, candidates) => {
        const n = candidates.length;
        const views: EndpointView[] = [];
        for (const c of candidates) if (c.kind === 'endpoint') views.push(c.endpoint);
        const norm = waitingNorm(views);
        const scores = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind !== 'endpoint') {
            scores[i] = NEUTRAL;
            continue;
          }
          const v = c.endpoint;
          const cost = wMiss * (1 - hitRate(ctx, v)) + wUsage * usageTerm(v) + wWait * waitingTerm(v, norm);
          scores[i] = costToScore(cost, maxCost);
        }
        return { scores };
      },
    };
  },
});
