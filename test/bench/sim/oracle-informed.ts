// The benchmark's second oracle, `oracle-informed`: the product scorer
// (scorer-aggregate-kv-cache-aware, DEFAULT_KV_COST, the documented default
// weights, the same code path as hermes-kv-aware) fed with the simulated
// cluster's exact state at the decision instant instead of the router's
// signals. What it substitutes, per candidate endpoint e:
//   hit(e)             = cached(e) / P: the leading prompt tokens e's block
//                        index holds or is about to compute for a queued or
//                        prefilling request (Engine.cachedPrefixTokens), in
//                        place of the indexer's answer (which learns a block
//                        only after its KV event arrives) and routing history
//                        (which is off: the exact index already knows what
//                        was sent and is queued);
//   waitingQueueSize   = e's waiting queue now, not the 50 ms-old scrape;
//   runningRequests    = e's running sequences now;
//   kvCacheUsage       = e's referenced blocks / all blocks now;
//   pendingPrefillTokens = e's uncached prompt tokens still to prefill now
//                        (queued and partial; the default model does not read
//                        it, the queue term counts waiting requests);
//   signalsAgeMs       = 0.
// Kept: inFlight, the router's count (charged at the pick, released when the
// request ends): in the simulator that is already exact, and it also counts a
// request picked this instant and not yet at its server, which the engines'
// queues cannot. Whatever the policy then does wrong is the cost model's, not
// its signals'. Bench-only, like the amortised oracle (oracle.ts).
import type { Candidate, CycleContext, EndpointView } from '../../../src/scheduling/types.js';

/** One server's exact state at the decision instant (what oracle-informed sees). */
export interface ExactState {
  /** Leading prompt tokens held or about to be computed (cache + incoming). */
  cachedTokens: number;
  waiting: number;
  running: number;
  kvUsage: number;
  pendingPrefillTokens: number;
}

/**
 * Which signals are exact: all of them, only the hits (the views keep the
 * scrape), or only the load signals (the indexer's hits and routing history
 * kept). The two partial ones are diagnostics: they split oracle-informed's
 * difference from hermes-kv-aware between the two kinds of signal.
 */
export type InformedSignals = 'all' | 'hits' | 'load';

/**
 * The product scorer's inputs with the signals replaced by `states` (one per
 * candidate, same order; undefined = a candidate the simulator does not
 * serve, left as the router sees it). PD group candidates are left as they are.
 */
export function informedInputs(
  ctx: CycleContext,
  candidates: readonly Candidate[],
  states: readonly (ExactState | undefined)[],
  which: InformedSignals = 'all',
): { ctx: CycleContext; candidates: Candidate[] } {
  const exactHits = which !== 'load';
  const exactLoad = which !== 'hits';
  const p = ctx.request.promptTokens;
  const hitRates = new Map<string, number>();
  const out: Candidate[] = [];
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const s = states[i];
    if (c.kind !== 'endpoint' || !s) {
      out.push(c);
      continue;
    }
    hitRates.set(c.endpoint.endpoint.id, p > 0 ? Math.min(1, s.cachedTokens / p) : 0);
    if (!exactLoad) {
      out.push(c);
      continue;
    }
    const endpoint: EndpointView = {
      ...c.endpoint,
      waitingQueueSize: s.waiting,
      runningRequests: s.running,
      kvCacheUsage: s.kvUsage,
      pendingPrefillTokens: s.pendingPrefillTokens,
      signalsAgeMs: 0,
    };
    out.push({ ...c, endpoint });
  }
  return {
    ctx: exactHits ? { ...ctx, data: { ...ctx.data, hitRates, prefixMatches: undefined } } : ctx,
    candidates: out,
  };
}
