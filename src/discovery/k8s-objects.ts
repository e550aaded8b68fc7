// Pure conversions from Kubernetes objects (InferencePool, Pod) to what
// discovery needs. No I/O here, so every rule (readiness, ranks, the two
// pool API versions) is testable with plain objects.
import type { Endpoint } from '../scheduling/types.js';
import { hostPort } from '../common/net.js';

export const POOL_GROUP_V1 = 'inference.networking.k8s.io';
export const POOL_GROUP_V1ALPHA2 = 'inference.networking.x-k8s.io';
export type PoolGroup = typeof POOL_GROUP_V1 | typeof POOL_GROUP_V1ALPHA2;

/** API version served for each accepted pool group. */
export const POOL_VERSIONS: Readonly<Record<PoolGroup, string>> = {
  [POOL_GROUP_V1]: 'v1',
  [POOL_GROUP_V1ALPHA2]: 'v1alpha2',
};

/** Limits which target ports of a pod are live ("8000,8001"), as GIE does. */
export const ACTIVE_PORTS_ANNOTATION = 'inference.networking.k8s.io/active-ports';
/** Container port names whose number is taken as the pod's KV-event publisher port. */
const KV_EVENT_PORT_NAMES = new Set(['zmq-pub', 'kv-events']);
const KV_REPLAY_PORT_NAMES = new Set(['zmq-replay']);

/** What discovery keeps of an InferencePool, whichever version it came from. */
export interface PoolSpec {
  name: string;
  namespace: string;
  selector: Readonly<Record<string, string>>;
  targetPorts: readonly number[];
}

/** The subset of a Pod object discovery reads (raw JSON or client-node classes). */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
    resourceVersion?: string;
  };
  spec?: { containers?: { ports?: { name?: string; containerPort?: number }[] }[] };
  status?: { podIP?: string; conditions?: { type?: string; status?: string }[] };
}

export class PoolSpecError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, where: string): Record<string, string> {
  if (!isObj(v)) throw new PoolSpecError(`${where}: expected a map of label names to values`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new PoolSpecError(`${where}.${k}: expected a string label value`);
    out[k] = val;
  }
  return out;
}

function portNumber(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new PoolSpecError(`${where}: expected a port number 1..65535, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Reads the selector and target ports of an InferencePool.
 * v1: spec.selector.matchLabels + spec.targetPorts[].number;
 * v1alpha2: spec.selector (flat map) + spec.targetPortNumber.
 * Throws PoolSpecError naming the bad field.
 */
export function parsePool(obj: unknown, group: PoolGroup): PoolSpec {
  if (!isObj(obj)) throw new PoolSpecError('InferencePool: expected an object');
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
  const spec = obj.spec;
  if (!isObj(spec)) throw new PoolSpecError(`InferencePool ${name}: spec: expected an object`);
  let selector: Record<string, string>;
  let targetPorts: number[];
  if (group === POOL_GROUP_V1) {
    const sel = spec.selector;
    if (!isObj(sel))
      throw new PoolSpecError(`InferencePool ${name}: spec.selector: expected an object with matchLabels`);
    selector = stringMap(sel.matchLabels, `InferencePool ${name}: spec.selector.matchLabels`);
    if (!Array.isArray(spec.targetPorts) || spec.targetPorts.length === 0) {
      throw new PoolSpecError(`InferencePool ${name}: spec.targetPorts: expected 1..8 ports`);
    }
    targetPorts = spec.targetPorts.map((p, i) =>
      portNumber(isObj(p) ? p.number : undefined, `InferencePool ${name}: spec.targetPorts[${i}].number`),
    );
  } else {
    selector = stringMap(spec.selector, `InferencePool ${name}: spec.selector`);
    targetPorts = [portNumber(spec.targetPortNumber, `InferencePool ${name}: spec.targetPortNumber`)];
  }
  if (Object.keys(selector).length === 0) {
    // An empty selector would select every pod of the namespace.
    throw new PoolSpecError(`InferencePool ${name}: selector: expected at least one label`);
  }
  return { name, namespace, selector, targetPorts: [...new Set(targetPorts)] };
}

/** `k1=v1,k2=v2` for the labelSelector query parameter (keys sorted: stable). */
export function labelSelectorString(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

export function labelsMatch(
  labels: Readonly<Record<string, string>> | undefined,
  selector: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

/** GIE's readiness rule: no deletionTimestamp, condition Ready=True, and an IP. */
export function podIsReady(pod: PodLike): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (!pod.status?.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function activePorts(pod: PodLike, targetPorts: readonly number[]): number[] {
  const raw = pod.metadata?.annotations?.[ACTIVE_PORTS_ANNOTATION];
  if (raw === undefined || raw.trim() === '') return [...targetPorts];
  const allowed = new Set(
    raw
      .split(',')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n)),
  );
  return targetPorts.filter((p) => allowed.has(p));
}

function kvEventsPort(pod: PodLike, names = KV_EVENT_PORT_NAMES): number | undefined {
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name && names.has(p.name) && typeof p.containerPort === 'number') return p.containerPort;
    }
  }
  return undefined;
}

/**
 * One endpoint per (ready pod, target port): id `ip:port`, name
 * `<pod>-rank-<i>` when the pool has several ports (data-parallel ranks),
 * else the pod name; the pod's labels come along (PD role, group id).
 */
export function podEndpoints(pod: PodLike, pool: PoolSpec): Endpoint[] {
  if (!podIsReady(pod) || !labelsMatch(pod.metadata?.labels, pool.selector)) return [];
  const address = pod.status!.podIP!;
  const podName = pod.metadata?.name ?? address;
  const labels = { ...(pod.metadata?.labels ?? {}) };
  const kvPort = kvEventsPort(pod);
  const replayPort = kvEventsPort(pod, KV_REPLAY_PORT_NAMES);
  const ports = activePorts(pod, pool.targetPorts);
  return ports.map((port) => {
    const rank = pool.targetPorts.indexOf(port);
    const ep: Endpoint = {
      id: hostPort(address, port),
      name: pool.targetPorts.length > 1 ? `${podName}-rank-${rank}` : podName,
      address,
      port,
      labels,
    };
    if (kvPort !== undefined) ep.kvEventsPort = kvPort;
    if (replayPort !== undefined) ep.kvEventsReplayPort = replayPort;
    return ep;
  });
}

/** The full endpoint set, sorted by id so equal sets compare equal. */
export function poolEndpoints(pods: Iterable<PodLike>, pool: PoolSpec): Endpoint[] {
  const byId = new Map<string, Endpoint>();
  for (const pod of pods) for (const ep of podEndpoints(pod, pool)) byId.set(ep.id, ep);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
