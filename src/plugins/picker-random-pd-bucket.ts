// picker-random-pd-bucket: a candidate group uniformly at random, then a
// prefill pod and a decode pod uniformly at random inside it:
//   P(g) = 1/|G|,  P(p | g) = 1/|prefill(g)|,  P(d | g) = 1/|decode(g)|
// Scores are ignored. Plain endpoint candidates (no PD filter) are picked
// uniformly too, so the plugin degrades to a random picker.
import { z } from 'zod';
import { pickUniform, withPdPods } from '../scheduling/pick.js';
import { definePlugin } from './plugin.js';

const TYPE = 'picker-random-pd-bucket';

export const pickerRandomPdBucket = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({
    type: TYPE,
    name,
    // Scores (and any scorer's pods) are ignored: the pods are drawn here.
    pick: (ctx, scored) =>
      scored.length === 0
        ? { targets: [] }
        : { targets: [withPdPods(ctx, { ...pickUniform(ctx, scored), pdChoice: undefined })] },
  }),
});
