// InferencePool changes: selector, target ports, deletion, and the v1alpha2 API.
import { afterEach, describe, expect, it } from 'vitest';
import {
  GROUP_V1,
  GROUP_V1ALPHA2,
  makePod,
  makePoolV1,
  makePoolV1alpha2,
} from '../../helpers/fake-apiserver.js';
import { eventually } from '../../helpers/wait.js';
import { LABELS, NS, POOL, startHarness, type Harness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('KubernetesSource pool changes', () => {
  it('pool selector changes: follows the new selector', async () => {
    h = await startHarness();
    h.pod({ name: 'old-0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'new-0', ip: '10.2.0.1', labels: { app: 'vllm-qwen3-v2' } });
    h.pod({ name: 'new-1', ip: '10.2.0.2', labels: { app: 'vllm-qwen3-v2' } });
    await h.waitFor((eps) => eps.length === 1);
    const publishedBefore = h.sets.length;
    h.api.upsertPool(
      makePoolV1({ name: POOL, namespace: NS, matchLabels: { app: 'vllm-qwen3-v2' }, ports: [8000] }),
    );
    const took = await h.waitFor((eps) => eps.length === 2);
    expect(took).toBeLessThan(1_000);
    expect(h.ids()).toEqual(['10.2.0.1:8000', '10.2.0.2:8000']);
    // No partial set in between (neither empty nor mixed).
    for (const s of h.sets.slice(publishedBefore))
      expect(s.map((e) => e.name).sort()).toEqual(['new-0', 'new-1']);
    // The pod watch now carries the new selector. The new set is published from the
    // list, before the watch under the new selector is opened: wait for that request
    // (on a loaded CI machine it came after the set).
    const lastPodWatchSelector = () =>
      h!.api.requests.filter((r) => r.watch && r.path.endsWith('/pods')).at(-1)?.query.labelSelector;
    await eventually(
      () => lastPodWatchSelector() === 'app=vllm-qwen3-v2',
      5_000,
      'the pod watch under the new selector',
    );
    // Events under the new selector keep flowing.
    h.pod({ name: 'new-2', ip: '10.2.0.3', labels: { app: 'vllm-qwen3-v2' } });
    await h.waitFor((eps) => eps.length === 3);
  });

  it('target ports change: one endpoint per port, named <pod>-rank-<i>', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS, ports: [8000, 8001] });
    await h.waitFor((eps) => eps.length === 1);
    h.api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [8000, 8001] }));
    await h.waitFor((eps) => eps.length === 2);
    expect(h.latest().map((e) => [e.id, e.name, e.port])).toEqual([
      ['10.1.0.1:8000', 'p0-rank-0', 8000],
      ['10.1.0.1:8001', 'p0-rank-1', 8001],
    ]);
    h.api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [9000] }));
    await h.waitFor((eps) => eps.length === 1 && eps[0]?.port === 9000);
    expect(h.latest()[0]).toMatchObject({ id: '10.1.0.1:9000', name: 'p0' });
  });

  it('active-ports annotation limits the live ranks', async () => {
    h = await startHarness({
      seed: (api) =>
        api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [8000, 8001] })),
    });
    h.pod({
      name: 'p0',
      ip: '10.1.0.1',
      labels: LABELS,
      annotations: { 'inference.networking.k8s.io/active-ports': '8001' },
    });
    await h.waitFor((eps) => eps.length === 1);
    expect(h.latest()[0]).toMatchObject({ id: '10.1.0.1:8001', name: 'p0-rank-1' });
  });

  it('pool deleted: empty set; recreated: endpoints return', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    h.api.deletePool(NS, POOL);
    await h.waitFor((eps) => eps.length === 0);
    expect(h.source.synced).toBe(true);
    h.api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [8000] }));
    await h.waitFor((eps) => eps.length === 1);
  });

  it('ignores other pools in the namespace', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    h.api.upsertPool(
      makePoolV1({ name: 'another-pool', namespace: NS, matchLabels: { app: 'x' }, ports: [7000] }),
    );
    h.api.deletePool(NS, 'another-pool');
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    expect(h.latest().every((e) => e.port === 8000)).toBe(true);
  });

  it('v1alpha2 pool (inference.networking.x-k8s.io): flat selector and targetPortNumber', async () => {
    h = await startHarness({
      api: { servedGroups: [GROUP_V1ALPHA2] },
      seed: (api) => {
        api.upsertPool(
          makePoolV1alpha2({ name: POOL, namespace: NS, selector: LABELS, port: 8000 }),
          GROUP_V1ALPHA2,
        );
        api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS }));
      },
    });
    expect(h.source.poolGroup).toBe(GROUP_V1ALPHA2);
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
    // The v1 group answered 404, then the v1alpha2 group was used for list and watch.
    await eventually(
      () => h!.api.requests.some((r) => r.watch && r.path.startsWith(`/apis/${GROUP_V1ALPHA2}/v1alpha2/`)),
      2_000,
      'v1alpha2 watch',
    );
    h.api.upsertPool(
      makePoolV1alpha2({ name: POOL, namespace: NS, selector: LABELS, port: 8080 }),
      GROUP_V1ALPHA2,
    );
    await h.waitFor((eps) => eps[0]?.id === '10.1.0.1:8080');
  });

  it('auto mode prefers v1 when both groups hold the pool; an explicit poolGroup is honoured', async () => {
    const seed = (api: import('../../helpers/fake-apiserver.js').FakeApiServer) => {
      api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [8000] }));
      api.upsertPool(
        makePoolV1alpha2({ name: POOL, namespace: NS, selector: LABELS, port: 9999 }),
        GROUP_V1ALPHA2,
      );
      api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS }));
    };
    h = await startHarness({ seed });
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
    await h.close();
    h = await startHarness({ seed, source: { poolGroup: GROUP_V1ALPHA2 } });
    expect(h.ids()).toEqual(['10.1.0.1:9999']);
  });

  it('a bad pool edit keeps the last good set and reports the error', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    h.api.upsertPool({
      metadata: { name: POOL, namespace: NS },
      spec: { selector: { matchLabels: LABELS }, targetPorts: [{ number: 0 }] },
    });
    await eventually(
      () => h!.errors.some((e) => /targetPorts\[0\]\.number/.test(e.message)),
      1_000,
      'pool error reported',
    );
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
  });

  // The two sequences issue 16 found on a real API server, where the group
  // was decided once at list time.
  describe('auto mode follows the pool across API groups at run time', () => {
    const logs: Array<[string, Record<string, unknown> | undefined]> = [];
    const log = (m: string, f?: Record<string, unknown>) => logs.push([m, f]);
    const inUse = () => logs.filter(([m]) => m === 'inferencepool api in use').map(([, f]) => f!.group);
    const alpha = (port: number) => makePoolV1alpha2({ name: POOL, namespace: NS, selector: LABELS, port });
    const v1 = (port: number) =>
      makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports: [port] });

    it('a v1alpha2 pool created after start is seen', async () => {
      logs.length = 0;
      h = await startHarness({
        seed: (api) => api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS })),
        source: { log },
      });
      expect(h.source.synced).toBe(true);
      expect(h.ids()).toEqual([]);
      h.api.upsertPool(alpha(8000), GROUP_V1ALPHA2);
      await h.waitFor((eps) => eps.length === 1);
      expect(h.ids()).toEqual(['10.1.0.1:8000']);
      expect(h.source.poolGroup).toBe(GROUP_V1ALPHA2);
      expect(inUse()).toEqual([GROUP_V1, GROUP_V1ALPHA2]);
    });

    it('migration: v1 pool created (wins), then the v1alpha2 one deleted: the set never empties', async () => {
      logs.length = 0;
      h = await startHarness({
        seed: (api) => {
          api.upsertPool(alpha(8000), GROUP_V1ALPHA2);
          api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS }));
        },
        source: { log },
      });
      expect(h.ids()).toEqual(['10.1.0.1:8000']);
      expect(h.source.poolGroup).toBe(GROUP_V1ALPHA2);
      // v1 pool of the same name, on another port so the switch is visible.
      h.api.upsertPool(v1(9000));
      await h.waitFor((eps) => eps[0]?.id === '10.1.0.1:9000');
      expect(h.source.poolGroup).toBe(GROUP_V1);
      const before = h.sets.length;
      h.api.deletePool(NS, POOL, GROUP_V1ALPHA2);
      h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
      await h.waitFor((eps) => eps.length === 2);
      expect(h.sets.slice(before).every((s) => s.length > 0)).toBe(true);
      expect(h.ids()).toEqual(['10.1.0.1:9000', '10.1.0.2:9000']);
      expect(inUse()).toEqual([GROUP_V1ALPHA2, GROUP_V1]);
      expect(h.errors).toEqual([]);
    });

    it('the v1 pool deleted while v1alpha2 holds one: falls back to v1alpha2; both gone: empty', async () => {
      h = await startHarness({
        seed: (api) => {
          api.upsertPool(v1(9000));
          api.upsertPool(alpha(8000), GROUP_V1ALPHA2);
          api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS }));
        },
      });
      expect(h.ids()).toEqual(['10.1.0.1:9000']);
      h.api.deletePool(NS, POOL, GROUP_V1);
      await h.waitFor((eps) => eps[0]?.id === '10.1.0.1:8000');
      expect(h.source.poolGroup).toBe(GROUP_V1ALPHA2);
      h.api.deletePool(NS, POOL, GROUP_V1ALPHA2);
      await h.waitFor((eps) => eps.length === 0);
    });

    it('a group whose CRD is installed later is picked up (404 listed again after a back-off)', async () => {
      h = await startHarness({
        api: { servedGroups: [GROUP_V1] },
        seed: (api) => api.upsertPod(makePod({ name: 'p0', namespace: NS, ip: '10.1.0.1', labels: LABELS })),
      });
      expect(h.source.synced).toBe(true);
      expect(h.errors).toEqual([]); // one group not served is normal in auto mode
      h.api.servedGroups.add(GROUP_V1ALPHA2);
      h.api.upsertPool(alpha(8000), GROUP_V1ALPHA2);
      await h.waitFor((eps) => eps.length === 1, 3_000);
      expect(h.source.poolGroup).toBe(GROUP_V1ALPHA2);
    });
  });
});
