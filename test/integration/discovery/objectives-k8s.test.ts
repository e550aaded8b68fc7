// InferenceObjectives from a real kube-apiserver (v1.34, RBAC) with the
// upstream v1alpha2 CRDs: the watch follows creates, priority changes and
// deletes, keeps only objects whose poolRef is our pool, and treats a CRD that
// is not installed as "no objectives". Then the EPP itself, as the chart's
// ServiceAccount with exactly the chart's Role, sheds a sheddable request
// (its pod cannot be scraped: unknown signals count as saturated) and routes
// it once its objective's priority is raised.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObjectivesSource } from '../../../src/discovery/k8s-objectives.js';
import type { ObjectiveTable } from '../../../src/flow/objectives.js';
import { startEpp } from '../../helpers/epp.js';
import { GROUP_V1 } from '../../helpers/fake-apiserver.js';
import { createNamespace, startKubeApiServer, type KubeApiServer } from '../../helpers/kube-apiserver.js';
import { render, ROOT, type K8sObject } from '../../charts/helm.js';
import { eventually } from '../../helpers/wait.js';

const X = 'inference.networking.x-k8s.io';
let api: KubeApiServer;

function crds(files: string[]): Array<Record<string, unknown>> {
  const dir = process.env.GIE_CRD_DIR;
  if (!dir) throw new Error('GIE_CRD_DIR unset: run `source .ci/tools.sh` or `npm test`');
  return files.map((f) => yaml.load(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>);
}

const objPath = (ns: string, name?: string) =>
  `/apis/${X}/v1alpha2/namespaces/${ns}/inferenceobjectives${name ? `/${name}` : ''}`;

const objective = (name: string, pool: string, priority?: number) => ({
  apiVersion: `${X}/v1alpha2`,
  kind: 'InferenceObjective',
  metadata: { name },
  spec: { ...(priority === undefined ? {} : { priority }), poolRef: { name: pool } },
});

beforeAll(async () => {
  api = await startKubeApiServer();
  await api.installCrds(crds(['inference.networking.k8s.io_inferencepools.yaml']));
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

describe('KubernetesObjectivesSource', () => {
  it('no CRD installed: no objectives, no error; then the watch follows create, change, delete and poolRef', async () => {
    const ns = 'obj-1';
    await createNamespace(api, ns);
    const tables: ObjectiveTable[] = [];
    const errors: Error[] = [];
    const source = new KubernetesObjectivesSource({
      poolName: 'pool-a',
      poolNamespace: ns,
      kubeconfigPath: api.writeKubeconfig(undefined, ns),
      debounceMs: 10,
      backoff: { initialMs: 100, maxMs: 500 },
      onError: (e) => errors.push(e),
    });
    await source.start((t) => tables.push(t));
    try {
      expect(tables.at(-1)?.objectives).toEqual([]);
      expect(errors).toEqual([]);
      // Installing the CRDs later is seen (listed again after the back-off).
      await api.installCrds(crds([`${X}_inferenceobjectives.yaml`, `${X}_inferencemodelrewrites.yaml`]));
      await api.must('POST', objPath(ns), objective('batch', 'pool-a', -1));
      await api.must('POST', objPath(ns), objective('other', 'pool-b', -1));
      await api.must('POST', objPath(ns), objective('plain', 'pool-a'));
      await eventually(() => tables.at(-1)?.priorityOf('batch') === -1, 10_000, 'objective listed');
      await eventually(() => tables.at(-1)?.has('plain') === true, 10_000, 'second objective');
      expect(tables.at(-1)?.has('other')).toBe(false);
      expect(tables.at(-1)?.priorityOf('plain')).toBe(0);
      await api.must(
        'PATCH',
        objPath(ns, 'batch'),
        { spec: { priority: 4 } },
        { contentType: 'application/merge-patch+json' },
      );
      await eventually(() => tables.at(-1)?.priorityOf('batch') === 4, 10_000, 'priority change watched');
      await api.must('DELETE', objPath(ns, 'batch'));
      await eventually(() => tables.at(-1)?.has('batch') === false, 10_000, 'delete watched');
      // While a CRD is being established the API server may answer 429 ("storage is
      // (re)initializing"): reported list failures, retried, never a crash or a lost object.
      for (const e of errors) expect(e.message).toMatch(/^list infer/);
    } finally {
      await source.stop();
    }
  }, 60_000);
});

describe("the EPP as the chart's ServiceAccount with the chart's Role", () => {
  it('reads objectives from Kubernetes: sheddable shed while saturated, routed once its priority is raised', async () => {
    const ns = 'obj-epp';
    await createNamespace(api, ns);
    await api.installCrds(crds([`${X}_inferenceobjectives.yaml`, `${X}_inferencemodelrewrites.yaml`]));
    const objs = render(join(ROOT, 'charts/hermes-router'), { namespace: ns });
    const pick = (kind: string) => objs.find((o) => o.kind === kind)! as K8sObject & Record<string, unknown>;
    const sa = pick('ServiceAccount');
    await api.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, sa);
    await api.must('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, pick('Role'));
    await api.must(
      'POST',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
      pick('RoleBinding'),
    );
    const token = (
      await api.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa.metadata.name}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      })
    ).status.token as string;
    const pool = pick('InferencePool');
    await api.must('POST', `/apis/${GROUP_V1}/v1/namespaces/${ns}/inferencepools`, pool);
    const labels = (pool.spec.selector.matchLabels ?? {}) as Record<string, string>;
    await api.must('POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'vllm-0', labels },
      spec: { nodeName: 'node-1', containers: [{ name: 'vllm', image: 'vllm/vllm-openai:latest' }] },
    });
    const now = new Date().toISOString();
    await api.must(
      'PATCH',
      `/api/v1/namespaces/${ns}/pods/vllm-0/status`,
      {
        status: {
          phase: 'Running',
          podIP: '10.6.0.1',
          podIPs: [{ ip: '10.6.0.1' }],
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        },
      },
      { contentType: 'application/merge-patch+json' },
    );
    await api.must('POST', objPath(ns), objective('batch', pool.metadata.name, -1));

    const epp = await startEpp({
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
    const send = async (objectiveName: string) => {
      const ex = epp.client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
      const v = await ex.sendRequest({
        headers: [
          [':method', 'POST'],
          [':path', '/v1/completions'],
          ['x-gateway-inference-objective', objectiveName],
        ],
        body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' })),
      });
      if (v.kind === 'continue') ex.cancel();
      return v.kind === 'immediate' ? v.status : 200;
    };
    try {
      await eventually(async () => (await epp.endpointStates()).length === 1, 10_000, 'pod discovered');
      await eventually(async () => (await send('batch')) === 429, 10_000, 'sheddable shed');
      expect(await send('interactive')).toBe(200);
      await api.must(
        'PATCH',
        objPath(ns, 'batch'),
        { spec: { priority: 0 } },
        { contentType: 'application/merge-patch+json' },
      );
      await eventually(async () => (await send('batch')) === 200, 10_000, 'raised priority watched');
      expect(epp.logs()).not.toMatch(/forbidden/i);
    } finally {
      await epp.stop();
    }
  }, 90_000);
});
