// pd-header-handler: for a PD result, the destination is the group's leader
// (set by the scheduler) and the leader learns the chosen pods from
//   x-openfuyao-prefill-pod-address-port: <prefill ip>:<port>
//   x-openfuyao-decode-pod-address-port:  <decode ip>:<port>
// (IPv6 literals in brackets). These values replace any client-sent headers
// of the same names: a client must never pick backends. An aggregated
// result adds no header.
import { z } from 'zod';
import { hostPort } from '../common/net.js';
import { DECODE_HEADER, PREFILL_HEADER } from '../common/wire-headers.js';
import { definePlugin } from './plugin.js';

const TYPE = 'pd-header-handler';

export const pdHeaderHandler = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({
    type: TYPE,
    name,
    headers: (_ctx, result): Record<string, string> => {
      const pd = result.pd;
      if (!pd) return {};
      const p = pd.prefill.endpoint;
      const d = pd.decode.endpoint;
      return { [PREFILL_HEADER]: hostPort(p.address, p.port), [DECODE_HEADER]: hostPort(d.address, d.port) };
    },
  }),
});
