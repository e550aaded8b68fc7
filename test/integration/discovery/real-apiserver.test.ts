// Discovery against a real kube-apiserver (v1.34, etcd, RBAC) with the
// upstream InferencePool CRDs: the same sequences as the fake-server tests
// (pods added, NotReady, Terminating, deleted; port and selector changes;
// the pool's API group changing at run time; the API server restarted), and
// the EPP process itself running as the chart's ServiceAccount with exactly
// the chart's Role. The fake server (test/helpers/fake-apiserver.ts) stays
// for the faults a real one cannot be made to produce on demand.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesSource } from '../../../src/discovery/kubernetes.js';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { startEpp } from '../../helpers/epp.js';
import { GROUP_V1, GROUP_V1ALPHA2, makePoolV1, makePoolV1alpha2 } from '../../helpers/fake-apiserver.js';
import { createNamespace, startKubeApiServer, type KubeApiServer } from '../../helpers/kube-apiserver.js';
import { render, ROOT, type K8sObject } from '../../charts/helm.js';
import { eventually } from '../../helpers/wait.js';

const LABELS = { app: 'vllm-qwen3' };
let api: KubeApiServer;
let nsCount = 0;

function gieCrds(): Array<Record<string, unknown>> {
  const dir = process.env.GIE_CRD_DIR;
  if (!dir) throw new Error('GIE_CRD_DIR unset: run `source .ci/tools.sh` or `npm test`');
  return [
    'inference.networking.k8s.io_inferencepools.yaml',
    'inference.networking.x-k8s.io_inferencepools.yaml',
  ].map((f) => yaml.load(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>);
}

beforeAll(async () => {
  api = await startKubeApiServer();
  await api.installCrds(gieCrds());
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

async function freshNamespace(): Promise<string> {
  const ns = `disc-${++nsCount}`;
  await createNamespace(api, ns);
  return ns;
}

const poolPath = (ns: string, group: string, name?: string) =>
  `/apis/${group}/${group === GROUP_V1 ? 'v1' : 'v1alpha2'}/namespaces/${ns}/inferencepools${name ? `/${name}` : ''}`;

function strip(obj: Record<string, unknown>): Record<string, unknown> {
  const { status: _status, ...rest } = obj;
  const meta = { ...(rest.metadata as Record<string, unknown>) };
  delete meta.generation;
  return { ...rest, metadata: meta };
}

async function createPoolV1(ns: string, name: string, ports: number[], matchLabels = LABELS) {
  await api.must(
    'POST',
    poolPath(ns, GROUP_V1),
    strip(makePoolV1({ name, namespace: ns, matchLabels, ports })),
  );
}
async function createPoolV1alpha2(ns: string, name: string, port: number) {
  await api.must(
    'POST',
    poolPath(ns, GROUP_V1ALPHA2),
    strip(makePoolV1alpha2({ name, namespace: ns, selector: LABELS, port })),
  );
}

/** A pod as a Deployment makes it, then its status written as the kubelet would. */
async function createPod(
  ns: string,
  name: string,
  ip: string,
  o: { ready?: boolean; labels?: Record<string, string>; finalizer?: boolean } = {},
) {
  await api.must('POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: o.labels ?? LABELS,
      ...(o.finalizer ? { finalizers: ['hermes.test/hold'] } : {}),
    },
    spec: {
      nodeName: 'node-1',
      containers: [
        {
          name: 'vllm',
          image: 'vllm/vllm-openai:latest',
          ports: [
            { name: 'http', containerPort: 8000 },
            { name: 'zmq-pub', containerPort: 5557 },
          ],
        },
      ],
    },
  });
  await setReady(ns, name, ip, o.ready ?? true);
}

async function setReady(ns: string, name: string, ip: string, ready: boolean) {
  const now = new Date().toISOString();
  const s = ready ? 'True' : 'False';
  await api.must(
    'PATCH',
    `/api/v1/namespaces/${ns}/pods/${name}/status`,
    {
      status: {
        phase: 'Running',
        hostIP: '10.0.0.1',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
          { type: 'Ready', status: s, lastTransitionTime: now },
          { type: 'ContainersReady', status: s, lastTransitionTime: now },
        ],
      },
    },
    { contentType: 'application/merge-patch+json' },
  );
}

interface Watched {
  source: KubernetesSource;
  sets: Endpoint[][];
  errors: Error[];
  logs: string[];
  ids(): string[];
  /** Waits for the latest set to satisfy pred; returns the ms it took. */
  until(pred: (ids: string[]) => boolean, what: string, timeoutMs?: number): Promise<number>;
}

async function watch(ns: string, pool: string, token?: string): Promise<Watched> {
  const sets: Endpoint[][] = [];
  const errors: Error[] = [];
  const logs: string[] = [];
  const source = new KubernetesSource({
    poolName: pool,
    poolNamespace: ns,
    kubeconfigPath: api.writeKubeconfig(token, ns),
    debounceMs: 10,
    backoff: { initialMs: 100, maxMs: 1_000 },
    onError: (e) => errors.push(e),
    log: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
  });
  await source.start((eps) => sets.push(eps));
  const ids = () => (sets.at(-1) ?? []).map((e) => e.id).sort();
  return {
    source,
    sets,
    errors,
    logs,
    ids,
    async until(pred, what, timeoutMs = 10_000) {
      const t0 = Date.now();
      await eventually(async () => pred(ids()), timeoutMs, `${what} (latest ${JSON.stringify(ids())})`);
      return Date.now() - t0;
    },
  };
}

describe('KubernetesSource against a real kube-apiserver', () => {
  it('pods added, NotReady, Terminating, deleted; target port and selector changes', async () => {
    const ns = await freshNamespace();
    await createPoolV1(ns, 'pool', [8000]);
    await createPod(ns, 'p0', '10.1.0.1');
    const w = await watch(ns, 'pool');
    try {
      expect(w.source.synced).toBe(true);
      expect(w.ids()).toEqual(['10.1.0.1:8000']);
      const took: Record<string, number> = {};
      await createPod(ns, 'p1', '10.1.0.2');
      took.added = await w.until((i) => i.length === 2, 'p1 added');
      await setReady(ns, 'p1', '10.1.0.2', false);
      took.notReady = await w.until((i) => i.join() === '10.1.0.1:8000', 'p1 NotReady');
      await setReady(ns, 'p1', '10.1.0.2', true);
      await w.until((i) => i.length === 2, 'p1 Ready again');
      // Terminating: a finalizer keeps the pod, with a deletionTimestamp.
      await createPod(ns, 'p2', '10.1.0.3', { finalizer: true });
      await w.until((i) => i.length === 3, 'p2 added');
      await api.must('DELETE', `/api/v1/namespaces/${ns}/pods/p2`);
      took.terminating = await w.until((i) => !i.includes('10.1.0.3:8000'), 'p2 Terminating');
      await api.must(
        'PATCH',
        `/api/v1/namespaces/${ns}/pods/p2`,
        { metadata: { finalizers: null } },
        {
          contentType: 'application/merge-patch+json',
        },
      );
      await api.must('DELETE', `/api/v1/namespaces/${ns}/pods/p1?gracePeriodSeconds=0`);
      took.deleted = await w.until((i) => i.join() === '10.1.0.1:8000', 'p1 deleted');
      // Port change.
      await api.must(
        'PATCH',
        poolPath(ns, GROUP_V1, 'pool'),
        { spec: { targetPorts: [{ number: 8001 }] } },
        { contentType: 'application/merge-patch+json' },
      );
      took.port = await w.until((i) => i.join() === '10.1.0.1:8001', 'port 8001');
      // Selector change: only pods with the new label.
      await createPod(ns, 'q0', '10.1.0.9', { labels: { app: 'other' } });
      await api.must(
        'PATCH',
        poolPath(ns, GROUP_V1, 'pool'),
        { spec: { selector: { matchLabels: { app: 'other' } } } },
        { contentType: 'application/merge-patch+json' },
      );
      took.selector = await w.until((i) => i.join() === '10.1.0.9:8001', 'selector app=other');
      console.info(`real kube-apiserver: changes followed in ${JSON.stringify(took)} ms`);
      expect(w.errors.map((e) => e.message)).toEqual([]);
    } finally {
      await w.source.stop();
    }
  }, 60_000);

  it('auto mode: a v1alpha2 pool created after start is seen', async () => {
    const ns = await freshNamespace();
    await createPod(ns, 'p0', '10.2.0.1');
    const w = await watch(ns, 'pool');
    try {
      expect(w.source.synced).toBe(true);
      expect(w.ids()).toEqual([]);
      await createPoolV1alpha2(ns, 'pool', 8000);
      await w.until((i) => i.join() === '10.2.0.1:8000', 'v1alpha2 pool');
      expect(w.source.poolGroup).toBe(GROUP_V1ALPHA2);
      expect(w.logs.some((l) => l.startsWith('inferencepool api in use') && l.includes(GROUP_V1ALPHA2))).toBe(
        true,
      );
    } finally {
      await w.source.stop();
    }
  }, 30_000);

  it('auto mode: GIE migration (v1 created, v1alpha2 deleted) never empties the set', async () => {
    const ns = await freshNamespace();
    await createPoolV1alpha2(ns, 'pool', 8000);
    await createPod(ns, 'p0', '10.3.0.1');
    const w = await watch(ns, 'pool');
    try {
      expect(w.ids()).toEqual(['10.3.0.1:8000']);
      await createPoolV1(ns, 'pool', [9000]);
      await w.until((i) => i.join() === '10.3.0.1:9000', 'v1 pool wins');
      expect(w.source.poolGroup).toBe(GROUP_V1);
      const from = w.sets.length;
      await api.must('DELETE', poolPath(ns, GROUP_V1ALPHA2, 'pool'));
      await createPod(ns, 'p1', '10.3.0.2');
      await w.until((i) => i.length === 2, 'p1 on the v1 pool');
      expect(w.sets.slice(from).every((s) => s.length > 0)).toBe(true);
      expect(w.errors.map((e) => e.message)).toEqual([]);
    } finally {
      await w.source.stop();
    }
  }, 30_000);

  it('the API server killed and restarted: the set is kept, then changes are followed again', async () => {
    const ns = await freshNamespace();
    await createPoolV1(ns, 'pool', [8000]);
    await createPod(ns, 'p0', '10.4.0.1');
    const w = await watch(ns, 'pool');
    try {
      expect(w.ids()).toEqual(['10.4.0.1:8000']);
      await api.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(w.ids()).toEqual(['10.4.0.1:8000']);
      const t0 = Date.now();
      await api.restart();
      const restartMs = Date.now() - t0;
      await createPod(ns, 'p1', '10.4.0.2');
      const followMs = await w.until((i) => i.length === 2, 'p1 after the restart', 20_000);
      console.info(
        `real kube-apiserver restart: ready in ${restartMs} ms; next change followed ${followMs} ms later`,
      );
      expect(w.errors.length).toBeGreaterThan(0); // the outage was reported
    } finally {
      await w.source.stop();
    }
  }, 120_000);
});

describe("the EPP as the chart's ServiceAccount with exactly the chart's Role", () => {
  it('discovers the pool and its pods; without the Role it is refused', async () => {
    const ns = 'ai-inference';
    await createNamespace(api, ns);
    const objs = render(join(ROOT, 'charts/hermes-router'), { namespace: ns });
    const pick = (kind: string) => objs.find((o) => o.kind === kind)! as K8sObject & Record<string, unknown>;
    const sa = pick('ServiceAccount');
    await api.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, sa);
    const tokenOf = async () =>
      (
        await api.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa.metadata.name}/token`, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        })
      ).status.token as string;
    const token = await tokenOf();
    const pool = pick('InferencePool');
    await api.must('POST', poolPath(ns, GROUP_V1), pool);
    const podLabels = (pool.spec.selector.matchLabels ?? {}) as Record<string, string>;
    const port = pool.spec.targetPorts[0].number as number;
    await createPod(ns, 'vllm-0', '10.5.0.1', { labels: podLabels });

    // Without the Role: every list is forbidden.
    const denied = await api.call('GET', poolPath(ns, GROUP_V1), undefined, { token });
    expect(denied.status).toBe(403);
    await api.must('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, pick('Role'));
    await api.must(
      'POST',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
      pick('RoleBinding'),
    );
    // Exactly enough: nothing outside the Role is allowed.
    for (const path of [
      `/api/v1/namespaces/${ns}/secrets`,
      `/api/v1/namespaces/default/pods`,
      `/api/v1/nodes`,
    ]) {
      expect((await api.call('GET', path, undefined, { token })).status, path).toBe(403);
    }

    const epp = await startEpp({
      config: readFileSync(join(ROOT, 'charts/hermes-router/files/default-plugins.yaml'), 'utf8'),
      args: [
        '--pool-name',
        pool.metadata.name,
        '--pool-namespace',
        ns,
        '--kubeconfig',
        api.writeKubeconfig(token, ns),
        '--grpc-health-port',
        '-1',
        '--log-level',
        'info',
      ],
    });
    try {
      await eventually(
        async () => (await epp.endpointStates()).map((e) => e.id).join() === `10.5.0.1:${port}`,
        10_000,
        'the EPP lists the pod',
      );
      await createPod(ns, 'vllm-1', '10.5.0.2', { labels: podLabels });
      await eventually(async () => (await epp.endpointStates()).length === 2, 10_000, 'the EPP watches pods');
      expect(epp.logs()).not.toMatch(/forbidden/i);
      expect(epp.logs()).toMatch(/inferencepool api in use/);
    } finally {
      await epp.stop();
    }
  }, 90_000);
});
