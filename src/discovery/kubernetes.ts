// Discovery from a Gateway API Inference Extension InferencePool: watch the
// pool named by --pool-name/--pool-namespace and the Pods its selector
// matches; endpoints are the ready pods, one per target port.
//
// List/watch loops (k8s-listwatch.ts): one per pool API group on the pool
// (field selector metadata.name), one on the pods (label selector = pool
// selector). In auto mode both groups are watched for the whole run, so a
// pool created in either group later, or moved from v1alpha2 to v1 (GIE's
// migration: create the v1 pool, delete the v1alpha2 one), is followed; v1
// wins while both hold the pool. A group whose CRD is not installed (404) is
// listed again after a back-off, so installing it later is seen too. When
// the pool's selector changes the pod loop restarts with the new selector;
// when only the ports change the set is recomputed. Every change reaches
// onChange as the full set, debounced by a few ms and deduplicated.
//
// Read-only, so any number of EPP replicas can run it at once; with Redis
// each replica may publish what it sees, or only a lease holder (docs/kubernetes.md).
import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import type { Endpoint } from '../scheduling/types.js';
import {
  labelSelectorString,
  parsePool,
  poolEndpoints,
  POOL_GROUP_V1,
  POOL_GROUP_V1ALPHA2,
  POOL_VERSIONS,
  type PodLike,
  type PoolGroup,
  type PoolSpec,
} from './k8s-objects.js';
import {
  ListWatch,
  statusCode,
  type BackoffOptions,
  type ListResult,
  type WatchFn,
} from './k8s-listwatch.js';
import type { EndpointSource } from './types.js';

export interface KubernetesSourceOptions {
  poolName: string;
  poolNamespace: string;
  /** `auto` (default): both groups watched; v1 wins when both hold the pool. */
  poolGroup?: PoolGroup | 'auto';
  /** A ready KubeConfig (tests); else one is loaded per `inCluster`/`kubeconfigPath`. */
  kubeConfig?: KubeConfig;
  /** Path of a kubeconfig file (--kubeconfig). */
  kubeconfigPath?: string;
  /** Use the pod's service account (loadFromCluster). */
  inCluster?: boolean;
  /** Quiet time before a change is published (ms, default 20). */
  debounceMs?: number;
  backoff?: BackoffOptions;
  watchTimeoutSeconds?: number;
  idleTimeoutMs?: number;
  /** start() resolves after the first full sync or after this long (ms, default 15000). */
  initialSyncTimeoutMs?: number;
  /** Failures that were recovered from or will be retried. Never thrown. */
  onError?: (err: Error) => void;
  /** Informational events (pool resolved, selector changed, resynced). */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const PLURAL = 'inferencepools';

/**
 * The KubeConfig to use: explicit in-cluster, an explicit file, or
 * client-node's default chain ($KUBECONFIG, ~/.kube/config, in-cluster).
 */
export function loadKubeConfig(opts: { inCluster?: boolean; kubeconfigPath?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  if (opts.inCluster) kc.loadFromCluster();
  else if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error('kubeconfig has no current cluster (set --kubeconfig, KUBECONFIG, or run in a cluster)');
  }
  return kc;
}

export class KubernetesSource implements EndpointSource {
  readonly kind = 'kubernetes' as const;
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly watchFn: WatchFn;
  private onChange: ((endpoints: Endpoint[]) => void) | undefined;

  private poolLoops: ListWatch<unknown>[] = [];
  private podLoop: ListWatch<PodLike> | undefined;
  private pool: PoolSpec | null = null;
  /** Pool API groups watched, in order of preference. */
  private readonly groups: readonly PoolGroup[];
  /** What each group last said: its pool object (null: none), or not served / not yet listed. */
  private readonly byGroup = new Map<PoolGroup, GroupView>();
  /** Group whose pool is in use (or, with no pool anywhere, the first served). */
  private group: PoolGroup | undefined;
  /** Logged the "no group served" error for the current spell. */
  private notServedReported = false;
  private pods = new Map<string, PodLike>();
  private poolSynced = false;
  private podsSynced = false;
  private initialDone = false;
  private resolveInitial: (() => void) | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastKey: string | undefined;
  private stopping = false;

  constructor(private readonly o: KubernetesSourceOptions) {
    if (!o.poolName) throw new Error('KubernetesSource: poolName is required');
    if (!o.poolNamespace) throw new Error('KubernetesSource: poolNamespace is required');
    this.kc = o.kubeConfig ?? loadKubeConfig(o);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    const watcher = new Watch(this.kc);
    this.watchFn = (path, query, onEvent, onDone) => watcher.watch(path, query, onEvent, onDone);
    this.groups =
      o.poolGroup && o.poolGroup !== 'auto' ? [o.poolGroup] : [POOL_GROUP_V1, POOL_GROUP_V1ALPHA2];
    for (const g of this.groups) this.byGroup.set(g, { state: 'unknown' });
  }

  /** True once the pool and its pods have been listed (readiness). */
  get synced(): boolean {
    return this.poolSynced && (this.pool === null || this.podsSynced);
  }

  /** The pool API group in use (after the first list; changes when the pool moves). */
  get poolGroup(): PoolGroup | undefined {
    return this.group;
  }

  async start(onChange: (endpoints: Endpoint[]) => void): Promise<void> {
    this.onChange = onChange;
    const initial = new Promise<void>((resolve) => (this.resolveInitial = resolve));
    this.poolLoops = this.groups.map(
      (group) =>
        new ListWatch<unknown>({
          what: `inferencepool ${this.o.poolNamespace}/${this.o.poolName} (${group}/${POOL_VERSIONS[group]})`,
          list: () => this.listPool(group),
          watch: this.watchFn,
          onList: (items) =>
            this.groupSaw(group, {
              state: 'served',
              pool: items.find((p) => nameOf(p) === this.o.poolName) ?? null,
            }),
          onEvent: (type, obj) => {
            if (nameOf(obj) !== this.o.poolName) return;
            this.groupSaw(group, { state: 'served', pool: type === 'DELETED' ? null : obj });
          },
          onError: (e) => this.loopError(e),
          ...this.loopTiming(),
        }),
    );
    for (const loop of this.poolLoops) loop.start();
    const timeoutMs = this.o.initialSyncTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      initial,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.error(
            new Error(
              `initial sync not complete after ${timeoutMs} ms; continuing, endpoints follow when the API server answers`,
            ),
          );
          this.finishInitial();
          resolve();
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.debounce) clearTimeout(this.debounce);
    await Promise.all([...this.poolLoops.map((l) => l.stop()), this.podLoop?.stop()]);
    this.resolveInitial?.();
  }

  private loopTiming() {
    const t: { backoff?: BackoffOptions; watchTimeoutSeconds?: number; idleTimeoutMs?: number } = {};
    if (this.o.backoff) t.backoff = this.o.backoff;
    if (this.o.watchTimeoutSeconds !== undefined) t.watchTimeoutSeconds = this.o.watchTimeoutSeconds;
    if (this.o.idleTimeoutMs !== undefined) t.idleTimeoutMs = this.o.idleTimeoutMs;
    return t;
  }

  /** Lists the pool by name in one group; 404 (CRD not installed) records the group as not served. */
  private async listPool(group: PoolGroup): Promise<ListResult<unknown>> {
    const version = POOL_VERSIONS[group];
    const fieldSelector = `metadata.name=${this.o.poolName}`;
    let body: { metadata?: { resourceVersion?: string }; items?: unknown[] };
    try {
      body = (await this.custom.listNamespacedCustomObject({
        group,
        version,
        namespace: this.o.poolNamespace,
        plural: PLURAL,
        fieldSelector,
      })) as typeof body;
    } catch (e) {
      if (statusCode(e) === 404) {
        this.groupSaw(group, { state: 'not-served' });
        throw new PoolApiNotServed(`${group}/${version}`);
      }
      throw e;
    }
    return {
      items: body.items ?? [],
      resourceVersion: body.metadata?.resourceVersion ?? '',
      watchPath: `/apis/${group}/${version}/namespaces/${this.o.poolNamespace}/${PLURAL}`,
      watchQuery: { fieldSelector },
    };
  }

  /** A pool loop failed. A group that is not served is expected in auto mode: reported only when none is. */
  private loopError(e: Error): void {
    if (!(e.cause instanceof PoolApiNotServed)) return this.error(e);
    const views = this.groups.map((g) => this.byGroup.get(g)!);
    if (!views.every((v) => v.state === 'not-served')) return;
    if (this.notServedReported) return;
    this.notServedReported = true;
    const names = this.groups.map((g) => `${g}/${POOL_VERSIONS[g]}`).join(', ');
    this.error(
      new Error(`InferencePool API not served (${names}): are the Inference Extension CRDs installed?`),
    );
  }

  /** A group's view of the pool changed: pick the group to follow and apply its pool. */
  private groupSaw(group: PoolGroup, view: GroupView): void {
    if (this.stopping) return;
    const before = this.byGroup.get(group)!;
    this.byGroup.set(group, view);
    if (view.state === 'served') this.notServedReported = false;
    if (before.state !== view.state && view.state !== 'unknown') {
      this.log(view.state === 'served' ? 'inferencepool api served' : 'inferencepool api not served', {
        group,
        version: POOL_VERSIONS[group],
      });
    }
    const views = this.groups.map((g) => [g, this.byGroup.get(g)!] as const);
    const holder = views.find(([, v]) => v.state === 'served' && v.pool !== null);
    // Settled once every group preferred to the holder (all, with no holder)
    // has answered (listed, or 404): a v1 pool is final at once.
    const ahead = holder ? views.slice(0, views.indexOf(holder)) : views;
    const answered = ahead.every(([, v]) => v.state !== 'unknown');
    // A preferred group may still hold the pool: decide nothing yet.
    if (!answered) return;
    const served = views.find(([, v]) => v.state === 'served');
    const next = holder ?? served;
    if (next && next[0] !== this.group) {
      this.log('inferencepool api in use', {
        group: next[0],
        version: POOL_VERSIONS[next[0]],
        pool: this.o.poolName,
        holdsPool: holder !== undefined,
      });
      this.group = next[0];
    }
    const obj = holder ? (holder[1] as { pool: unknown }).pool : null;
    // No group served (CRDs missing): no pool, and not synced (readiness says so).
    this.setPool(obj, served !== undefined);
  }

  private setPool(obj: unknown, synced = true): void {
    if (this.stopping) return;
    let next: PoolSpec | null = null;
    if (obj !== null) {
      try {
        next = parsePool(obj, this.group ?? POOL_GROUP_V1);
      } catch (e) {
        // Keep the last good pool: a bad edit must not empty the candidate set.
        this.error(e as Error);
        this.poolSynced ||= synced;
        this.maybeInitialDone();
        return;
      }
    }
    const prev = this.pool;
    this.pool = next;
    this.poolSynced = synced;
    if (next === null) {
      if (prev) this.log('inferencepool gone; no endpoints', { pool: this.o.poolName });
      void this.stopPodLoop();
      this.pods.clear();
      this.podsSynced = false;
    } else {
      const sel = labelSelectorString(next.selector);
      if (!prev || labelSelectorString(prev.selector) !== sel || !this.podLoop) {
        this.log('inferencepool selector', { selector: sel, targetPorts: next.targetPorts });
        this.restartPodLoop(next);
      } else if (prev.targetPorts.join(',') !== next.targetPorts.join(',')) {
        this.log('inferencepool target ports', { targetPorts: next.targetPorts });
      }
    }
    this.maybeInitialDone();
    this.schedule();
  }

  private restartPodLoop(pool: PoolSpec): void {
    const old = this.podLoop;
    void old?.stop();
    // Hold publishing until the new selector's pods are listed: never a partial set.
    this.podsSynced = false;
    const labelSelector = labelSelectorString(pool.selector);
    const ns = this.o.poolNamespace;
    const loop: ListWatch<PodLike> = new ListWatch<PodLike>({
      what: `pods ${ns} ${labelSelector}`,
      list: async () => {
        const list = await this.core.listNamespacedPod({ namespace: ns, labelSelector });
        return {
          items: list.items as PodLike[],
          resourceVersion: list.metadata?.resourceVersion ?? '',
          watchPath: `/api/v1/namespaces/${ns}/pods`,
          watchQuery: { labelSelector },
        };
      },
      watch: this.watchFn,
      onList: (items) => {
        if (this.podLoop !== loop || this.stopping) return;
        this.pods = new Map(items.map((p) => [p.metadata?.name ?? '', p]));
        this.podsSynced = true;
        this.maybeInitialDone();
        this.schedule();
      },
      onEvent: (type, pod) => {
        if (this.podLoop !== loop || this.stopping) return;
        const name = pod.metadata?.name ?? '';
        if (type === 'DELETED') this.pods.delete(name);
        else this.pods.set(name, pod);
        this.schedule();
      },
      onError: (e) => this.error(e),
      ...this.loopTiming(),
    });
    this.podLoop = loop;
    loop.start();
  }

  private async stopPodLoop(): Promise<void> {
    const loop = this.podLoop;
    this.podLoop = undefined;
    await loop?.stop();
  }

  private maybeInitialDone(): void {
    if (!this.initialDone && this.synced) this.finishInitial();
  }

  private finishInitial(): void {
    if (this.initialDone) return;
    this.initialDone = true;
    this.publish(true);
    this.resolveInitial?.();
  }

  private schedule(): void {
    if (!this.initialDone || this.stopping) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.publish(false);
    }, this.o.debounceMs ?? 20);
  }

  private publish(force: boolean): void {
    // A selector change in progress: the old pods may not match and the new ones are not listed yet.
    if (!force && this.pool !== null && !this.podsSynced) return;
    const endpoints = this.pool && this.podsSynced ? poolEndpoints(this.pods.values(), this.pool) : [];
    const key = JSON.stringify(endpoints);
    if (!force && key === this.lastKey) return;
    this.lastKey = key;
    try {
      this.onChange?.(endpoints);
    } catch (e) {
      this.error(new Error(`endpoint consumer failed: ${(e as Error).message}`));
    }
  }

  private error(e: Error): void {
    this.o.onError?.(e);
  }

  private log(msg: string, fields?: Record<string, unknown>): void {
    this.o.log?.(msg, fields);
  }
}

type GroupView = { state: 'unknown' } | { state: 'not-served' } | { state: 'served'; pool: unknown };

/** A pool API group answered 404: its CRD is not installed (yet). */
class PoolApiNotServed extends Error {
  constructor(groupVersion: string) {
    super(`InferencePool API ${groupVersion} not served`);
  }
}

function nameOf(obj: unknown): string | undefined {
  return (obj as { metadata?: { name?: string } } | null)?.metadata?.name;
}
