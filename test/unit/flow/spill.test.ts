// Spill (flow-controller.ts, SPILL_ABOVE_PRIORITY): a request above priority 0
// whose scheduled endpoint is saturated on its own is scheduled once more
// without it; priority 0 keeps its cache affinity.
import { describe, expect, it } from 'vitest';
import type { Endpoint, LLMRequest } from '../../../src/scheduling/types.js';
import { completionsRequest, flowOverMemory } from './flow-fixture.js';

const a: Endpoint = { id: '10.0.0.1:8000', name: 'pod-a', address: '10.0.0.1', port: 8000, labels: {} };
const b: Endpoint = { id: '10.0.0.2:8000', name: 'pod-b', address: '10.0.0.2', port: 8000, labels: {} };

// GIE's approximate prefix cache (16-token blocks, 4 characters a token) and its utilization detector.
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

const text = 'x'.repeat(64 * 8);
const req = (id: string): LLMRequest => completionsRequest(id, text);

async function setup() {
  const { store, flow } = await flowOverMemory(CONFIG, [a, b]);
  const signals = (e: Endpoint, waiting: number, kv: number) =>
    store.writeSignals(e.id, {
      waitingQueueSize: waiting,
      runningRequests: 0,
      kvCacheUsage: kv,
      updatedAtMs: Date.now(),
    });
  await signals(a, 0, 0.1);
  await signals(b, 0, 0.1);
  // The prompt's blocks are on A (a first pick restricted to it), and charged there.
  const first = await flow.pick(req('seed'), { candidates: (e) => e.id === a.id }, { priority: 0, bytes: 1 });
  await first.ticket.release();
  return { flow, signals };
}

describe('FlowController: spill', () => {
  it('a priority-10 request leaves its saturated cached endpoint for one with room', async () => {
    const { flow, signals } = await setup();
    // A: waiting 5 / 5 = 1 on its own (saturated); B: kv 0.1 / 0.8 = 0.125.
    // Pool: (1 + 0.125) / 2 = 0.5625 < 1, not saturated: both are admitted in turn.
    await signals(a, 5, 0.1);
    await signals(b, 0, 0.1);
    const high = await flow.pick(req('h'), undefined, { priority: 10, bytes: 1 });
    expect(high.result.primary.endpoint.id).toBe(b.id);
    await high.ticket.release();
  });

  it('priority 0 stays on its cached endpoint however full its queue', async () => {
    const { flow, signals } = await setup();
    await signals(a, 5, 0.1);
    await signals(b, 0, 0.1);
    const normal = await flow.pick(req('n'), undefined, { priority: 0, bytes: 1 });
    expect(normal.result.primary.endpoint.id).toBe(a.id);
    await normal.ticket.release();
  });

  it('with its endpoint below the bar (waiting 4 / 5 = 0.8) a priority-10 request keeps its cache', async () => {
    const { flow, signals } = await setup();
    await signals(a, 4, 0.1);
    await signals(b, 0, 0.1);
    const high = await flow.pick(req('h'), undefined, { priority: 10, bytes: 1 });
    expect(high.result.primary.endpoint.id).toBe(a.id);
    await high.ticket.release();
  });

  it('nowhere else to go: held in the queue, not failed', async () => {
    const { flow, signals } = await setup();
    // Only A is a candidate; spilling leaves none: the request waits like any held one.
    await signals(a, 5, 0.1);
    await signals(b, 0, 0.1);
    let settled = false;
    const p = flow.pick(req('h'), { candidates: (e) => e.id === a.id }, { priority: 10, bytes: 1 });
    p.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    expect(flow.queued).toBe(1);
    flow.close();
    await expect(p).rejects.toMatchObject({ status: 429, reason: 'shutdown' });
  });
});
