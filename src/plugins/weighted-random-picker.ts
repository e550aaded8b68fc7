// weighted-random-picker (GIE): draws candidates with probability
// proportional to their combined score, without replacement, by weighted
// reservoir sampling (A-Res, Efraimidis-Spirakis):
//   key(c) = U^(1 / score(c)),  U uniform in [0,1);  score <= 0 => key 0
// and the maxNumOfEndpoints largest keys win, in key order. When no
// candidate has a positive score it is the random-picker.
import { z } from 'zod';
import type { ScoredCandidate } from '../scheduling/types.js';
import { maxNumOfEndpointsParam } from './max-score-picker.js';
import { definePlugin } from './plugin.js';
import { randomPick } from './random-picker.js';

const TYPE = 'weighted-random-picker';

export const weightedRandomPicker = definePlugin({
  type: TYPE,
  parameters: z.strictObject({ maxNumOfEndpoints: maxNumOfEndpointsParam }),
  create: (name, p) => ({
    type: TYPE,
    name,
    pick: (ctx, scored) => {
      const n = scored.length;
      let positive = false;
      for (const s of scored) if (s.score > 0) positive = true;
      if (!positive) return randomPick(ctx, scored, p.maxNumOfEndpoints);
      const keyed: Array<{ s: ScoredCandidate; key: number }> = new Array(n);
      for (let i = 0; i < n; i++) {
        const s = scored[i]!;
        keyed[i] = { s, key: s.score > 0 ? Math.pow(ctx.random(), 1 / s.score) : 0 };
      }
      keyed.sort((a, b) => b.key - a.key);
      const count = Math.min(p.maxNumOfEndpoints, n);
      const targets: ScoredCandidate[] = new Array(count);
      for (let i = 0; i < count; i++) targets[i] = keyed[i]!.s;
      return { targets };
    },
  }),
});
