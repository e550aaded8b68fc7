// Bench-only reference: scorer-aggregate-kv-cache-aware as it was before issue 12 (the formulas of
// shared/design/PLUGINS.md), kept verbatim under the type name bench-scorer-aggregate-kv-cache-aware-v0
// so the routing benchmark can show the new formulas against the old ones.
// Not registered in the product.
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
//   routingHistory (false): the indexer learns a prefix only once a model
//     server stored its blocks (after the prefill), so requests that share a
//     new prefix and arrive meanwhile see hit 0 everywhere and scatter. With
//     routingHistory the scorer also remembers what this router sent where
//     (the StateStore's approximate prefix index, as prefix-cache-scorer
//     does, shared by every replica on the same store) and uses
//       hit(e) = max(indexer hit(e), matchedBlocks(e) * blockSizeTokens / promptTokens)
//     the second term in the indexer's unit (share of the whole prompt), so
//     it never claims more than the router itself sent there; capped at 1.
//     blockSizeTokens (16), maxPrefixBlocksToMatch (256) and
//     lruCapacityPerServer (31,250) are prefix-cache-scorer's parameters and
//     defaults, used only with routingHistory. If the profile also runs
//     prefix-cache-scorer, the director hashes the prompt once with the
//     first plugin's block parameters: give both the same values.
//     Simulator (docs/benchmarks.md, Tuning, finding 3): no gain on the
//     warmed-up shared-prefix workload, +40-170% tokens/s at 40-60 QPS when
//     every prefix is new; about +130-200 us per decision at 8k tokens.
import { z } from 'zod';
import type { EndpointView } from '../../../../src/scheduling/types.js';
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
} from '../../../../src/plugins/common.js';
import { definePlugin } from '../../../../src/plugins/plugin.js';

const TYPE = 'bench-scorer-aggregate-kv-cache-aware-v0';

const positiveInt = (what: string) =>
  z
    .number({ error: `expected ${what} (integer)` })
    .int(`expected ${what} (integer)`)
    .positive(`expected ${what} > 0`);

export const scorerAggregateKvCacheAwareV0 = definePlugin({
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
    routingHistory: z.boolean({ error: 'expected true or false' }).default(false),
    blockSizeTokens: positiveInt('a block size in tokens').default(16),
    maxPrefixBlocksToMatch: positiveInt('a number of blocks').default(256),
    lruCapacityPerServer: positiveInt('a number of blocks').default(31_250),
  }),
  create: (name, p) => {
    const wMiss = p.kvCacheHitNotRateWeight;
    const wUsage = p.xpuCacheUsageWeight;
    const wWait = p.waitingRequestWeight;
    const maxCost = wMiss + wUsage + wWait;
    const ws: WaitingSignal = { fromInFlight: p.waitingFromInFlight, normFloor: p.waitingNormFloor };
    const history = p.routingHistory;
    const blockTokens = p.blockSizeTokens;
    return {
      type: TYPE,
      name,
      dataNeeds: history
        ? {
            indexer: indexerNeed(p),
            prefix: {
              blockSizeTokens: blockTokens,
              maxPrefixBlocksToMatch: p.maxPrefixBlocksToMatch,
              lruCapacityPerServer: p.lruCapacityPerServer,
            },
          }
        : { indexer: indexerNeed(p) },
      score: (ctx, candidates) => {
        const n = candidates.length;
        const views: EndpointView[] = [];
        for (const c of candidates) if (c.kind === 'endpoint') views.push(c.endpoint);
        const norm = waitingNorm(views, ws);
        // Routing-history hit per matched block, in the indexer's unit (share of the prompt).
        const matches = history ? ctx.data.prefixMatches : undefined;
        const perBlock =
          matches && matches.size > 0 && ctx.request.promptTokens > 0
            ? blockTokens / ctx.request.promptTokens
            : 0;
        const scores = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          if (c.kind !== 'endpoint') {
            scores[i] = NEUTRAL;
            continue;
          }
          const v = c.endpoint;
          let hit = hitRate(ctx, v);
          if (perBlock > 0) {
            const routed = Math.min(1, (matches!.get(c.id) ?? 0) * perBlock);
            if (routed > hit) hit = routed;
          }
          const cost = wMiss * (1 - hit) + wUsage * usageTerm(v) + wWait * waitingTerm(v, norm, ws);
          scores[i] = costToScore(cost, maxCost);
        }
        return { scores };
      },
      // Record the prompt's blocks on the endpoint that will hold them
      // (routingHistory only; the prefill pod for PD, as prefix-cache-scorer).
      charges: history
        ? (ctx, result) => {
            const hashes = ctx.data.prefixHashes;
            if (!hashes || hashes.length === 0) return {};
            const holder = result.pd ? result.pd.prefill : result.primary;
            return { prefixRecord: { endpointId: holder.endpoint.id, hashes } };
          }
        : undefined,
    };
  },
});
