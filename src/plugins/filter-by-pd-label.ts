// filter-by-pd-label: endpoints -> PD group candidates.
//   keep pod p  iff  labels[pdLabelName] in {leader, prefill, decode}
//                and labels[pdGroupLabelName] is non-empty
//   group g     = the kept pods sharing one group id
//   keep g      iff  g has >= 1 leader, >= 1 prefill and >= 1 decode pod
// Registered endpoints are the ready ones, so "ready" is given. With several
// leaders in a group the one with the lowest endpoint id leads, so every EPP
// replica sends the group's traffic to the same proxy. Groups come out
// sorted by id (deterministic order for logs and tie-breaks). Candidates that
// already are groups pass through unchanged.
import { z } from 'zod';
import type { Candidate, EndpointView } from '../scheduling/types.js';
import { stringParam } from './common.js';
import { definePlugin } from './plugin.js';

const TYPE = 'filter-by-pd-label';

interface Forming {
  leader: EndpointView | undefined;
  prefill: EndpointView[];
  decode: EndpointView[];
}

export const filterByPdLabel = definePlugin({
  type: TYPE,
  parameters: z
    .strictObject({
      pdLabelName: stringParam('openfuyao.com/pdRole'),
      pdGroupLabelName: stringParam('openfuyao.com/pdGroupID'),
      prefillValue: stringParam('prefill'),
      decodeValue: stringParam('decode'),
      leaderValue: stringParam('leader'),
    })
    .refine((p) => new Set([p.prefillValue, p.decodeValue, p.leaderValue]).size === 3, {
      message: 'expected prefillValue, decodeValue and leaderValue to be three different role values',
      path: ['leaderValue'],
    }),
  create: (name, p) => ({
    type: TYPE,
    name,
    filter: (_ctx, candidates) => {
      const groups = new Map<string, Forming>();
      const out: Candidate[] = [];
      for (const c of candidates) {
        if (c.kind === 'group') {
          out.push(c);
          continue;
        }
        const v = c.endpoint;
        const labels = v.endpoint.labels;
        const gid = labels[p.pdGroupLabelName];
        if (!gid) continue;
        const role = labels[p.pdLabelName];
        if (role !== p.leaderValue && role !== p.prefillValue && role !== p.decodeValue) continue;
        let g = groups.get(gid);
        if (!g) groups.set(gid, (g = { leader: undefined, prefill: [], decode: [] }));
        if (role === p.leaderValue) {
          if (!g.leader || v.endpoint.id < g.leader.endpoint.id) g.leader = v;
        } else if (role === p.prefillValue) g.prefill.push(v);
        else g.decode.push(v);
      }
      const ids = [...groups.keys()].sort();
      for (const id of ids) {
        const g = groups.get(id)!;
        if (!g.leader || g.prefill.length === 0 || g.decode.length === 0) continue;
        out.push({
          kind: 'group',
          id,
          group: { id, leader: g.leader, prefill: g.prefill, decode: g.decode },
        });
      }
      return out;
    },
  }),
});
