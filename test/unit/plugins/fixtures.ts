// Builders for plugin tests: endpoint views, PD pods, cycle contexts and
// plugins built from raw parameters exactly as the config loader does.
import type { AnyPluginFactory, Plugin } from '../../../src/plugins/plugin.js';
import { endpointCandidates } from '../../../src/scheduling/scheduler.js';
import type {
  BlockKeys,
  BucketLoadRecord,
  Candidate,
  CycleContext,
  EndpointView,
  LLMRequest,
} from '../../../src/scheduling/types.js';

export interface ViewOpts {
  waiting?: number;
  running?: number;
  usage?: number;
  inFlight?: number;
  pendingPrefillTokens?: number;
  labels?: Record<string, string>;
  /** Default: 10.0.0.<n> derived from the id. */
  address?: string;
  port?: number;
  /** No signals at all (stale or never scraped). */
  unknown?: boolean;
}

let nextIp = 1;

/** An endpoint view; `id` becomes the endpoint name and, with the address, its `ip:port` id. */
export function view(name: string, o: ViewOpts = {}): EndpointView {
  const address = o.address ?? `10.0.0.${nextIp++}`;
  const port = o.port ?? 8000;
  const id = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  return {
    endpoint: { id, name, address, port, labels: o.labels ?? {} },
    waitingQueueSize: o.unknown ? undefined : (o.waiting ?? 0),
    runningRequests: o.unknown ? undefined : (o.running ?? 0),
    kvCacheUsage: o.unknown ? undefined : (o.usage ?? 0),
    inFlight: o.inFlight ?? 0,
    pendingPrefillTokens: o.pendingPrefillTokens ?? 0,
    signalsAgeMs: o.unknown ? undefined : 10,
  };
}

export const ROLE = 'openfuyao.com/pdRole';
export const GROUP = 'openfuyao.com/pdGroupID';
export const CAPACITY = 'openfuyao.com/capacity';

/** A PD pod: `role` in leader/prefill/decode (or anything else), in group `group`. */
export function pod(name: string, role: string, group: string, o: ViewOpts = {}): EndpointView {
  return view(name, { ...o, labels: { [ROLE]: role, [GROUP]: group, ...o.labels } });
}

/** Leader + prefill + decode pods of one group, in that order. */
export function pdGroup(
  group: string,
  prefill: ViewOpts[] = [{}],
  decode: ViewOpts[] = [{}],
): { leader: EndpointView; prefill: EndpointView[]; decode: EndpointView[]; all: EndpointView[] } {
  const leader = pod(`${group}-leader`, 'leader', group);
  const p = prefill.map((o, i) => pod(`${group}-p${i}`, 'prefill', group, o));
  const d = decode.map((o, i) => pod(`${group}-d${i}`, 'decode', group, o));
  return { leader, prefill: p, decode: d, all: [leader, ...p, ...d] };
}

export function request(o: Partial<LLMRequest> = {}): LLMRequest {
  return {
    requestId: 'req-1',
    model: 'm',
    apiType: 'chat',
    promptText: 'hello',
    promptTokens: 10,
    stream: false,
    headers: {},
    ...o,
  };
}

export interface CtxOpts {
  promptTokens?: number;
  request?: Partial<LLMRequest>;
  hitRates?: Record<string, number> | Map<string, number>;
  bucketLoads?: Map<string, BucketLoadRecord>;
  poolEvent?: number;
  prefixHashes?: BlockKeys;
  prefixMatches?: Map<string, number>;
  prefixBlockTokens?: number;
  random?: () => number;
}

export function ctx(o: CtxOpts = {}): CycleContext {
  const hit =
    o.hitRates instanceof Map ? o.hitRates : o.hitRates ? new Map(Object.entries(o.hitRates)) : undefined;
  return {
    request: request({
      ...o.request,
      ...(o.promptTokens !== undefined ? { promptTokens: o.promptTokens } : {}),
    }),
    data: {
      nowMs: 1_000,
      bucketLoads: o.bucketLoads ?? new Map(),
      poolEvent: o.poolEvent ?? 0,
      hitRates: hit,
      prefixMatches: o.prefixMatches,
      prefixHashes: o.prefixHashes,
      ...(o.prefixBlockTokens !== undefined ? { prefixBlockTokens: o.prefixBlockTokens } : {}),
    },
    random: o.random ?? seqRandom([0]),
  };
}

/** A deterministic `random` cycling through `values` (each in [0,1)). */
export function seqRandom(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

/** A seeded PRNG (mulberry32) for statistical tests. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function endpoints(...views: EndpointView[]): Candidate[] {
  return endpointCandidates(views);
}

/** Builds a plugin from raw parameters through its zod schema, as the config loader does. */
export function build(factory: AnyPluginFactory, params: unknown = {}, name = factory.type): Plugin {
  const parsed = factory.parameters.safeParse(params);
  if (!parsed.success) throw new Error(`bad parameters: ${parsed.error.message}`);
  return factory.create(name, parsed.data);
}

/** Scores as a plain array. */
export function scoresOf(p: Plugin, c: CycleContext, candidates: Candidate[]): number[] {
  return Array.from(p.score!(c, candidates).scores);
}
