// random-picker (GIE): scores are ignored; maxNumOfEndpoints candidates
// drawn uniformly without replacement (a Fisher-Yates shuffle, first N).
import { z } from 'zod';
import { shuffle } from '../scheduling/pick.js';
import type { CycleContext, PickResult, ScoredCandidate } from '../scheduling/types.js';
import { pickUniform } from './common.js';
import { maxNumOfEndpointsParam } from './max-score-picker.js';
import { definePlugin } from './plugin.js';

const TYPE = 'random-picker';

export function randomPick(ctx: CycleContext, scored: readonly ScoredCandidate[], count: number): PickResult {
  if (scored.length === 0) return { targets: [] };
  if (count <= 1) return { targets: [pickUniform(ctx, scored)] };
  return { targets: shuffle(ctx, scored).slice(0, count) };
}

export const randomPicker = definePlugin({
  type: TYPE,
  parameters: z.strictObject({ maxNumOfEndpoints: maxNumOfEndpointsParam }),
  create: (name, p) => ({
    type: TYPE,
    name,
    pick: (ctx, scored) => randomPick(ctx, scored, p.maxNumOfEndpoints),
  }),
});
