// kv-cache-utilization-scorer (GIE): the emptier the KV cache, the better.
//   score(e) = 1 - kvCacheUsage(e)          (usage is a fraction 0..1)
// Unknown usage (stale or never scraped) scores 0.5, the neutral middle.
// PD group candidates get 0.5 too: their pods are scored by the PD scorers.
import { z } from 'zod';
import { NEUTRAL, usageTerm } from './common.js';
import { definePlugin } from './plugin.js';

const TYPE = 'kv-cache-utilization-scorer';

export const kvCacheUtilizationScorer = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({
    type: TYPE,
    name,
    score: (_ctx, candidates) => {
      const n = candidates.length;
      const scores = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const c = candidates[i]!;
        // usageTerm gives unknown the neutral 0.5, and 1 - 0.5 = 0.5.
        scores[i] = c.kind === 'endpoint' ? 1 - usageTerm(c.endpoint) : NEUTRAL;
      }
      return { scores };
    },
  }),
});
