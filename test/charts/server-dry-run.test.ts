// Every rendered chart variant sent to a real kube-apiserver (v1.34, built by
// .ci/tools.sh) as `kubectl create --dry-run=server --validate=strict` would:
// POST ?dryRun=All&fieldValidation=Strict, into a namespace that enforces and
// warns on PodSecurity "restricted". The upstream CRDs are installed first
// (InferencePool v1 + v1alpha2, Gateway API standard, Istio), so their
// schemas and CEL rules run on the server. Accepted with no warning.
// ServiceMonitor has no CRD here (the prometheus-operator module is not
// served by the module proxy): it is listed, not validated.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { helmBin, render, ROOT, type K8sObject } from './helm.js';

const CHART = join(ROOT, 'charts/hermes-router');
const GATEWAY = join(ROOT, 'examples/1_pd_bucket/charts/gateway');
const VLLM = join(ROOT, 'examples/2_kv_aware/charts/vllm');
const VLLM_PD = join(ROOT, 'examples/1_pd_bucket/charts/vllm-pd');
const PROFILES_DIR = join(ROOT, 'examples/profiles');
const NS = 'ai-inference';
const MODEL_NS = 'model-servers';
const MODEL = ['modelServer.name=Qwen/Qwen3-8B', 'modelServer.rootCachePath=/home/llm_cache'];
/** Kinds with no CRD on this server. */
const NO_CRD = new Set(['ServiceMonitor']);

const VARIANTS: Array<[string, () => K8sObject[]]> = [
  ['defaults', () => render(CHART)],
  ...readdirSync(PROFILES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((p): [string, () => K8sObject[]] => [
      `profile ${p}`,
      () => render(CHART, { values: [join(PROFILES_DIR, p)] }),
    ]),
  [
    'v1alpha2 pool',
    () => render(CHART, { set: ['inferencepool.apiVersion=inference.networking.x-k8s.io/v1alpha2'] }),
  ],
  [
    'gateway in another namespace, FailClose, h2c, two ports',
    () =>
      render(CHART, {
        set: [
          'gateway.name=my-gw',
          'gateway.namespace=gw-ns',
          'inferencepool.inferenceExtension.failureMode=FailClose',
          'inferencepool.appProtocol=kubernetes.io/h2c',
          'inferencepool.targetPorts[0].number=8000',
          'inferencepool.targetPorts[1].number=8001',
        ],
      }),
  ],
  ['3 replicas', () => render(CHART, { set: ['inferencepool.inferenceExtension.replicas=3'] })],
  ['no Redis', () => render(CHART, { set: ['redis.enabled=false'] })],
  [
    'egress policy with a cache-indexer and an external peer',
    () =>
      render(CHART, {
        set: [
          'networkPolicy.egress.enabled=true',
          'networkPolicy.egress.apiServerCidrs[0]=10.0.0.1/32',
          'networkPolicy.cacheIndexer.podSelector.matchLabels.app=cache-indexer',
          'networkPolicy.egress.extraTo[0].to[0].ipBlock.cidr=192.168.10.0/24',
          'networkPolicy.egress.extraTo[0].ports[0].port=6380',
        ],
      }),
  ],
  [
    'external Redis with a password Secret',
    () =>
      render(CHART, {
        set: ['redis.externalUrl=redis://redis.shared:6379/2', 'redis.passwordSecret.name=redis-auth'],
      }),
  ],
  [
    'ServiceMonitor, GKE gateway class',
    () =>
      render(CHART, {
        set: ['monitoring.serviceMonitor.enabled=true', 'gateway.className=gke-l7-regional-external-managed'],
      }),
  ],
  [
    'example gateway chart',
    () => render(GATEWAY, { release: 'inference-gateway', set: ['gateway.className=istio'] }),
  ],
  // The example model servers (vLLM with a hostPath model cache, no
  // securityContext) cannot meet "restricted": they go to a namespace whose
  // PodSecurity level is privileged (schema checks still strict).
  ['example vllm chart', () => render(VLLM, { release: 'vllm', namespace: MODEL_NS, set: MODEL })],
  [
    'example vllm chart, mock',
    () => render(VLLM, { release: 'vllm', namespace: MODEL_NS, set: [...MODEL, 'mock.enabled=true'] }),
  ],
  [
    'example vllm-pd chart',
    () => render(VLLM_PD, { release: 'vllm-pd', namespace: MODEL_NS, set: [...MODEL, 'pd.groups=2'] }),
  ],
];

function crdDocs(file: string): Array<Record<string, unknown>> {
  return (yaml.loadAll(readFileSync(file, 'utf8')) as Array<Record<string, unknown> | null>).filter(
    (d): d is Record<string, unknown> => d !== null && d.kind === 'CustomResourceDefinition',
  );
}

function dirCrds(envName: string): Array<Record<string, unknown>> {
  const dir = process.env[envName];
  if (!dir) throw new Error(`${envName} unset: run \`source .ci/tools.sh\` or \`npm test\``);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => crdDocs(join(dir, f)));
}

/** The collection URL of an object: /api/v1/... or /apis/<group>/<version>/..., plural from the kind. */
function collection(o: K8sObject, ns = NS): string {
  const lower = o.kind.toLowerCase();
  const plural = /[^aeiou]y$/.test(lower) ? `${lower.slice(0, -1)}ies` : `${lower}s`;
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  return `${base}/namespaces/${o.metadata.namespace ?? ns}/${plural}`;
}

let api: KubeApiServer;
const notValidated = new Set<string>();

beforeAll(async () => {
  helmBin();
  const istio = process.env.ISTIO_CRD_FILE;
  if (!istio) throw new Error('ISTIO_CRD_FILE unset: run `source .ci/tools.sh` or `npm test`');
  api = await startKubeApiServer();
  await api.installCrds([...dirCrds('GIE_CRD_DIR'), ...dirCrds('GATEWAY_API_CRD_DIR'), ...crdDocs(istio)]);
  const restricted = {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/warn': 'restricted',
    'pod-security.kubernetes.io/audit': 'restricted',
  };
  await createNamespace(api, NS, restricted);
  await createNamespace(api, 'gw-ns', restricted);
  await createNamespace(api, MODEL_NS, {
    'pod-security.kubernetes.io/enforce': 'privileged',
    'pod-security.kubernetes.io/warn': 'privileged',
  });
}, 180_000);

afterAll(async () => {
  if (notValidated.size)
    console.info(`not validated (no CRD on the server): ${[...notValidated].join(', ')}`);
  await api?.stop();
});

describe('chart variants: server-side strict dry run on a real kube-apiserver', () => {
  it.each(VARIANTS)(
    '%s',
    async (_name, renderIt) => {
      const objs = renderIt();
      expect(objs.length).toBeGreaterThan(0);
      for (const o of objs) {
        if (NO_CRD.has(o.kind)) {
          notValidated.add(`${o.kind}/${o.metadata.name}`);
          continue;
        }
        const r = await api.call('POST', `${collection(o)}?dryRun=All&fieldValidation=Strict`, o);
        const what = `${o.kind}/${o.metadata.name}`;
        expect(r.status, `${what} ${collection(o)}: ${JSON.stringify(r.body).slice(0, 800)}`).toBe(201);
        expect(r.warnings, `${what}: ${r.warnings.join(' | ')}`).toEqual([]);
      }
    },
    60_000,
  );

  it('a bad object is refused: the dry run is not a rubber stamp', async () => {
    const deploy = render(CHART).find((o) => o.kind === 'Deployment')!;
    const unknownField = { ...deploy, spec: { ...deploy.spec, notAField: 1 } };
    const r1 = await api.call(
      'POST',
      `${collection(deploy)}?dryRun=All&fieldValidation=Strict`,
      unknownField,
    );
    expect(r1.status).toBe(400);
    expect(JSON.stringify(r1.body)).toMatch(/notAField/);
    // PodSecurity restricted: a pod with no securityContext is refused in this namespace (pods are enforced).
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'unrestricted', namespace: NS },
      spec: { containers: [{ name: 'c', image: 'x' }] },
    };
    const r2 = await api.call('POST', `/api/v1/namespaces/${NS}/pods?dryRun=All&fieldValidation=Strict`, pod);
    expect(r2.status, JSON.stringify(r2.body)).toBe(403);
    // An InferencePool the CRD's rules reject.
    const pool = render(CHART).find((o) => o.kind === 'InferencePool')!;
    const bad = { ...pool, spec: { ...pool.spec, targetPorts: [] } };
    const r3 = await api.call('POST', `${collection(pool)}?dryRun=All&fieldValidation=Strict`, bad);
    expect(r3.status).toBe(422);
  }, 30_000);
});
