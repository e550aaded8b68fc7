// picker-pd-kv-cache-aware: the group with the lowest group cost, i.e. the
// highest combined score (ties within 1e-9 at random), with the prefill and
// decode pods that produced that cost (pdChoice, from the PD scorer). One
// target: a PD request has one destination, the group's leader, which
// retries inside its group. Without a PD scorer in the profile every group
// ties and the pods are drawn uniformly inside the chosen group.
import { z } from 'zod';
import { maxScorePick, withPdPods } from '../scheduling/pick.js';
import { definePlugin } from './plugin.js';

const TYPE = 'picker-pd-kv-cache-aware';

export const pickerPdKvCacheAware = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({
    type: TYPE,
    name,
    pick: (ctx, scored) => {
      const best = maxScorePick(ctx, scored, 1).targets[0];
      return { targets: best ? [withPdPods(ctx, best)] : [] };
    },
  }),
});
