// Shared set-up for the discovery tests: a fake API server, a kubeconfig
// pointing at it, and a KubernetesSource whose published sets are recorded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesSource, type KubernetesSourceOptions } from '../../../src/discovery/kubernetes.js';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { sleep } from '../../helpers/wait.js';
import {
  FakeApiServer,
  makePod,
  makePoolV1,
  type FakeApiServerOptions,
  type PodInput,
} from '../../helpers/fake-apiserver.js';

export const NS = 'ai-inference';
export const POOL = 'vllm-qwen3';
export const LABELS = { app: 'vllm-qwen3' };

export interface Harness {
  api: FakeApiServer;
  source: KubernetesSource;
  /** Every set published, in order. */
  sets: Endpoint[][];
  errors: Error[];
  latest(): Endpoint[];
  ids(): string[];
  /** Waits until the latest set satisfies `pred`; returns how long it took (ms). */
  waitFor(pred: (eps: Endpoint[]) => boolean, timeoutMs?: number): Promise<number>;
  pod(p: Omit<PodInput, 'namespace'>, opts?: { notify?: boolean }): void;
  close(): Promise<void>;
}

export async function startHarness(
  opts: {
    api?: FakeApiServerOptions;
    seed?: (api: FakeApiServer) => void;
    source?: Partial<KubernetesSourceOptions>;
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-k8s-'));
  const api = new FakeApiServer(opts.api);
  await api.start();
  if (opts.seed) opts.seed(api);
  else api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [8000] }));
  const sets: Endpoint[][] = [];
  const errors: Error[] = [];
  const source = new KubernetesSource({
    poolName: POOL,
    poolNamespace: NS,
    kubeconfigPath: api.writeKubeconfig(dir, NS),
    debounceMs: 10,
    backoff: { initialMs: 50, maxMs: 400 },
    initialSyncTimeoutMs: 5_000,
    onError: (e) => errors.push(e),
    ...opts.source,
  });
  await source.start((eps) => sets.push(eps));
  const latest = () => sets[sets.length - 1] ?? [];
  const h: Harness = {
    api,
    source,
    sets,
    errors,
    latest,
    ids: () => latest().map((e) => e.id),
    async waitFor(pred, timeoutMs = 1_000) {
      const t0 = Date.now();
      while (!pred(latest())) {
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(
            `condition not met within ${timeoutMs} ms; latest set: ${JSON.stringify(latest().map((e) => e.id))}; errors: ${errors.map((e) => e.message).join(' | ')}`,
          );
        }
        await sleep(10);
      }
      return Date.now() - t0;
    },
    pod(p, o) {
      api.upsertPod(makePod({ ...p, namespace: NS }), o);
    },
    async close() {
      await source.stop();
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
