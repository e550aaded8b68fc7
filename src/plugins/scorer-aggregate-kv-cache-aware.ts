// scorer-aggregate-kv-cache-aware (aggregated serving). Cost of endpoint e
// for a prompt of P tokens, in tokens of prefill work (src/plugins/kv-cost.ts):
//   cost(e) = kvCacheHitNotRateWeight * ((1 - hit(e)) * P + copy(e))   KV miss
//           + xpuCacheUsageWeight     * kvCacheUsage(e) * P      KV-cache usage
//           + waitingRequestWeight    * waiting(e) * (1 - hit(e)) * P   waiting requests
//   waiting(e) = max(scraped waiting, inFlight(e) - scraped running)
//   score(e)   = 1 - cost(e) / max_c cost(c)   (all 0 -> 1)
//   bounded affinity: hit(e) counts 0 for this pick when e is congested
//   (scraped waiting >= 1) and inFlight(e) > 1.15 * mean inFlight + 8
//   (kv-cost.ts: a relative SGLang-style bound, round three of issue 12).
//   copy(e) = 30 * kvCacheUsage(e)^3 * (bestHit - hit(e)) * P, bestHit = the
//   highest hit(c) among the candidates after the bound: copying a prefix
//   another endpoint holds costs more the fuller e's cache is (kv-cost.ts,
//   round four of issue 12).
// hit(e): the cache-indexer's hit rate 0..1 for e (0 for every endpoint when
// the indexer failed, timed out or is circuit-broken: the term is then the
// same everywhere and drops out). Because a miss and a queue are in the same
// unit, a prefix holder keeps the request until its queue is hit(e) * P
// tokens longer than a non-holder's (SGLang's bounded-load affinity, with
// the bound set by the size of what a move would recompute), instead of
// losing it to any idle server as in the earlier [0,1]-normalised formula
// (docs/plugins.md, "History"). Unknown usage counts 0.5; an endpoint never
// scraped counts half its in-flight requests as waiting. PD group
// candidates are not this scorer's business: they all get the neutral 0.5.
// Routing history (optional parameters, not in the product doc; on by default):
//   the indexer learns a prefix only once a model server stored its blocks
//   (after the prefill), so requests that share a new prefix, or the next
//   turn of a conversation, arriving meanwhile would see hit 0 and scatter.
//   The scorer also remembers what this router sent where (the StateStore's
//   approximate prefix index, as prefix-cache-scorer does, shared by every
//   replica on the same store) and uses
//     hit(e) = max(indexer hit(e), matchedBlocks(e) * blockSizeTokens / P)
//   the second term in the indexer's unit (share of the prompt), so it never
//   claims more than the router itself sent there; capped at 1.
//   routingHistory (true), blockSizeTokens (256), maxPrefixBlocksToMatch
//   (64, i.e. the first 16,384 tokens), lruCapacityPerServer (2,000 blocks
//   = 512k tokens per endpoint, GIE's 31,250 x 16). 256-token blocks cost a
//   sixteenth of prefix-cache-scorer's 16 per prompt token and cover whole
//   agent contexts (16k tokens, not 4k); the indexer's exact hits take over
//   once a prefill ran, so the coarser grain only matters meanwhile. The
//   director hashes each prompt once per profile: if the profile also runs
//   prefix-cache-scorer, each of the three block parameters left out here
//   adopts that plugin's value (with GIE's defaults: 16-token blocks, the
//   first 4,096 tokens, 31,250 blocks), and hit(e) is read in the hashing in
//   effect; setting one to a different value than the other plugin is a
//   start-up error (scheduling/profile.ts, collectNeeds).
// Deprecated, accepted and ignored: waitingFromInFlight, waitingNormFloor
// (tuning switches of the pre-issue-12 formula; the new one always reads
// the in-flight count and has no normaliser).
import { z } from 'zod';
import { NEUTRAL, hitRate, indexerNeed, kvCacheManagerParams, weightParam } from './common.js';
import type { PrefixField, PrefixNeed } from '../scheduling/plugin.js';
import type { CycleContext, EndpointView, PickCharges } from '../scheduling/types.js';
import {
  DEFAULT_KV_COST,
  candidatesAffinityBound,
  candidatesImbalanced,
  pastBound,
  costsToScores,
  kvCost,
  promptTokensOf,
  type KvCostModel,
} from './kv-cost.js';
import { definePlugin } from './plugin.js';

const TYPE = 'scorer-aggregate-kv-cache-aware';

/**
 * The share of the prompt `v` is expected to hold: the cache-indexer's hit,
 * or what this router sent there (routing history) if that is more, capped at 1.
 */
function expectedHit(ctx: CycleContext, v: EndpointView, history: boolean): number {
  let hit = hitRate(ctx, v);
  const matches = history ? ctx.data.prefixMatches : undefined;
  const blockTokens = ctx.data.prefixBlockTokens ?? 0;
  const p = ctx.request.promptTokens;
  if (matches && matches.size > 0 && p > 0 && blockTokens > 0) {
    const routed = Math.min(1, ((matches.get(v.endpoint.id) ?? 0) * blockTokens) / p);
    if (routed > hit) hit = routed;
  }
  return hit;
}

/** Routing-history hashing when the configuration sets none and no other prefix plugin does. */
export const HISTORY_DEFAULTS = {
  blockSizeTokens: 256,
  maxPrefixBlocksToMatch: 64,
  lruCapacityPerServer: 2_000,
} as const;
const HISTORY_FIELDS: readonly PrefixField[] = [
  'blockSizeTokens',
  'maxPrefixBlocksToMatch',
  'lruCapacityPerServer',
];

const positiveInt = (what: string) =>
  z
    .number({ error: `expected ${what} (integer)` })
    .int(`expected ${what} (integer)`)
    .positive(`expected ${what} > 0`);

/**
 * The scorer with a given cost model. The product registers DEFAULT_KV_COST;
 * the routing benchmark builds variants under other type names to measure
 * alternatives on the same code path.
 */
export function aggregateKvCacheAwareScorer(type: string, model: KvCostModel) {
  return definePlugin({
    type,
    parameters: z.strictObject({
      kvCacheHitNotRateWeight: weightParam(),
      xpuCacheUsageWeight: weightParam(),
      waitingRequestWeight: weightParam(),
      ...kvCacheManagerParams,
      routingHistory: z.boolean({ error: 'expected true or false' }).default(true),
      // No zod defaults: a value left out may adopt another prefix plugin's (HISTORY_DEFAULTS).
      blockSizeTokens: positiveInt('a block size in tokens').optional(),
      maxPrefixBlocksToMatch: positiveInt('a number of blocks').optional(),
      lruCapacityPerServer: positiveInt('a number of blocks').optional(),
      // Deprecated no-ops: tuning switches of the formula before issue 12.
      // Accepted (and type-checked) so configurations that set them still load.
      waitingFromInFlight: z.boolean({ error: 'expected true or false (deprecated, ignored)' }).optional(),
      waitingNormFloor: z
        .number({ error: 'expected a number of requests >= 1 (deprecated, ignored)' })
        .min(1, 'expected a number of requests >= 1 (deprecated, ignored)')
        .optional(),
    }),
    create: (name, p) => {
      const weights = {
        miss: p.kvCacheHitNotRateWeight,
        usage: p.xpuCacheUsageWeight,
        wait: p.waitingRequestWeight,
      };
      const history = p.routingHistory;
      const prefix: PrefixNeed = {
        blockSizeTokens: p.blockSizeTokens ?? HISTORY_DEFAULTS.blockSizeTokens,
        maxPrefixBlocksToMatch: p.maxPrefixBlocksToMatch ?? HISTORY_DEFAULTS.maxPrefixBlocksToMatch,
        lruCapacityPerServer: p.lruCapacityPerServer ?? HISTORY_DEFAULTS.lruCapacityPerServer,
      };
      const adoptable = HISTORY_FIELDS.filter((f) => p[f] === undefined);
      if (adoptable.length > 0) prefix.adoptable = adoptable;
      // Scratch of one score call, reused by the next (score is synchronous; none of it escapes):
      // three allocations a decision fewer.
      let costs = new Float64Array(0);
      let hits = costs;
      let raws = costs;
      return {
        type,
        name,
        dataNeeds: history ? { indexer: indexerNeed(p), prefix } : { indexer: indexerNeed(p) },
        score: (ctx, candidates) => {
          const n = candidates.length;
          const prompt = promptTokensOf(ctx);
          const balanceOnly = candidatesImbalanced(candidates, model);
          const bound = candidatesAffinityBound(candidates, model);
          if (costs.length !== n) {
            costs = new Float64Array(n);
            hits = new Float64Array(n);
            raws = new Float64Array(n);
          } else {
            costs.fill(0);
            hits.fill(0);
            raws.fill(0);
          }
          let bestHit = 0;
          for (let i = 0; i < n; i++) {
            const c = candidates[i]!;
            if (c.kind !== 'endpoint') continue;
            const v = c.endpoint;
            const raw = balanceOnly ? 0 : expectedHit(ctx, v, history);
            const hit = pastBound(v, bound, model) ? 0 : raw;
            hits[i] = hit;
            raws[i] = raw;
            const held = model.copyPriceThroughBound ? raw : hit;
            if (held > bestHit) bestHit = held;
          }
          for (let i = 0; i < n; i++) {
            const c = candidates[i]!;
            if (c.kind === 'endpoint')
              costs[i] = kvCost(weights, c.endpoint, prompt, hits[i]!, model, bestHit, raws[i]!);
          }
          const scores = costsToScores(costs);
          for (let i = 0; i < n; i++) if (candidates[i]!.kind !== 'endpoint') scores[i] = NEUTRAL;
          return { scores };
        },
        // Routing history's record, and the bench-only prefill charge (chargeExpectedHit).
        charges:
          history || model.chargeExpectedHit
            ? (ctx, result) => {
                const out: Partial<PickCharges> = {};
                const holder = result.pd ? result.pd.prefill : result.primary;
                // Record the prompt's blocks on the endpoint that will hold them
                // (routingHistory only; the prefill pod for PD, as prefix-cache-scorer).
                const hashes = history ? ctx.data.prefixHashes : undefined;
                if (hashes && hashes.length > 0)
                  out.prefixRecord = { endpointId: holder.endpoint.id, hashes };
                if (model.chargeExpectedHit && !result.pd) {
                  const p = ctx.request.promptTokens;
                  const tokens = Math.round(p * (1 - expectedHit(ctx, holder, history)));
                  if (tokens > 0) out.prefillTokens = [{ endpointId: holder.endpoint.id, tokens }];
                }
                return out;
              }
            : undefined,
      };
    },
  });
}

export const scorerAggregateKvCacheAware = aggregateKvCacheAwareScorer(TYPE, DEFAULT_KV_COST);
