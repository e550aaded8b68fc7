import { describe, expect, it, vi } from 'vitest';
import { Director, cachedHitRates, endpointViews, indexerCacheKey } from '../../../src/director/director.js';
import { CacheIndexerClient, type IndexerOutcome } from '../../../src/datalayer/cache-indexer-client.js';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import type { Endpoint, LLMRequest } from '../../../src/scheduling/types.js';
import { SchedulingError } from '../../../src/scheduling/types.js';
import type { StateStore } from '../../../src/state/store.js';

const QUEUE_PROFILE = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: picker-min-random
  parameters: {maxNumOfEndpoints: 3}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: picker-min-random
`;

const ep = (i: number): Endpoint => ({
  id: `10.0.0.${i}:8000`,
  name: `pod-${i}`,
  address: `10.0.0.${i}`,
  port: 8000,
  labels: {},
});

const req = (id = 'r1'): LLMRequest => ({
  requestId: id,
  model: 'm',
  apiType: 'completions',
  promptText: 'hello world, this is a prompt',
  promptTokens: 8,
  stream: false,
  headers: {},
});

async function setup(now = () => 1_000_000) {
  const store = new MemoryStateStore({ now });
  await store.replaceEndpoints([ep(1), ep(2), ep(3)]);
  const { profile } = loadConfigText(QUEUE_PROFILE, 'test.yaml', builtinRegistry());
  return { store, profile };
}

describe('Director', () => {
  it('picks by fresh signals, charges in-flight, and releases it', async () => {
    const now = () => 1_000_000;
    const { store, profile } = await setup(now);
    await store.writeSignals(ep(1).id, { waitingQueueSize: 9, updatedAtMs: now() });
    await store.writeSignals(ep(2).id, { waitingQueueSize: 0, updatedAtMs: now() });
    await store.writeSignals(ep(3).id, { waitingQueueSize: 5, updatedAtMs: now() });
    const director = new Director({ store, profile, now, random: () => 0.5 });
    const d = await director.pick(req());
    expect(d.result.primary.endpoint.id).toBe(ep(2).id);
    expect(d.result.fallbacks.map((f) => f.endpoint.id)).toEqual([ep(3).id, ep(1).id]);
    expect((await store.readSnapshot({})).inFlight.get(ep(2).id)).toBe(1);
    await d.ticket.release();
    expect((await store.readSnapshot({})).inFlight.get(ep(2).id)).toBeUndefined();
    expect((await store.recentDecisions(10))[0]?.endpoint).toBe(ep(2).id);
  });

  it('reports a first token after its prefill charge is released, and a release after the in-flight one', async () => {
    const { store, profile } = await setup();
    const seen: string[] = [];
    // What the store holds when the hook runs: the charge is already gone.
    const atHook: Array<ReturnType<StateStore['readSnapshot']>> = [];
    const director = new Director({
      store,
      profile,
      random: () => 0.5,
      hooks: {
        onPrefillReleased: () => {
          seen.push('prefill');
          atHook.push(store.readSnapshot({}));
        },
        onReleased: () => seen.push('released'),
      },
    });
    const d = await director.pick(req());
    const id = d.result.primary.endpoint.id;
    // 8 prompt tokens, nothing cached: all are to be prefilled
    expect((await store.readSnapshot({})).pendingPrefillTokens.get(id)).toBe(8);
    d.ticket.firstToken();
    d.ticket.firstToken(); // once per pick
    await vi.waitFor(() => expect(seen).toEqual(['prefill']));
    const snap = await atHook[0]!;
    expect(snap.pendingPrefillTokens.get(id) ?? 0).toBe(0);
    expect(snap.inFlight.get(id)).toBe(1);
    await d.ticket.release();
    await vi.waitFor(() => expect(seen).toEqual(['prefill', 'released']));
  });

  it('treats stale signals as unknown, not as zero load', async () => {
    let t = 1_000_000;
    const now = () => t;
    const { store } = await setup(now);
    await store.writeSignals(ep(1).id, { waitingQueueSize: 0, updatedAtMs: t - 10_000 });
    await store.writeSignals(ep(2).id, { waitingQueueSize: 3, updatedAtMs: t });
    const views = endpointViews(await store.readSnapshot({}), t, 2_000);
    expect(views[0]!.waitingQueueSize).toBeUndefined();
    expect(views[0]!.signalsAgeMs).toBe(10_000);
    expect(views[1]!.waitingQueueSize).toBe(3);
    expect(views[2]!.signalsAgeMs).toBeUndefined();
    t += 1;
  });

  it('fails with NO_CANDIDATES when the pool is empty', async () => {
    const { store, profile } = await setup();
    await store.replaceEndpoints([]);
    const director = new Director({ store, profile });
    await expect(director.pick(req())).rejects.toBeInstanceOf(SchedulingError);
  });

  it('keeps a pick when the state store cannot record it, and reports the error', async () => {
    const { store, profile } = await setup();
    const errors: string[] = [];
    const broken: StateStore = Object.create(store) as StateStore;
    broken.commitPick = async () => {
      throw new Error('redis down');
    };
    broken.release = async () => {
      throw new Error('redis down');
    };
    const director = new Director({
      store: broken,
      profile,
      hooks: { onStateError: (op) => errors.push(op) },
    });
    const d = await director.pick(req());
    expect(d.result.primary.endpoint.id).toMatch(/^10\.0\.0\.\d:8000$/);
    await d.ticket.release();
    expect(errors).toEqual(['commitPick', 'release']);
  });

  it('keys cached indexer answers by model and whole prompt', () => {
    const a = req();
    const b = { ...req(), promptText: a.promptText.replace('prompt', 'PROMPT') };
    const c = { ...req(), model: 'other' };
    expect(indexerCacheKey(a)).toBe(indexerCacheKey({ ...a }));
    expect(indexerCacheKey(a)).not.toBe(indexerCacheKey(b));
    expect(indexerCacheKey(a)).not.toBe(indexerCacheKey(c));
  });
  it("caches the indexer's answer text as sent and reads it back as the same hit rates", async () => {
    const { store } = await setup();
    const KV_PROFILE = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: scorer-aggregate-kv-cache-aware
  parameters: {kvCacheManagerIP: indexer, kvCacheManagerPort: 8080}
- type: picker-min-random
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: scorer-aggregate-kv-cache-aware
  - pluginRef: picker-min-random
`;
    const { profile } = loadConfigText(KV_PROFILE, 'kv.yaml', builtinRegistry());
    const answer =
      '{"results":[{"endpoint":"10.0.0.2:8000","hitRate":1.5,"matchedBlocks":3,"totalBlocks":2},' +
      '{"endpoint":"10.0.0.1:8000","hitRate":0.25},{"endpoint":"10.0.0.3:8000","hitRate":-1}]}';
    const seen: Array<IndexerOutcome['hitRates']> = [];
    class OneAnswer extends CacheIndexerClient {
      calls = 0;
      override async matchSort(): Promise<IndexerOutcome> {
        this.calls++;
        return { hitRates: cachedHitRates(answer), status: 'ok', latencyMs: 0, answer };
      }
    }
    const indexer = new OneAnswer();
    const put = vi.spyOn(store, 'putIndexerAnswer');
    const d = new Director({ store, profile, indexer, hooks: { onIndexer: (o) => seen.push(o.hitRates) } });
    const first = await d.pick(req('a'));
    const second = await d.pick(req('b'));
    expect(indexer.calls).toBe(1);
    expect(put).toHaveBeenCalledTimes(1);
    expect(put.mock.calls[0]![1]).toBe(answer);
    expect(first.result.primary.endpoint.id).toBe('10.0.0.2:8000');
    expect(second.result.primary.endpoint.id).toBe('10.0.0.2:8000');
    expect([...seen[0]!]).toEqual([
      ['10.0.0.2:8000', 1],
      ['10.0.0.1:8000', 0.25],
      ['10.0.0.3:8000', 0],
    ]);
    // The pairs of a map (a replica from before, or a client that kept no text) read the same.
    expect([...cachedHitRates(JSON.stringify([...seen[0]!]))]).toEqual([...seen[0]!]);
    expect(() => cachedHitRates('{"results":"x"}')).toThrow(/results/);
    await first.ticket.release();
    await second.ticket.release();
  });
  it('reuses the hit rates it parsed while the cached text is the same, and parses a replaced one', async () => {
    const { store } = await setup();
    const KV_PROFILE = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: scorer-aggregate-kv-cache-aware
  parameters: {kvCacheManagerIP: indexer, kvCacheManagerPort: 8080, routingHistory: false}
- type: picker-min-random
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: scorer-aggregate-kv-cache-aware
  - pluginRef: picker-min-random
`;
    const { profile } = loadConfigText(KV_PROFILE, 'kv.yaml', builtinRegistry());
    const answer =
      '{"results":[{"endpoint":"10.0.0.2:8000","hitRate":1},{"endpoint":"10.0.0.1:8000","hitRate":0}]}';
    class OneAnswer extends CacheIndexerClient {
      calls = 0;
      override async matchSort(): Promise<IndexerOutcome> {
        this.calls++;
        return { hitRates: cachedHitRates(answer), status: 'ok', latencyMs: 0, answer };
      }
    }
    const indexer = new OneAnswer();
    const d = new Director({ store, profile, indexer });
    const tickets = [(await d.pick(req('a'))).ticket];
    const parse = vi.spyOn(JSON, 'parse');
    try {
      // The store holds the answer's text: read back, it is the text parsed before.
      const again = await d.pick(req('b'));
      tickets.push(again.ticket);
      expect(again.result.primary.endpoint.id).toBe('10.0.0.2:8000');
      expect(parse.mock.calls.filter((c) => c[0] === answer)).toHaveLength(0);
      // Another text under the same key (another replica's answer) is parsed and wins.
      const other =
        '{"results":[{"endpoint":"10.0.0.1:8000","hitRate":1},{"endpoint":"10.0.0.2:8000","hitRate":0}]}';
      await store.putIndexerAnswer(indexerCacheKey(req('c')), other, 60_000);
      const replaced = await d.pick(req('c'));
      tickets.push(replaced.ticket);
      expect(parse.mock.calls.filter((c) => c[0] === other)).toHaveLength(1);
      expect(replaced.result.primary.endpoint.id).toBe('10.0.0.1:8000');
      // ... and is reused in turn.
      tickets.push((await d.pick(req('d'))).ticket);
      expect(parse.mock.calls.filter((c) => c[0] === other)).toHaveLength(1);
    } finally {
      parse.mockRestore();
    }
    expect(indexer.calls).toBe(1);
    for (const t of tickets) await t.release();
  });
});
