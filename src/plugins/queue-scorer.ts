// queue-scorer (GIE): min-max normalised waiting queue over the candidates,
//   score(e) = (max - q(e)) / (max - min), all equal => 1.
// An endpoint whose queue is unknown (stale or never scraped) gets 0.5, the
// neutral middle, and stays eligible.
import { z } from 'zod';
import { definePlugin } from './plugin.js';

export const queueScorer = definePlugin({
  type: 'queue-scorer',
  parameters: z.strictObject({}),
  create: (name) => ({
    type: 'queue-scorer',
    name,
    score: (_ctx, candidates) => {
      const n = candidates.length;
      const scores = new Float64Array(n);
      let min = Infinity;
      let max = -Infinity;
      for (const c of candidates) {
        const q = c.kind === 'endpoint' ? c.endpoint.waitingQueueSize : undefined;
        if (q === undefined) continue;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      for (let i = 0; i < n; i++) {
        const c = candidates[i]!;
        const q = c.kind === 'endpoint' ? c.endpoint.waitingQueueSize : undefined;
        scores[i] = q === undefined ? 0.5 : max === min ? 1 : (max - q) / (max - min);
      }
      return { scores };
    },
  }),
});
