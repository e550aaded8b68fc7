// Warm admission (Hermes, beyond GIE): while the saturation detector says
// the pool is full, a request that may not be shed and whose prompt is
// mostly cached on the endpoint the scheduler chose for it is dispatched
// anyway, if that endpoint's own queue has room:
//   warm(r, e)  = cachedShare(r, e) >= WARM_SHARE   (the indexer's hit rate,
//                 else the approximate prefix match over the hashed blocks)
//                 and (1 - cachedShare(r, e)) x promptTokens(r)
//                 <= WARM_UNCACHED_TOKENS (the prefill it adds; the share of
//                 the hashed head stands for the whole prompt)
//   room(e)     = detector([e']) < 1, e' = e with every pick let through and
//                 not yet charged counted on it, requests routed but not yet
//                 scraped counted as waiting (in-transit.ts), and its KV-cache
//                 usage left out
//   saturated pool: dispatch  <=>  warm(r, e) and room(e)
// Why: a warm request adds little prefill (its KV mostly exists) and the
// pool's throughput is bound by prefill, while the detector's KV term binds
// on KV held by decoding sequences long before the servers are out of
// prefill capacity. A refused turn of a conversation also leaves the next
// turn cold (its context was never computed), so refusing warm requests and
// admitting cold ones later costs cache hits twice. The prefill bound: under
// saturation the pool serves what its prefill capacity buys, so a long
// prompt half cached (8,000 tokens, 4,000 to compute) costs what four short
// warm turns cost; only a request whose own prefill is small goes out of
// turn, whatever its share. (On the agentic trace at 2x the knee, a turn
// after a refused one left 1,778 tokens a request to prefill, one after a
// served turn 935.) Cold requests still wait
// for the pool to be below 1, as GIE's gate says; the endpoint's queue term
// (waiting requests against queueDepthThreshold, or in-flight against
// maxConcurrency) keeps what the servers hold short, so TTFT stays bounded.
import type { EndpointView } from '../scheduling/types.js';
import { withInTransit } from './in-transit.js';

/** A request is warm on an endpoint holding at least this share of its prompt. */
export const WARM_SHARE = 0.5;

/**
 * ... and it leaves at most this many prompt tokens to prefill there: about
 * an eighth of a second of one server's prefill (an H100 pair at ~16,000
 * tokens/s), a short turn's worth. Measured on the agentic trace (seed
 * 1000, hermes-kv-aware, docs/benchmarks.md "Flow control, round five"):
 * 1,250 / 1,500 / 2,000 / 2,048 / 2,500 / 3,000 / no bound gave 1.21 /
 * 1.22 / 1.18 / 1.16 / 1.08 / 1.02 / 0.84 x the peak at 2x the knee and
 * 1.09 / 1.12 / 1.17 / 1.17 / 1.15 / 1.13 / 1.06 at 1.5x.
 */
export const WARM_UNCACHED_TOKENS = 2048;

/**
 * Warm: at least WARM_SHARE of the prompt expected cached on the endpoint,
 * and at most WARM_UNCACHED_TOKENS of it to prefill there (the share stands
 * for the whole prompt: (1 - share) x promptTokens).
 */
export function isWarm(cachedShare: number | undefined, promptTokens: number): boolean {
  if (cachedShare === undefined || cachedShare < WARM_SHARE) return false;
  return (1 - cachedShare) * promptTokens <= WARM_UNCACHED_TOKENS;
}

/**
 * Whether `v` (the scheduled endpoint) can take one more warm request: the
 * detector judges it alone with `pending` uncharged picks counted on it,
 * in-transit requests as waiting, and its KV-cache usage left out.
 */
export function queueHasRoom(
  v: EndpointView,
  pending: number,
  saturation: (views: readonly EndpointView[]) => number,
): boolean {
  const one = withInTransit([pending > 0 ? { ...v, inFlight: v.inFlight + pending } : v])[0]!;
  // Unknown KV (stale signals) stays unknown: the detector counts the endpoint full.
  const withoutKv = one.kvCacheUsage === undefined ? one : { ...one, kvCacheUsage: 0 };
  return saturation([withoutKv]) < 1;
}
