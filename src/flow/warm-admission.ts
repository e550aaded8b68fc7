// Warm admission (Hermes, beyond GIE): while the saturation detector says
// the pool is full, a request that may not be shed and whose prompt is
// mostly cached on the endpoint the scheduler chose for it is dispatched
// anyway, if that endpoint's own queue has room:
//   warm(r, e)  = cachedShare(r, e) >= WARM_SHARE   (the indexer's hit rate,
//                 else the approximate prefix match over the hashed blocks)
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
// admitting cold ones later costs cache hits twice. Cold requests still wait
// for the pool to be below 1, as GIE's gate says; the endpoint's queue term
// (waiting requests against queueDepthThreshold, or in-flight against
// maxConcurrency) keeps what the servers hold short, so TTFT stays bounded.
import type { EndpointView } from '../scheduling/types.js';
import { withInTransit } from './in-transit.js';

/** A request is warm on an endpoint holding at least this share of its prompt. */
export const WARM_SHARE = 0.5;

export function isWarm(cachedShare: number | undefined): boolean {
  return cachedShare !== undefined && cachedShare >= WARM_SHARE;
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
