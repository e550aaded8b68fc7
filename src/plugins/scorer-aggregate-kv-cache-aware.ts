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
// Optional parameters (not in the product doc; the defaults give exactly the
// formula above):
//   waitingFromInFlight (false): waiting(e) = max(scraped waiting,
//     inFlight(e) - scraped running): requests this router sent since the
//     last scrape count as waiting, so picks between scrapes do not all see
//     the same stale queues. Unknown signals stay unknown.
//   waitingNormFloor (1): the normaliser is max(waitingNormFloor, max
//     waiting). With 1, one waiting request against none weighs as much as
//     a full prefix miss; a floor of 4 makes it 1/4 of one. In the routing
//     simulator (docs/benchmarks.md, "Tuning") waitingFromInFlight: true with
//     waitingNormFloor: 4 lifts the shared-prefix knee from 21 to 33 QPS;
//     waitingFromInFlight alone (floor 1) makes it worse.
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
  type WaitingSignal,
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
    waitingFromInFlight: z.boolean({ error: 'expected true or false' }).default(false),
    waitingNormFloor: z
      .number({ error: 'expected a number of requests >= 1' })
      .min(1, 'expected a number of requests >= 1')
      .default(1),
  }),
  create: (name, p) => {
    const wMiss = p.kvCacheHitNotRateWeight;
    const wUsage = p.xpuCacheUsageWeight;
    const wWait = p.waitingRequestWeight;
    const maxCost = wMiss + wUsage + wWait;
    const ws: WaitingSignal = { fromInFlight: p.waitingFromInFlight, normFloor: p.waitingNormFloor };
    return {
      type: TYPE,
      name,
      dataNeeds: { indexer: indexerNeed(p) },
      score: (ctx, candidates) => {
        const n = candidates.length;
        const views: EndpointView[] = [];
        for (const c of candidates) if (c.kind === 'endpoint') views.push(c.endpoint);
        const norm = waitingNorm(views, ws);
        const scores = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind !== 'endpoint') {
            scores[i] = NEUTRAL;
            continue;
          }
          const v = c.endpoint;
          const cost =
            wMiss * (1 - hitRate(ctx, v)) + wUsage * usageTerm(v) + wWait * waitingTerm(v, norm, ws);
          scores[i] = costToScore(cost, maxCost);
        }
        return { scores };
      },
    };
  },
});
