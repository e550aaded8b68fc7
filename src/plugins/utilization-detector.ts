// utilization-detector (GIE): saturation from scraped model-server signals.
//   endpoint score s(e) = max(queue(e) / queueDepthThreshold, kv(e) / kvCacheUtilThreshold),
//   s(e) = 1 when its signals are missing or older than metricsStalenessThreshold;
//   pool saturation = mean of s(e) over the candidates, 1 when there are none.
// As a filter it drops endpoints with stale signals and those at or above
// threshold x (1 + headroom) on either signal, unless that would drop all.
import { z } from 'zod';
import { parseDurationMs } from '../common/duration.js';
import type { Candidate, EndpointView } from '../scheduling/types.js';
import { definePlugin } from './plugin.js';

const durationParam = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    // A bare number is milliseconds; a string is a duration such as "200ms".
    return typeof v === 'number' ? v : parseDurationMs(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as "200ms": ${(e as Error).message}` });
    return z.NEVER;
  }
});

export const utilizationDetectorParameters = z.strictObject({
  queueDepthThreshold: z.number().int().positive('expected a queue depth > 0').default(5),
  kvCacheUtilThreshold: z
    .number()
    .gt(0, 'expected a KV-cache utilisation in (0, 1]')
    .max(1, 'expected a KV-cache utilisation in (0, 1]')
    .default(0.8),
  metricsStalenessThreshold: durationParam.pipe(z.number().positive('expected a duration > 0')).default(200),
  headroom: z.number().nonnegative('expected a headroom >= 0').default(0),
});

export type UtilizationDetectorParameters = z.output<typeof utilizationDetectorParameters>;

function fresh(v: EndpointView, stalenessMs: number): boolean {
  return v.signalsAgeMs !== undefined && v.signalsAgeMs <= stalenessMs;
}

export function endpointUtilization(v: EndpointView, p: UtilizationDetectorParameters): number {
  if (!fresh(v, p.metricsStalenessThreshold)) return 1;
  if (v.waitingQueueSize === undefined || v.kvCacheUsage === undefined) return 1;
  return Math.max(v.waitingQueueSize / p.queueDepthThreshold, v.kvCacheUsage / p.kvCacheUtilThreshold);
}

export function poolUtilization(views: readonly EndpointView[], p: UtilizationDetectorParameters): number {
  if (views.length === 0) return 1;
  let sum = 0;
  for (const v of views) sum += endpointUtilization(v, p);
  return sum / views.length;
}

function admissible(v: EndpointView, p: UtilizationDetectorParameters): boolean {
  if (!fresh(v, p.metricsStalenessThreshold)) return false;
  const q = v.waitingQueueSize;
  const kv = v.kvCacheUsage;
  if (q !== undefined && q >= p.queueDepthThreshold * (1 + p.headroom)) return false;
  if (kv !== undefined && kv >= p.kvCacheUtilThreshold * (1 + p.headroom)) return false;
  return true;
}

export const utilizationDetector = definePlugin({
  type: 'utilization-detector',
  parameters: utilizationDetectorParameters,
  create: (name, p) => ({
    type: 'utilization-detector',
    name,
    saturation: (views) => poolUtilization(views, p),
    filter: (_ctx, candidates: Candidate[]) => {
      // PD groups are judged by their own plugins; only single endpoints are filtered.
      const kept = candidates.filter((c) => c.kind !== 'endpoint' || admissible(c.endpoint, p));
      return kept.length === 0 ? candidates : kept;
    },
  }),
});
