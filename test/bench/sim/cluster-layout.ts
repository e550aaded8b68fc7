// Endpoint sets the benchmarks schedule over: plain aggregated servers, or
// PD groups labelled the way filter-by-pd-label expects by default.
import type { Endpoint } from '../../../src/scheduling/types.js';

export const PD_ROLE_LABEL = 'openfuyao.com/pdRole';
export const PD_GROUP_LABEL = 'openfuyao.com/pdGroupID';

export type PdRole = 'leader' | 'prefill' | 'decode';

function endpoint(i: number, labels: Record<string, string>): Endpoint {
  // 10.0.x.y:8000, unique per index.
  const address = `10.0.${(i >> 8) & 255}.${i & 255}`;
  return { id: `${address}:8000`, name: `pod-${i}`, address, port: 8000, labels };
}

export function aggregatedEndpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => endpoint(i + 1, {}));
}

export interface PdLayout {
  groups: number;
  prefillPerGroup: number;
  decodePerGroup: number;
}

export interface PdEndpoints {
  all: Endpoint[];
  role: Map<string, PdRole>;
  group: Map<string, string>;
}

/** PD groups: one leader (the PD proxy, no GPU) plus prefill and decode pods each. */
export function pdEndpoints(layout: PdLayout): PdEndpoints {
  const all: Endpoint[] = [];
  const role = new Map<string, PdRole>();
  const group = new Map<string, string>();
  let i = 1;
  const add = (g: string, r: PdRole) => {
    const e = endpoint(i++, { [PD_ROLE_LABEL]: r, [PD_GROUP_LABEL]: g });
    all.push(e);
    role.set(e.id, r);
    group.set(e.id, g);
  };
  for (let g = 0; g < layout.groups; g++) {
    const gid = `group-${String(g).padStart(3, '0')}`;
    add(gid, 'leader');
    for (let p = 0; p < layout.prefillPerGroup; p++) add(gid, 'prefill');
    for (let d = 0; d < layout.decodePerGroup; d++) add(gid, 'decode');
  }
  return { all, role, group };
}
