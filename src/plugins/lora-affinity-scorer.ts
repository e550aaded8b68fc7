// lora-affinity-scorer (GIE): prefers endpoints that already serve the
// request's target model as a LoRA adapter, then ones that can load it.
// From vllm:lora_requests_info (fresh signals only), per endpoint:
//   1.0  the target is a running adapter;
//   0.8  running + waiting adapters < max_lora (a free adapter slot);
//   0.6  the target is a waiting adapter (being loaded, no slot free);
//   0    otherwise, and when the endpoint reports no LoRA info.
// The order of the checks is GIE's: a free slot beats "already waiting".
// PD groups are scored alike (0): the scorer does not reorder them.
import { z } from 'zod';
import type { EndpointView } from '../scheduling/types.js';
import { definePlugin } from './plugin.js';

export function loraAffinity(v: EndpointView, target: string): number {
  const l = v.lora;
  if (!l) return 0;
  if (l.running.includes(target)) return 1;
  if (l.running.length + l.waiting.length < l.maxLora) return 0.8;
  if (l.waiting.includes(target)) return 0.6;
  return 0;
}

export const loraAffinityScorer = definePlugin({
  type: 'lora-affinity-scorer',
  parameters: z.strictObject({}),
  create: (name) => ({
    type: 'lora-affinity-scorer',
    name,
    score: (ctx, candidates) => {
      const scores = new Float64Array(candidates.length);
      const target = ctx.request.model;
      for (let i = 0; i < candidates.length; i++) {
        const c = candidates[i]!;
        scores[i] = c.kind === 'endpoint' ? loraAffinity(c.endpoint, target) : 0;
      }
      return { scores };
    },
  }),
});
