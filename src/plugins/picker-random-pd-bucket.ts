// picker-random-pd-bucket: a candidate group uniformly at random, then a
// prefill pod and a decode pod uniformly at random inside it:
//   P(g) = 1/|G|,  P(p | g) = 1/|prefill(g)|,  P(d | g) = 1/|decode(g)|
// Scores are ignored. Plain endpoint candidates (no PD filter) are picked
// uniformly too, so the plugin degrades to a random picker.
import { z } from 'zod';
import { pickUniform, uniformPdChoice } from './common.js';
import { definePlugin } from './plugin.js';

const TYPE = 'picker-random-pd-bucket';

export const pickerRandomPdBucket = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({
    type: TYPE,
    name,
    pick: (ctx, scored) => {
      if (scored.length === 0) return { targets: [] };
      const chosen = pickUniform(ctx, scored);
      const c = chosen.candidate;
      if (c.kind !== 'group') return { targets: [chosen] };
      return { targets: [{ candidate: c, score: chosen.score, pdChoice: uniformPdChoice(ctx, c.group) }] };
    },
  }),
});
