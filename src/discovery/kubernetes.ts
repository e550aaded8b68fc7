// Discovery from a Gateway API Inference Extension InferencePool: watch the
// pool named by --pool-name/--pool-namespace and the Pods its selector
// matches; endpoints are the ready pods, one per target port.
//
// Two list/watch loops (k8s-listwatch.ts): one on the pool (field selector
// metadata.name), one on the pods (label selector = pool selector). When
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
  /** `auto` (default): the v1 group first, then the v1alpha2 one. */
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

  private poolLoop: ListWatch<unknown> | undefined;
  private podLoop: ListWatch<PodLike> | undefined;
  private pool: PoolSpec | null = null;
  /** Group of the pool API in use, resolved at each pool list. */
  private group: PoolGroup | undefined;
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
  }

  /** True once the pool and its pods have been listed (readiness). */
  get synced(): boolean {
    return this.poolSynced && (this.pool === null || this.podsSynced);
  }

  /** The pool API group in use (after the first list). */
  get poolGroup(): PoolGroup | undefined {
    return this.group;
  }

  async start(onChange: (endpoints: Endpoint[]) => void): Promise<void> {
    this.onChange = onChange;
    const initial = new Promise<void>((resolve) => (this.resolveInitial = resolve));
    this.poolLoop = new ListWatch<unknown>({
      what: `inferencepool ${this.o.poolNamespace}/${this.o.poolName}`,
      list: () => this.listPool(),
      watch: this.watchFn,
      onList: (items) => this.setPool(items.find((p) => nameOf(p) === this.o.poolName) ?? null, true),
      onEvent: (type, obj) => {
        if (nameOf(obj) !== this.o.poolName) return;
        this.setPool(type === 'DELETED' ? null : obj, false);
      },
      onError: (e) => this.error(e),
      ...this.loopTiming(),
    });
    this.poolLoop.start();
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
    await Promise.all([this.poolLoop?.stop(), this.podLoop?.stop()]);
    this.resolveInitial?.();
  }

  private loopTiming() {
    const t: { backoff?: BackoffOptions; watchTimeoutSeconds?: number; idleTimeoutMs?: number } = {};
    if (this.o.backoff) t.backoff = this.o.backoff;
    if (this.o.watchTimeoutSeconds !== undefined) t.watchTimeoutSeconds = this.o.watchTimeoutSeconds;
    if (this.o.idleTimeoutMs !== undefined) t.idleTimeoutMs = this.o.idleTimeoutMs;
    return t;
  }

  /** Lists the pool by name; in auto mode falls back to v1alpha2 when v1 is not served or has no such pool. */
  private async listPool(): Promise<ListResult<unknown>> {
    const groups: PoolGroup[] =
      this.o.poolGroup && this.o.poolGroup !== 'auto'
        ? [this.o.poolGroup]
        : [POOL_GROUP_V1, POOL_GROUP_V1ALPHA2];
    let firstServed: { group: PoolGroup; result: ListResult<unknown> } | undefined;
    const notServed: string[] = [];
    for (const group of groups) {
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
        // 404: this API group/version is not installed; try the next one.
        if (statusCode(e) === 404) {
          notServed.push(`${group}/${version}`);
          continue;
        }
        throw e;
      }
      const result: ListResult<unknown> = {
        items: body.items ?? [],
        resourceVersion: body.metadata?.resourceVersion ?? '',
        watchPath: `/apis/${group}/${version}/namespaces/${this.o.poolNamespace}/${PLURAL}`,
        watchQuery: { fieldSelector },
      };
      if (result.items.length > 0) return this.useGroup(group, result);
      firstServed ??= { group, result };
    }
    if (firstServed) return this.useGroup(firstServed.group, firstServed.result);
    throw new Error(
      `InferencePool API not served (${notServed.join(', ')}): are the Inference Extension CRDs installed?`,
    );
  }

  private useGroup(group: PoolGroup, result: ListResult<unknown>): ListResult<unknown> {
    if (this.group !== group) this.log('inferencepool api', { group, version: POOL_VERSIONS[group] });
    this.group = group;
    return result;
  }

  private setPool(obj: unknown, fromList: boolean): void {
    if (this.stopping) return;
    let next: PoolSpec | null = null;
    if (obj !== null) {
      try {
        next = parsePool(obj, this.group ?? POOL_GROUP_V1);
      } catch (e) {
        // Keep the last good pool: a bad edit must not empty the candidate set.
        this.error(e as Error);
        if (fromList) this.poolSynced = true;
        this.maybeInitialDone();
        return;
      }
    }
    const prev = this.pool;
    this.pool = next;
    this.poolSynced = true;
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

function nameOf(obj: unknown): string | undefined {
  return (obj as { metadata?: { name?: string } } | null)?.metadata?.name;
}
