// Pieces several plugins share: parameter schemas with readable errors, the
// cost -> score conversion, the neutral value of unknown signals, and the
// pick helpers of src/scheduling/pick.ts. Kept here so each plugin file
// holds only its own formula.
import { z } from 'zod';
import { hostPort } from '../common/net.js';
import type { DataNeeds } from '../scheduling/plugin.js';
import type { Candidate, CycleContext, EndpointView } from '../scheduling/types.js';

// The pick helpers live with the scheduler; plugins import them from here too.
export { minCostRandom, pickUniform, uniformPdChoice } from '../scheduling/pick.js';

/**
 * What an unknown signal (stale or never scraped) is worth in a [0,1] term:
 * the middle of the range, so the endpoint is neither preferred as idle nor
 * shunned as full, and stays eligible.
 */
export const NEUTRAL = 0.5;

/** A non-negative float weight, default 1.0 (the product's default for every weight). */
export function weightParam(def = 1.0) {
  return z
    .number({ error: 'expected a finite number (float weight >= 0)' })
    .nonnegative('expected a weight >= 0')
    .default(def);
}

/** A plain string parameter with a default (label names, role values). */
export function stringParam(def: string) {
  return z.string({ error: 'expected a string' }).min(1, 'expected a non-empty string').default(def);
}

/**
 * The four kvCacheManager* parameters of the product's KV-cache aware scorers.
 * `kvCacheManagerTimeout` is in nanoseconds, as the product documents it.
 */
export const kvCacheManagerParams = {
  kvCacheManagerIP: stringParam('cache-indexer-service'),
  kvCacheManagerPort: z
    .number({ error: 'expected a port number' })
    .int('expected an integer port')
    .min(1, 'expected a port in 1..65535')
    .max(65535, 'expected a port in 1..65535')
    .default(8080),
  kvCacheManagerPath: z
    .string({ error: 'expected a URL path (string)' })
    .startsWith('/', 'expected a URL path starting with "/"')
    .default('/match_sort'),
  kvCacheManagerTimeout: z
    .number({ error: 'expected a timeout in nanoseconds (integer)' })
    .int('expected a timeout in nanoseconds (integer)')
    .positive('expected a timeout > 0 nanoseconds')
    .default(5_000_000_000),
};

export interface KvCacheManagerParams {
  kvCacheManagerIP: string;
  kvCacheManagerPort: number;
  kvCacheManagerPath: string;
  kvCacheManagerTimeout: number;
}

/** The cache-indexer request the director makes before the cycle runs. */
export function indexerNeed(p: KvCacheManagerParams): NonNullable<DataNeeds['indexer']> {
  return {
    url: `http://${hostPort(p.kvCacheManagerIP, p.kvCacheManagerPort)}${p.kvCacheManagerPath}`,
    timeoutMs: p.kvCacheManagerTimeout / 1e6,
  };
}

/** Cost in [0, maxCost] -> score in [0,1], higher is better. */
export function costToScore(cost: number, maxCost: number): number {
  if (!(maxCost > 0)) return 1; // every weight is 0: all candidates are equal
  const s = 1 - cost / maxCost;
  return s < 0 ? 0 : s > 1 ? 1 : s;
}

export function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** KV-cache usage term in [0,1]; unknown -> neutral. */
export function usageTerm(v: EndpointView): number {
  const u = v.kvCacheUsage;
  return u === undefined || Number.isNaN(u) ? NEUTRAL : clamp01(u);
}

/**
 * How a scorer reads the waiting-queue signal.
 * - `fromInFlight`: scraped queues are up to one scrape interval old, so
 *   every pick in between sees the same numbers and herds. The router's own
 *   in-flight count is current: requests it sent that the server does not
 *   yet report as running are waiting (or about to), so the estimate is
 *   `max(waiting, inFlight - running)`. Only valid where a request's
 *   in-flight charge lasts as long as it occupies the endpoint (aggregated
 *   serving; not PD prefill pods, which stay charged while decode runs).
 * - `normFloor`: the normaliser is `max(normFloor, max waiting)`; 1 is the
 *   documented `max(1, max waiting)`.
 */
export interface WaitingSignal {
  fromInFlight: boolean;
  normFloor: number;
}

/** The documented reading: scraped waiting, normalised by max(1, max waiting). */
export const SCRAPED_WAITING: WaitingSignal = { fromInFlight: false, normFloor: 1 };

/** Scraped waiting raised to the router's own estimate, max(waiting, inFlight - running). */
export const IN_FLIGHT_WAITING: WaitingSignal = { fromInFlight: true, normFloor: 1 };

/** Waiting queue of `v` as `ws` reads it; undefined when unknown (stale or never scraped). */
export function waitingOf(v: EndpointView, ws: WaitingSignal): number | undefined {
  const q = v.waitingQueueSize;
  if (q === undefined || Number.isNaN(q)) return undefined;
  if (!ws.fromInFlight) return q;
  const r = v.runningRequests;
  if (r === undefined || Number.isNaN(r)) return q;
  const pending = v.inFlight - r;
  return pending > q ? pending : q;
}

/** Largest known waiting queue among `views`, at least `ws.normFloor` (the formula's `max(1, max waiting)`). */
export function waitingNorm(views: Iterable<EndpointView>, ws: WaitingSignal = SCRAPED_WAITING): number {
  let max = ws.normFloor;
  for (const v of views) {
    const q = waitingOf(v, ws);
    if (q !== undefined && q > max) max = q;
  }
  return max;
}

/** Waiting queue normalised by `norm` into [0,1]; unknown -> neutral. */
export function waitingTerm(v: EndpointView, norm: number, ws: WaitingSignal = SCRAPED_WAITING): number {
  const q = waitingOf(v, ws);
  return q === undefined ? NEUTRAL : clamp01(q / norm);
}

/** Cache-indexer hit rate of an endpoint; 0 when the indexer gave no answer. */
export function hitRate(ctx: CycleContext, v: EndpointView): number {
  const h = ctx.data.hitRates?.get(v.endpoint.id);
  return h === undefined || Number.isNaN(h) ? 0 : clamp01(h);
}

/** Every prefill (or decode) pod across the candidate groups, for normalisation. */
export function podsOf(candidates: readonly Candidate[], role: 'prefill' | 'decode'): EndpointView[] {
  const out: EndpointView[] = [];
  for (const c of candidates) if (c.kind === 'group') for (const v of c.group[role]) out.push(v);
  return out;
}
