// Pieces several plugins share: parameter schemas with readable errors, the
// cost -> score conversion, the neutral value of unknown signals, and a
// min-cost choice with a random tie-break. Kept here so each plugin file
// holds only its own formula.
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { SCORE_EPSILON } from '../scheduling/pick.js';
import type { Candidate, CycleContext, EndpointView } from '../scheduling/types.js';
import type { DataNeeds } from './plugin.js';

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

/** `host:port`, with an IPv6 literal in brackets. */
export function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
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

/** Largest known waiting queue among `views`, at least 1 (the formula's `max(1, max waiting)`). */
export function waitingNorm(views: Iterable<EndpointView>): number {
  let max = 1;
  for (const v of views) {
    const q = v.waitingQueueSize;
    if (q !== undefined && q > max) max = q;
  }
  return max;
}

/** Waiting queue normalised by `norm` into [0,1]; unknown -> neutral. */
export function waitingTerm(v: EndpointView, norm: number): number {
  const q = v.waitingQueueSize;
  return q === undefined || Number.isNaN(q) ? NEUTRAL : clamp01(q / norm);
}

/** Cache-indexer hit rate of an endpoint; 0 when the indexer gave no answer. */
export function hitRate(ctx: CycleContext, v: EndpointView): number {
  const h = ctx.data.hitRates?.get(v.endpoint.id);
  return h === undefined || Number.isNaN(h) ? 0 : clamp01(h);
}

/**
 * The item of lowest cost, uniformly at random among ties (within
 * SCORE_EPSILON), in one pass without allocating. `items` must be non-empty.
 */
export function minCostRandom<T>(
  ctx: CycleContext,
  items: readonly T[],
  cost: (item: T) => number,
): { item: T; cost: number } {
  let best = items[0]!;
  let bestCost = cost(best);
  let ties = 1;
  for (let i = 1; i < items.length; i++) {
    const it = items[i]!;
    const c = cost(it);
    if (c < bestCost - SCORE_EPSILON) {
      best = it;
      bestCost = c;
      ties = 1;
    } else if (Math.abs(c - bestCost) <= SCORE_EPSILON) {
      ties++;
      if (ctx.random() * ties < 1) best = it;
    }
  }
  return { item: best, cost: bestCost };
}

/** Every prefill (or decode) pod across the candidate groups, for normalisation. */
export function podsOf(candidates: readonly Candidate[], role: 'prefill' | 'decode'): EndpointView[] {
  const out: EndpointView[] = [];
  for (const c of candidates) if (c.kind === 'group') for (const v of c.group[role]) out.push(v);
  return out;
}

/** A uniformly random element of a non-empty list. */
export function pickUniform<T>(ctx: CycleContext, items: readonly T[]): T {
  return items[Math.floor(ctx.random() * items.length)]!;
}
