// Warm admission: a request mostly cached on its scheduled endpoint passes a
// saturated pool while that endpoint's own queue has room (hand-computed
// values with GIE's utilization-detector defaults: queueDepthThreshold 5,
// kvCacheUtilThreshold 0.8).
import { describe, expect, it } from 'vitest';
import { cachedShareOf, type Decision } from '../../../src/director/director.js';
import { isWarm, queueHasRoom, WARM_SHARE, WARM_UNCACHED_TOKENS } from '../../../src/flow/warm-admission.js';
import { poolUtilization, utilizationDetectorParameters } from '../../../src/plugins/utilization-detector.js';
import type { CycleData, Endpoint, EndpointView } from '../../../src/scheduling/types.js';
import { completionsRequest, flowOverMemory } from './flow-fixture.js';

const GIE = utilizationDetectorParameters.parse({});
const detector = (views: readonly EndpointView[]) => poolUtilization(views, GIE);

const ep: Endpoint = { id: '10.0.0.1:8000', name: 'pod-1', address: '10.0.0.1', port: 8000, labels: {} };
const view = (over: Partial<EndpointView>): EndpointView => ({
  endpoint: ep,
  waitingQueueSize: 0,
  runningRequests: 10,
  kvCacheUsage: 0.5,
  inFlight: 10,
  pendingPrefillTokens: 0,
  signalsAgeMs: 10,
  ...over,
});

describe('isWarm', () => {
  it('is warm from half the prompt cached', () => {
    expect(WARM_SHARE).toBe(0.5);
    expect(isWarm(0.5, 1000)).toBe(true);
    expect(isWarm(0.49, 1000)).toBe(false);
    expect(isWarm(undefined, 1000)).toBe(false);
  });

  it('and at most 2,048 prompt tokens left to prefill, (1 - share) x prompt tokens', () => {
    expect(WARM_UNCACHED_TOKENS).toBe(2048);
    // 0.5 x 4,096 = 2,048: at the bound, warm; 0.5 x 4,098 = 2,049: cold.
    expect(isWarm(0.5, 4096)).toBe(true);
    expect(isWarm(0.5, 4098)).toBe(false);
    // A long conversation mostly cached: 0.1 x 20,000 = 2,000 <= 2,048.
    expect(isWarm(0.9, 20_000)).toBe(true);
    // Three quarters cached but 0.25 x 9,000 = 2,250 to prefill: cold.
    expect(isWarm(0.75, 9_000)).toBe(false);
    // Fully cached: nothing to prefill, however long.
    expect(isWarm(1, 100_000)).toBe(true);
  });
});

describe('queueHasRoom', () => {
  it('judges the queue alone: KV usage 0.95 is left out (the pool would read 0.95 / 0.8 = 1.19)', () => {
    const v = view({ waitingQueueSize: 4, kvCacheUsage: 0.95 });
    expect(detector([v])).toBeCloseTo(1.1875, 6);
    // waiting 4 / 5 = 0.8 < 1
    expect(queueHasRoom(v, 0, detector)).toBe(true);
  });

  it('counts in-transit and uncharged picks as waiting', () => {
    // inFlight 13 - running 10 = 3 routed and not yet scraped: waiting' = max(2, 3) = 3 -> 0.6
    expect(queueHasRoom(view({ waitingQueueSize: 2, inFlight: 13 }), 0, detector)).toBe(true);
    // + 2 uncharged picks: 15 - 10 = 5 -> 5 / 5 = 1, full
    expect(queueHasRoom(view({ waitingQueueSize: 2, inFlight: 13 }), 2, detector)).toBe(false);
    expect(queueHasRoom(view({ waitingQueueSize: 5 }), 0, detector)).toBe(false);
  });

  it('stale signals stay full', () => {
    expect(queueHasRoom(view({ waitingQueueSize: undefined, kvCacheUsage: undefined }), 0, detector)).toBe(
      false,
    );
    expect(queueHasRoom(view({ signalsAgeMs: 5_000 }), 0, detector)).toBe(false);
  });
});

describe('cachedShareOf', () => {
  const data = (over: Partial<CycleData>): CycleData => ({
    nowMs: 0,
    bucketLoads: new Map(),
    poolEvent: 0,
    hitRates: undefined,
    prefixMatches: undefined,
    prefixHashes: undefined,
    ...over,
  });
  it("is the indexer's hit rate, else the matched share of the hashed blocks", () => {
    expect(cachedShareOf(data({ hitRates: new Map([[ep.id, 0.7]]) }), ep.id)).toBe(0.7);
    const hashes = new Float64Array(8);
    // 6 of 8 blocks matched: 0.75
    expect(cachedShareOf(data({ prefixHashes: hashes, prefixMatches: new Map([[ep.id, 6]]) }), ep.id)).toBe(
      0.75,
    );
    expect(cachedShareOf(data({ prefixHashes: hashes, prefixMatches: new Map() }), ep.id)).toBe(0);
    expect(cachedShareOf(data({}), ep.id)).toBeUndefined();
  });
});

// A profile with GIE's approximate prefix cache (16-token blocks, 4 characters a
// token: 64 characters a block) and GIE's utilization detector.
const CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
- type: max-score-picker
- type: utilization-detector
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
saturationDetector: { pluginRef: utilization-detector }
`;

const prompt = (head: string, blocks: number) => head.repeat(64 * blocks).slice(0, 64 * blocks);
const req = completionsRequest;

async function setup() {
  const { store, flow } = await flowOverMemory(CONFIG, [ep]);
  const signals = (waiting: number, running: number, kv: number) =>
    store.writeSignals(ep.id, {
      waitingQueueSize: waiting,
      runningRequests: running,
      kvCacheUsage: kv,
      updatedAtMs: Date.now(),
    });
  return { flow, signals };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
function track(p: Promise<Decision>) {
  const out: { d?: Decision; e?: unknown } = {};
  p.then(
    (d) => (out.d = d),
    (e: unknown) => (out.e = e),
  );
  return out;
}

describe('FlowController: warm admission', () => {
  it('dispatches a warm request past a saturated pool, holds a cold one, refuses a warm sheddable one', async () => {
    const { flow, signals } = await setup();
    await signals(0, 0, 0.1);
    // Unsaturated: 10 blocks of conversation A are recorded on the endpoint.
    const a = prompt('a', 10);
    const first = await flow.pick(req('a1', a), undefined, { priority: 0, bytes: 1 });
    await first.ticket.release();
    // KV 0.9 / 0.8 = 1.125: saturated; running 1 = in flight 1, nothing in transit.
    await signals(0, 1, 0.9);
    // A's next turn: 10 of 12 blocks cached (0.83): warm, its queue 0 / 5: dispatched.
    const warm = await flow.pick(req('a2', a + prompt('x', 2)), undefined, { priority: 0, bytes: 1 });
    expect(warm.result.primary.endpoint.id).toBe(ep.id);
    // A cold conversation waits for the pool.
    const cold = track(flow.pick(req('b1', prompt('b', 12)), undefined, { priority: 0, bytes: 1 }));
    await settle();
    expect(cold.d).toBeUndefined();
    expect(flow.queued).toBe(1);
    // A warm request arriving behind it goes ahead of it.
    const overtaking = await flow.pick(req('a3', a + prompt('y', 2)), undefined, { priority: 0, bytes: 1 });
    expect(overtaking.result.primary.endpoint.id).toBe(ep.id);
    expect(flow.queued).toBe(1);
    // Warm but sheddable: refused (GIE's legacy shedding).
    await expect(
      flow.pick(req('a4', a + prompt('z', 2)), undefined, { priority: -1, bytes: 1 }),
    ).rejects.toMatchObject({ code: 'SATURATED' });
    // Its queue full (waiting 5 / 5): a warm request waits too.
    await signals(5, 3, 0.9);
    const full = track(flow.pick(req('a5', a + prompt('w', 2)), undefined, { priority: 0, bytes: 1 }));
    await settle();
    expect(full.d).toBeUndefined();
    expect(flow.queued).toBe(2);
    // Room again (KV 0.1, queue 0): both leave, the cold one first (FCFS).
    await signals(0, 3, 0.1);
    flow.kick();
    await settle();
    expect(cold.d).toBeDefined();
    expect(full.d).toBeDefined();
    expect(flow.queued).toBe(0);
  });

  it('behind a held cold head, a queued warm request leaves when its queue has room', async () => {
    const { flow, signals } = await setup();
    await signals(0, 0, 0.1);
    const a = prompt('a', 10);
    await (await flow.pick(req('a1', a), undefined, { priority: 0, bytes: 1 })).ticket.release();
    // Saturated with a full queue: everything waits.
    await signals(5, 0, 0.9);
    const cold = track(flow.pick(req('b1', prompt('b', 12)), undefined, { priority: 0, bytes: 1 }));
    const warm = track(flow.pick(req('a2', a + prompt('x', 2)), undefined, { priority: 0, bytes: 1 }));
    await settle();
    expect(flow.queued).toBe(2);
    // The queue drains but KV stays at 0.9: the pool is still saturated, the cold head held.
    await signals(0, 0, 0.9);
    flow.kick();
    await settle();
    expect(warm.d).toBeDefined();
    expect(cold.d).toBeUndefined();
    expect(flow.queued).toBe(1);
  });
});

describe('FlowController: warm admission bounds the prefill a warm request adds', () => {
  // 16-token blocks, the whole prompt hashed (1,024 blocks): the share is of the whole prompt.
  const LONG = CONFIG.replace(
    '- type: prefix-cache-scorer',
    '- type: prefix-cache-scorer\n  parameters: { blockSizeTokens: 16, maxPrefixBlocksToMatch: 1024 }',
  );

  it('holds a half-cached long prompt with more than 2,048 tokens to prefill, dispatches a shorter turn', async () => {
    const { store, flow } = await flowOverMemory(LONG, [ep]);
    const signals = (waiting: number, running: number, kv: number) =>
      store.writeSignals(ep.id, {
        waitingQueueSize: waiting,
        runningRequests: running,
        kvCacheUsage: kv,
        updatedAtMs: Date.now(),
      });
    await signals(0, 0, 0.1);
    // Conversation A: 200 blocks (3,200 tokens) recorded on the endpoint.
    const a = prompt('a', 200);
    await (await flow.pick(req('a1', a), undefined, { priority: 0, bytes: 1 })).ticket.release();
    // Saturated on KV (0.9 / 0.8), the queue empty (running 1 = in flight 1).
    await signals(0, 1, 0.9);
    // A + 140 blocks: 200 / 340 = 0.59 cached, (140 / 340) x 5,440 = 2,240 tokens to prefill > 2,048: held.
    const long = track(flow.pick(req('a2', a + prompt('x', 140)), undefined, { priority: 0, bytes: 1 }));
    await settle();
    expect(long.d).toBeUndefined();
    expect(flow.queued).toBe(1);
    // A + 120 blocks: 200 / 320 = 0.625 cached, (120 / 320) x 5,120 = 1,920 <= 2,048: warm, goes ahead.
    const short = await flow.pick(req('a3', a + prompt('y', 120)), undefined, { priority: 0, bytes: 1 });
    expect(short.result.primary.endpoint.id).toBe(ep.id);
    expect(flow.queued).toBe(1);
    // The pool below 1 again (KV 0.1): the held one leaves in turn.
    await signals(0, 2, 0.1);
    flow.kick();
    await settle();
    expect(long.d).toBeDefined();
    expect(flow.queued).toBe(0);
  });
});
