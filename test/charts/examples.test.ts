// The example charts the product documents: the gateway, aggregated vLLM and
// PD vLLM, rendered by the real helm with the documented --set flags, and
// their fit with charts/hermes-router (selector labels, gateway name).
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { find, helm, helmBin, render, renderError, ROOT, type K8sObject } from './helm.js';

const GATEWAY = join(ROOT, 'examples/1_pd_bucket/charts/gateway');
const VLLM = join(ROOT, 'examples/2_kv_aware/charts/vllm');
const VLLM_PD = join(ROOT, 'examples/1_pd_bucket/charts/vllm-pd');
const HERMES = join(ROOT, 'charts/hermes-router');
const MODEL_SETS = ['modelServer.name=Qwen/Qwen3-8B', 'modelServer.rootCachePath=/home/llm_cache'];

beforeAll(() => {
  helmBin();
});

/** Does a pod template carry every label of the selector? */
function selects(selector: Record<string, string>, dep: K8sObject): boolean {
  const labels = dep.spec.template.metadata.labels as Record<string, string>;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const hermesPoolSelector = () =>
  find(render(HERMES), 'InferencePool').spec.selector.matchLabels as Record<string, string>;

describe('example charts', () => {
  it.each([
    [GATEWAY, ['gateway.className=istio']],
    [VLLM, MODEL_SETS],
    [VLLM_PD, MODEL_SETS],
  ])('helm lint --strict %s', (chart, sets) => {
    const r = helm(['lint', chart, '--strict', ...sets.flatMap((s) => ['--set', s])]);
    expect(r.ok, r.stdout + r.stderr).toBe(true);
  });

  it('gateway: a Gateway of the given class, named as hermes-router expects', () => {
    const objs = render(GATEWAY, { release: 'inference-gateway', set: ['gateway.className=istio'] });
    expect(objs.map((o) => o.kind)).toEqual(['Gateway']);
    const gw = find(objs, 'Gateway');
    expect(gw.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(gw.spec.gatewayClassName).toBe('istio');
    expect(gw.spec.listeners[0]).toMatchObject({ name: 'http', port: 80, protocol: 'HTTP' });
    // hermes-router's HTTPRoute attaches to this Gateway by default.
    expect(find(render(HERMES), 'HTTPRoute').spec.parentRefs[0].name).toBe(gw.metadata.name);
    expect(render(GATEWAY, { set: ['gateway.className=gke-l7-rilb'] })[0]!.spec.gatewayClassName).toBe(
      'gke-l7-rilb',
    );
    expect(renderError(GATEWAY, { set: ['gateway.listeners[0].protocol=TCP'] })).toMatch(/protocol/);
  });

  it('vllm (aggregated): pods the hermes-router pool selects, with the KV events port', () => {
    const objs = render(VLLM, { release: 'vllm', set: MODEL_SETS });
    const dep = find(objs, 'Deployment', 'vllm');
    expect(selects(hermesPoolSelector(), dep)).toBe(true);
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toMatch(/^vllm\/vllm-openai:/);
    expect(c.args[0]).toBe('Qwen/Qwen3-8B');
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 8000, protocol: 'TCP' },
      { name: 'zmq-pub', containerPort: 5557, protocol: 'TCP' },
    ]);
    expect(dep.spec.template.spec.volumes).toContainEqual({
      name: 'llm-cache',
      hostPath: { path: '/home/llm_cache', type: 'DirectoryOrCreate' },
    });
  });

  it('vllm with mock-vllm: the project image runs mock-vllm on all interfaces', () => {
    const objs = render(VLLM, {
      release: 'vllm',
      set: [...MODEL_SETS, 'mock.enabled=true', 'modelServer.replicas=3'],
    });
    const dep = find(objs, 'Deployment', 'vllm');
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toMatch(/^hermes-router:/);
    expect(c.args.slice(0, 4)).toEqual([
      'mock-vllm',
      '--host=0.0.0.0',
      '--port=8000',
      '--model=Qwen/Qwen3-8B',
    ]);
    expect(c.args).toContain('--kv-events-port=5557');
    expect(dep.spec.template.spec.volumes).toBeUndefined();
    expect(selects(hermesPoolSelector(), dep)).toBe(true);
  });

  it('vllm-pd: per group a leader (pd-proxy), prefill and decode pods with pdRole/pdGroupID labels', () => {
    const objs = render(VLLM_PD, { release: 'vllm-pd', set: [...MODEL_SETS, 'pd.groups=2'] });
    const deps = objs.filter((o) => o.kind === 'Deployment');
    expect(deps.map((d) => d.metadata.name).sort()).toEqual([
      'vllm-pd-group-0-decode',
      'vllm-pd-group-0-leader',
      'vllm-pd-group-0-prefill',
      'vllm-pd-group-1-decode',
      'vllm-pd-group-1-leader',
      'vllm-pd-group-1-prefill',
    ]);
    const selector = hermesPoolSelector();
    const services = new Set(objs.filter((o) => o.kind === 'Service').map((s) => s.metadata.name));
    for (const g of [0, 1]) {
      for (const role of ['prefill', 'decode', 'leader']) {
        const dep = find(objs, 'Deployment', `vllm-pd-group-${g}-${role}`);
        const labels = dep.spec.template.metadata.labels;
        expect(labels['openfuyao.com/pdRole']).toBe(role);
        expect(labels['openfuyao.com/pdGroupID']).toBe(`group-${g}`);
        expect(selects(selector, dep)).toBe(true); // every PD pod is in the hermes-router pool
        expect(dep.spec.selector.matchLabels).toEqual(labels);
      }
      const leader = find(objs, 'Deployment', `vllm-pd-group-${g}-leader`).spec.template.spec.containers[0];
      expect(leader.args[0]).toBe('pd-proxy');
      // The leader's upstreams are this group's Services, which exist.
      const prefill = leader.args
        .find((a: string) => a.startsWith('--prefill='))!
        .slice('--prefill='.length)
        .split(':')[0];
      const decode = leader.args
        .find((a: string) => a.startsWith('--decode='))!
        .slice('--decode='.length)
        .split(':')[0];
      expect(services.has(prefill)).toBe(true);
      expect(services.has(decode)).toBe(true);
      expect(find(objs, 'Service', prefill).spec.selector['openfuyao.com/pdGroupID']).toBe(`group-${g}`);
    }
  });

  it('vllm-pd with mock-vllm: prefill and decode roles passed to mock-vllm', () => {
    const objs = render(VLLM_PD, {
      release: 'vllm-pd',
      set: [...MODEL_SETS, 'mock.enabled=true', 'pd.groups=1'],
    });
    for (const role of ['prefill', 'decode']) {
      const c = find(objs, 'Deployment', `vllm-pd-group-0-${role}`).spec.template.spec.containers[0];
      expect(c.args[0]).toBe('mock-vllm');
      expect(c.args).toContain(`--role=${role}`);
      expect(c.image).toMatch(/^hermes-router:/);
    }
  });

  it('example charts refuse bad values', () => {
    expect(renderError(VLLM_PD, { set: ['pd.groups=0'] })).toMatch(/groups/);
    expect(renderError(VLLM_PD, { set: ['pd.labels.prefillValue=bad value'] })).toMatch(/prefillValue/);
    expect(renderError(VLLM, { set: ['modelServer.port=http'] })).toMatch(/port/);
    expect(renderError(VLLM, { set: ['modelServer.rootCachePath=relative/path'] })).toMatch(/rootCachePath/);
  });
});
