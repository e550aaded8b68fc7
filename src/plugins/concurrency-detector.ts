// concurrency-detector (GIE, requests mode): saturation from the requests
// this router has in flight (every replica's charges, from the shared state).
//   pool saturation = sum inFlight(e) / (maxConcurrency x candidates), 1 when none;
// as a filter it drops endpoints with inFlight >= maxConcurrency x (1 + headroom),
// unless that would drop all. GIE's token and hybrid modes are not built:
// asking for them is a config error rather than a silent fallback.
import { z } from 'zod';
import type { Candidate, EndpointView } from '../scheduling/types.js';
import { definePlugin } from './plugin.js';

export const concurrencyDetectorParameters = z.strictObject({
  concurrencyMode: z
    .literal('requests', {
      error: 'expected concurrencyMode "requests" (tokens and hybrid are not supported)',
    })
    .default('requests'),
  maxConcurrency: z.number().int().positive('expected maxConcurrency > 0').default(100),
  headroom: z.number().nonnegative('expected a headroom >= 0').default(0),
});

export type ConcurrencyDetectorParameters = z.output<typeof concurrencyDetectorParameters>;

export function poolConcurrency(views: readonly EndpointView[], p: ConcurrencyDetectorParameters): number {
  if (views.length === 0) return 1;
  let inFlight = 0;
  for (const v of views) inFlight += v.inFlight;
  return inFlight / (p.maxConcurrency * views.length);
}

export const concurrencyDetector = definePlugin({
  type: 'concurrency-detector',
  parameters: concurrencyDetectorParameters,
  create: (name, p) => ({
    type: 'concurrency-detector',
    name,
    saturation: (views) => poolConcurrency(views, p),
    filter: (_ctx, candidates: Candidate[]) => {
      const limit = p.maxConcurrency * (1 + p.headroom);
      const kept = candidates.filter((c) => c.kind !== 'endpoint' || c.endpoint.inFlight < limit);
      return kept.length === 0 ? candidates : kept;
    },
  }),
});
