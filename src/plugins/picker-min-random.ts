// picker-min-random: uniformly random among the candidates with the best
// combined score (ties within 1e-9). The product's scorers are costs
// ("lowest wins"); the framework turns them into scores where higher is
// better, so "min cost" is "max score" here. With no scorer every candidate
// ties: a uniform random picker. One target by default, as GIE's pickers and
// the product ("randomly choose one"): gateways such as agentgateway and
// Envoy's ORIGINAL_DST read the destination as one address. A profile that
// asks for maxNumOfEndpoints > 1 gets the rest ordered by score as fallbacks.
import { z } from 'zod';
import { maxScorePick } from '../scheduling/pick.js';
import { definePlugin } from './plugin.js';

export const pickerMinRandom = definePlugin({
  type: 'picker-min-random',
  parameters: z.strictObject({
    maxNumOfEndpoints: z.number().int().min(1).max(64).default(1),
  }),
  create: (name, p) => ({
    type: 'picker-min-random',
    name,
    pick: (ctx, scored) => maxScorePick(ctx, scored, p.maxNumOfEndpoints),
  }),
});
