// The gateway's subset hint (GIE proposal 004): the data plane may restrict
// which endpoints of the pool a request may go to, in the request's
// metadata_context.filter_metadata["envoy.lb.subset_hint"]
// ["x-gateway-destination-endpoint-subset"]. Accepted forms: a list of
// strings, or one comma-separated string (what Envoy's header-to-metadata
// filter produces). Matching is port-aware: "ip:port" matches exactly that
// endpoint, a bare "ip" (or "[v6]") any port on that address.
//   key absent            -> no restriction (whole pool)
//   key present, no entry -> nothing may be picked (503)
import { SUBSET_KEY } from '../common/wire-headers.js';
import type { Endpoint } from '../scheduling/types.js';
import { fromStruct, type Metadata } from './messages.js';

export const SUBSET_NAMESPACE = 'envoy.lb.subset_hint';

export interface SubsetHint {
  /** Exact "address|port" pairs. */
  readonly exact: ReadonlySet<string>;
  /** Addresses allowed on any port. */
  readonly anyPort: ReadonlySet<string>;
}

/** One entry -> [address, port?]; undefined when it is not an address at all. */
function parseEntry(raw: string): [string, number | undefined] | undefined {
  const s = raw.trim();
  if (!s) return undefined;
  if (s.startsWith('[')) {
    // [v6] or [v6]:port
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    if (!m) return undefined;
    return [m[1]!.toLowerCase(), m[2] === undefined ? undefined : Number(m[2])];
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    const [host, port] = s.split(':') as [string, string];
    if (!host || !/^\d+$/.test(port)) return undefined;
    return [host.toLowerCase(), Number(port)];
  }
  // No colon: IPv4 or a name; several: a bare IPv6 address.
  return [s.toLowerCase(), undefined];
}

/**
 * The hint carried by a request's metadata, or undefined when there is none
 * (or it has a shape the protocol does not define, which is ignored like an
 * absent key so a misconfigured filter does not black-hole traffic).
 */
export function subsetHintFrom(meta: Metadata | undefined): SubsetHint | undefined {
  const ns = meta?.filter_metadata?.[SUBSET_NAMESPACE];
  if (!ns) return undefined;
  const obj = fromStruct(ns);
  if (!Object.prototype.hasOwnProperty.call(obj, SUBSET_KEY)) return undefined;
  const v = obj[SUBSET_KEY];
  let entries: string[];
  if (typeof v === 'string') entries = v.split(',');
  else if (Array.isArray(v)) entries = v.filter((x): x is string => typeof x === 'string');
  else return undefined;
  const exact = new Set<string>();
  const anyPort = new Set<string>();
  for (const e of entries) {
    const p = parseEntry(e);
    if (!p) continue;
    if (p[1] === undefined) anyPort.add(p[0]);
    else exact.add(`${p[0]}|${p[1]}`);
  }
  return { exact, anyPort };
}

export function inSubset(hint: SubsetHint, e: Endpoint): boolean {
  const addr = e.address.toLowerCase();
  return hint.anyPort.has(addr) || hint.exact.has(`${addr}|${e.port}`);
}

/** For logs: how many entries the hint holds. */
export function subsetSize(hint: SubsetHint): number {
  return hint.exact.size + hint.anyPort.size;
}
