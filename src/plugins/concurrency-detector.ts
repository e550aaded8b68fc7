// concurrency-detector (GIE v1.5): saturation from the load this router has
// put on the endpoints, read from the shared state so every replica's charges
// count. Two modes, as GIE defines them (GIE has no third, "hybrid", mode):
//   requests: load(e) = inFlight(e),             capacity = maxConcurrency
//   tokens:   load(e) = pendingPrefillTokens(e), capacity = maxTokenConcurrency
//   pool saturation = sum load(e) / (capacity x candidates), 1 when none;
// as a filter it drops endpoints with load >= trunc(capacity x (1 + headroom))
// (GIE truncates the limit to an integer), unless that would drop all.
// Our token measure differs from GIE's: GIE charges each request an estimate
// of its input plus 1.5x that as output (2.5 x body bytes / 4) until the
// response ends; we count the prompt tokens an endpoint is expected to
// prefill (cached prefix excluded) until its first token, the one token
// charge the shared state holds. It measures queued prefill work, so decoding
// requests weigh nothing in tokens mode.
import { z } from 'zod';
import type { Candidate, EndpointView } from '../scheduling/types.js';
import { definePlugin } from './plugin.js';

export const concurrencyDetectorParameters = z.strictObject({
  concurrencyMode: z
    .enum(['requests', 'tokens'], { error: 'expected concurrencyMode "requests" or "tokens"' })
    .default('requests'),
  maxConcurrency: z.number().int().positive('expected maxConcurrency > 0').default(100),
  maxTokenConcurrency: z
    .number()
    .int('expected maxTokenConcurrency to be an integer')
    .positive('expected maxTokenConcurrency > 0')
    .default(1_000_000),
  headroom: z.number().nonnegative('expected a headroom >= 0').default(0),
});

export type ConcurrencyDetectorParameters = z.output<typeof concurrencyDetectorParameters>;

/** The load this detector counts on one endpoint, in its mode's unit. */
export function endpointLoad(v: EndpointView, p: ConcurrencyDetectorParameters): number {
  return p.concurrencyMode === 'tokens' ? v.pendingPrefillTokens : v.inFlight;
}

function capacity(p: ConcurrencyDetectorParameters): number {
  return p.concurrencyMode === 'tokens' ? p.maxTokenConcurrency : p.maxConcurrency;
}

export function poolConcurrency(views: readonly EndpointView[], p: ConcurrencyDetectorParameters): number {
  if (views.length === 0) return 1;
  let load = 0;
  for (const v of views) load += endpointLoad(v, p);
  return load / (capacity(p) * views.length);
}

export const concurrencyDetector = definePlugin({
  type: 'concurrency-detector',
  parameters: concurrencyDetectorParameters,
  create: (name, p) => {
    const limit = Math.trunc(capacity(p) * (1 + p.headroom));
    return {
      type: 'concurrency-detector',
      name,
      saturation: (views) => poolConcurrency(views, p),
      filter: (_ctx, candidates: Candidate[]) => {
        const kept = candidates.filter((c) => c.kind !== 'endpoint' || endpointLoad(c.endpoint, p) < limit);
        return kept.length === 0 ? candidates : kept;
      },
    };
  },
});
