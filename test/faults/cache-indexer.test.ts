// Fault: the cache-indexer is slow (answers after the scorer's timeout) and
// then down, then back. Every request is still routed; the failures show in
// hermes_cache_indexer_failures_total by status (timeout, error, open); once
// the breaker opens, requests stop paying the timeout; after recovery the
// EPP asks the indexer again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { stopAllSpawned } from '../helpers/spawn.js';
import { eventually } from '../helpers/wait.js';
import { routeOnce } from './epp-harness.js';
import { fakeIndexer, type FakeIndexer } from './fake-indexer.js';

const TIMEOUT_MS = 200;
let models: FakeModel[];
let indexer: FakeIndexer;
let epp: Epp;
let n = 0;
const prompt = () => `a fresh prompt number ${n++} ${'x'.repeat(64)}`;

beforeAll(async () => {
  models = await Promise.all([fakeModel(), fakeModel()]);
  indexer = await fakeIndexer();
  const config = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: scorer-aggregate-kv-cache-aware
  parameters:
    kvCacheManagerIP: 127.0.0.1
    kvCacheManagerPort: ${indexer.port}
    kvCacheManagerTimeout: ${TIMEOUT_MS * 1_000_000}
- type: picker-min-random
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: scorer-aggregate-kv-cache-aware
  - pluginRef: picker-min-random
`;
  epp = await startEpp({
    config,
    endpoints: endpointsYaml(models.map((m, i) => ({ name: `m${i}`, port: m.port }))),
    args: ['--log-level', 'warn'],
  });
});

afterAll(async () => {
  await Promise.all([...models.map((m) => m.close()), indexer.close()]);
  await stopAllSpawned();
});

const known = () => new Set(models.map((m) => m.id));

describe('cache-indexer faults', () => {
  it('healthy: requests are routed and the indexer is asked', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await routeOnce(epp.client, prompt());
      expect('endpoint' in r && known().has(r.endpoint)).toBe(true);
    }
    expect(indexer.calls).toBeGreaterThanOrEqual(1);
    expect(await epp.metric('hermes_cache_indexer_failures_total')).toBe(0);
  });

  it('slow past its timeout: still routed, timeouts counted, then the breaker skips it', async () => {
    indexer.mode = 'slow';
    indexer.delayMs = 2_000;
    const picks: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await routeOnce(epp.client, prompt());
      expect('endpoint' in r && known().has(r.endpoint), JSON.stringify(r)).toBe(true);
      if ('pickMs' in r) picks.push(r.pickMs);
    }
    // No request waited for the 2 s answer; the first ones waited about the timeout.
    expect(Math.max(...picks)).toBeLessThan(TIMEOUT_MS + 600);
    expect(
      await epp.metric('hermes_cache_indexer_failures_total', 'status="timeout"'),
    ).toBeGreaterThanOrEqual(1);
    expect(await epp.metric('hermes_cache_indexer_failures_total', 'status="open"')).toBeGreaterThanOrEqual(
      1,
    );
    // With the breaker open a pick does not pay the timeout.
    expect(Math.min(...picks.slice(-3))).toBeLessThan(TIMEOUT_MS / 2);
  });

  it('down: still routed; errors (when probing) or breaker skips are counted', async () => {
    await indexer.close();
    const before = await epp.metric('hermes_cache_indexer_failures_total');
    const t0 = Date.now();
    let routed = 0;
    while (Date.now() - t0 < 3_000) {
      const r = await routeOnce(epp.client, prompt());
      expect('endpoint' in r && known().has(r.endpoint), JSON.stringify(r)).toBe(true);
      routed++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(routed).toBeGreaterThan(10);
    expect(await epp.metric('hermes_cache_indexer_failures_total')).toBeGreaterThan(before);
    expect(epp.proc.alive()).toBe(true);
  });

  it('back up: the EPP asks it again once the breaker lets a probe through', async () => {
    const port = indexer.port;
    indexer = await fakeIndexer({ port });
    await eventually(
      async () => {
        await routeOnce(epp.client, prompt());
        return indexer.calls > 0;
      },
      40_000,
      'the EPP to ask the restarted indexer',
      100,
    );
    const okBefore = indexer.calls;
    for (let i = 0; i < 3; i++) await routeOnce(epp.client, prompt());
    expect(indexer.calls).toBeGreaterThan(okBefore);
    expect(await epp.inFlight()).toBe(0);
  }, 60_000);
});
