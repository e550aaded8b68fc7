// max-score-picker (GIE): the highest combined score wins, ties uniformly at
// random (shuffle, then a stable sort by score, descending); the next best
// follow as fallbacks, maxNumOfEndpoints targets in all (<= 0 means 1, as
// in GIE).
import { z } from 'zod';
import { maxScorePick } from '../scheduling/pick.js';
import { definePlugin } from './plugin.js';

const TYPE = 'max-score-picker';

export const maxNumOfEndpointsParam = z
  .number({ error: 'expected a number of endpoints (integer)' })
  .int('expected a number of endpoints (integer)')
  .default(1)
  .transform((n) => (n <= 0 ? 1 : n));

export const maxScorePicker = definePlugin({
  type: TYPE,
  parameters: z.strictObject({ maxNumOfEndpoints: maxNumOfEndpointsParam }),
  create: (name, p) => ({
    type: TYPE,
    name,
    pick: (ctx, scored) => maxScorePick(ctx, scored, p.maxNumOfEndpoints),
  }),
});
