// How the source reaches the API server: a kubeconfig file, or the pod's
// service account (in-cluster) over TLS with the cluster CA and a bearer token.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesSource, loadKubeConfig } from '../../../src/discovery/kubernetes.js';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { FakeApiServer, makePod, makePoolV1 } from '../../helpers/fake-apiserver.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-k8s-cfg-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function seed(api: FakeApiServer): void {
  api.upsertPool(makePoolV1({ name: 'pool', namespace: 'ns1', matchLabels: { app: 'm' }, ports: [8000] }));
  api.upsertPod(makePod({ name: 'p0', namespace: 'ns1', ip: '10.9.0.1', labels: { app: 'm' } }));
}

describe('KubernetesSource configuration', () => {
  it('in-cluster: service-account token and CA, HTTPS to KUBERNETES_SERVICE_HOST:PORT', async () => {
    const pems = await generate([{ name: 'commonName', value: 'kubernetes' }], {
      keySize: 2048,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const api = new FakeApiServer({ tls: { key: pems.private, cert: pems.cert } });
    await api.start();
    cleanups.push(() => api.stop());
    seed(api);
    const root = tempDir();
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'in-cluster-token');
    writeFileSync(join(sa, 'ca.crt'), pems.cert);
    writeFileSync(join(sa, 'namespace'), 'ns1');
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = String(api.port);
    cleanups.push(() => {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    // loadFromCluster is what `inCluster: true` calls; the path prefix points it at our files.
    const kc = new KubeConfig();
    kc.loadFromCluster(root);
    expect(kc.getCurrentCluster()?.server).toBe(`https://127.0.0.1:${api.port}`);
    const sets: Endpoint[][] = [];
    const src = new KubernetesSource({
      poolName: 'pool',
      poolNamespace: 'ns1',
      kubeConfig: kc,
      initialSyncTimeoutMs: 5_000,
    });
    cleanups.push(() => src.stop());
    await src.start((e) => sets.push(e));
    expect(sets.at(-1)?.map((e) => e.id)).toEqual(['10.9.0.1:8000']);
    expect(api.requests.length).toBeGreaterThan(0);
    expect(api.requests.every((r) => r.authorization === 'Bearer in-cluster-token')).toBe(true);
  });

  it('kubeconfig file (--kubeconfig) and the default chain ($KUBECONFIG)', async () => {
    const api = new FakeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    seed(api);
    const file = api.writeKubeconfig(tempDir());
    const viaPath = new KubernetesSource({ poolName: 'pool', poolNamespace: 'ns1', kubeconfigPath: file });
    cleanups.push(() => viaPath.stop());
    const a: Endpoint[][] = [];
    await viaPath.start((e) => a.push(e));
    expect(a.at(-1)?.map((e) => e.id)).toEqual(['10.9.0.1:8000']);
    expect(api.requests[0]?.authorization).toBe('Bearer test-token');

    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file;
    cleanups.push(() => {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    });
    expect(loadKubeConfig().getCurrentCluster()?.server).toBe(api.url);
  });

  it('no pool API served: start() does not hang forever, the error names the CRDs', async () => {
    const api = new FakeApiServer({ servedGroups: [] });
    await api.start();
    cleanups.push(() => api.stop());
    const errors: Error[] = [];
    const sets: Endpoint[][] = [];
    const src = new KubernetesSource({
      poolName: 'pool',
      poolNamespace: 'ns1',
      kubeconfigPath: api.writeKubeconfig(tempDir()),
      initialSyncTimeoutMs: 300,
      backoff: { initialMs: 50, maxMs: 100 },
      onError: (e) => errors.push(e),
    });
    cleanups.push(() => src.stop());
    await src.start((e) => sets.push(e));
    expect(src.synced).toBe(false);
    expect(sets).toEqual([[]]);
    expect(errors.some((e) => /Inference Extension CRDs/.test(e.message))).toBe(true);
    expect(errors.some((e) => /initial sync not complete/.test(e.message))).toBe(true);
  });

  it('rejects missing pool name or namespace', () => {
    const kc = new KubeConfig();
    kc.loadFromString(
      '{"apiVersion":"v1","clusters":[{"name":"c","cluster":{"server":"http://127.0.0.1:1"}}],"users":[{"name":"u"}],"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}',
    );
    expect(() => new KubernetesSource({ poolName: '', poolNamespace: 'ns', kubeConfig: kc })).toThrow(
      /poolName/,
    );
    expect(() => new KubernetesSource({ poolName: 'p', poolNamespace: '', kubeConfig: kc })).toThrow(
      /poolNamespace/,
    );
  });
});
