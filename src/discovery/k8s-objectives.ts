// InferenceObjectives and InferenceModelRewrites from Kubernetes
// (inference.networking.x-k8s.io/v1alpha2, in the pool's namespace), watched
// with the same list/watch loop as the pool and its pods. Only objects whose
// poolRef is our pool count (GIE's reconciler). Both CRDs are optional, as in
// GIE: a 404 means "none", listed again after the back-off, so installing
// the CRD later is seen. An invalid object is reported and left out; it
// never takes the others down.
import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/errors.js';
import {
  OBJECTIVE_API_VERSION,
  ObjectiveTable,
  parseObject,
  refersToPool,
  type InferenceModelRewrite,
  type InferenceObjective,
} from '../flow/objectives.js';
import type { ObjectivesSource } from '../flow/objectives-file.js';
import {
  ListWatch,
  statusCode,
  type BackoffOptions,
  type ListResult,
  type WatchFn,
} from './k8s-listwatch.js';
import { loadKubeConfig } from './kubernetes.js';
import { POOL_GROUP_V1, POOL_GROUP_V1ALPHA2 } from './k8s-objects.js';

const [GROUP, VERSION] = OBJECTIVE_API_VERSION.split('/') as [string, string];
const PLURALS = {
  InferenceObjective: 'inferenceobjectives',
  InferenceModelRewrite: 'inferencemodelrewrites',
};
type Kind = keyof typeof PLURALS;

export interface KubernetesObjectivesOptions {
  poolName: string;
  poolNamespace: string;
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  debounceMs?: number;
  backoff?: BackoffOptions;
  /** start() resolves after both first lists or after this long (ms, default 5000). */
  initialSyncTimeoutMs?: number;
  onError?: (err: Error) => void;
}

function nameOf(obj: unknown): string {
  return ((obj as { metadata?: { name?: unknown } })?.metadata?.name as string) ?? '';
}

export class KubernetesObjectivesSource implements ObjectivesSource {
  private readonly custom: CustomObjectsApi;
  private readonly watchFn: WatchFn;
  private readonly loops: ListWatch<unknown>[] = [];
  private readonly objects: Record<Kind, Map<string, unknown>> = {
    InferenceObjective: new Map(),
    InferenceModelRewrite: new Map(),
  };
  private readonly listed = new Set<Kind>();
  private onChange: ((t: ObjectiveTable) => void) | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private resolveInitial: (() => void) | undefined;
  private lastKey = '';
  private stopping = false;

  constructor(private readonly o: KubernetesObjectivesOptions) {
    const kc = o.kubeConfig ?? loadKubeConfig(o);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const watcher = new Watch(kc);
    this.watchFn = (path, query, onEvent, onDone) => watcher.watch(path, query, onEvent, onDone);
  }

  async start(onChange: (t: ObjectiveTable) => void): Promise<void> {
    this.onChange = onChange;
    const initial = new Promise<void>((resolve) => (this.resolveInitial = resolve));
    for (const kind of Object.keys(PLURALS) as Kind[]) {
      const loop = new ListWatch<unknown>({
        what: `${PLURALS[kind]} in ${this.o.poolNamespace}`,
        list: () => this.list(kind),
        watch: this.watchFn,
        onList: (items) => {
          const m = this.objects[kind];
          m.clear();
          for (const it of items) m.set(nameOf(it), it);
          this.listed.add(kind);
          this.changed();
        },
        onEvent: (type, obj) => {
          if (type === 'DELETED') this.objects[kind].delete(nameOf(obj));
          else this.objects[kind].set(nameOf(obj), obj);
          this.changed();
        },
        onError: (e) => {
          // A CRD that is not installed is "no objects", not an error worth a warning each back-off.
          if ((e.cause as { notServed?: boolean } | undefined)?.notServed) return;
          this.o.onError?.(e);
        },
        ...(this.o.backoff ? { backoff: this.o.backoff } : {}),
      });
      this.loops.push(loop);
      loop.start();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      initial,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.initialSyncTimeoutMs ?? 5_000))),
    ]);
    clearTimeout(timer);
    // Whatever was seen by then is in force (possibly nothing: priority 0 for all).
    this.publish();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.debounce) clearTimeout(this.debounce);
    await Promise.all(this.loops.map((l) => l.stop()));
    this.resolveInitial?.();
  }

  private async list(kind: Kind): Promise<ListResult<unknown>> {
    const plural = PLURALS[kind];
    let body: { metadata?: { resourceVersion?: string }; items?: unknown[] };
    try {
      body = (await this.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.o.poolNamespace,
        plural,
      })) as typeof body;
    } catch (e) {
      if (statusCode(e) === 404) {
        // Not installed: no objects of this kind until it is.
        this.objects[kind].clear();
        this.listed.add(kind);
        this.changed();
        throw Object.assign(new Error(`${GROUP}/${VERSION} ${plural} not served`), { notServed: true });
      }
      throw e;
    }
    return {
      items: body.items ?? [],
      resourceVersion: body.metadata?.resourceVersion ?? '',
      watchPath: `/apis/${GROUP}/${VERSION}/namespaces/${this.o.poolNamespace}/${plural}`,
    };
  }

  private changed(): void {
    if (this.stopping) return;
    if (this.listed.size === Object.keys(PLURALS).length && this.resolveInitial) {
      const r = this.resolveInitial;
      this.resolveInitial = undefined;
      r();
      return; // start() publishes
    }
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.publish(), this.o.debounceMs ?? 20);
  }

  private publish(): void {
    if (this.stopping || !this.onChange) return;
    // Discovery follows the pool in either API group, so a poolRef may name either.
    const pool = { name: this.o.poolName, groups: [POOL_GROUP_V1, POOL_GROUP_V1ALPHA2] };
    const objectives: InferenceObjective[] = [];
    const rewrites: InferenceModelRewrite[] = [];
    for (const kind of Object.keys(PLURALS) as Kind[]) {
      for (const [name, raw] of this.objects[kind]) {
        try {
          const parsed = parseObject(raw, `${PLURALS[kind]}/${name}`, '');
          const o = 'objective' in parsed ? parsed.objective : parsed.rewrite;
          if (!refersToPool(o.spec.poolRef, pool)) continue;
          if ('objective' in parsed) objectives.push(parsed.objective);
          else rewrites.push(parsed.rewrite);
        } catch (e) {
          if (e instanceof ConfigError) this.o.onError?.(new Error(`ignored invalid ${e.message}`));
          else throw e;
        }
      }
    }
    const key = JSON.stringify([objectives, rewrites]);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.onChange(new ObjectiveTable(objectives, rewrites));
  }
}
