// Pod events: each kind of change reaches onChange as the full set within a second.
import { afterEach, describe, expect, it } from 'vitest';
import { LABELS, startHarness, type Harness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('KubernetesSource pod events', () => {
  it('publishes the initial set: ready pods with an IP, labels copied', async () => {
    h = await startHarness();
    expect(h.sets).toEqual([[]]); // synced, empty pool: exactly one publication
    h.pod({
      name: 'p0',
      ip: '10.1.0.1',
      labels: { ...LABELS, 'openfuyao.com/pdRole': 'prefill', 'openfuyao.com/pdGroupID': 'g1' },
    });
    h.pod({ name: 'pending', labels: LABELS, ready: false }); // no IP, not ready
    h.pod({ name: 'other', ip: '10.1.0.9', labels: { app: 'something-else' } });
    await h.waitFor((eps) => eps.length === 1);
    expect(h.latest()).toEqual([
      {
        id: '10.1.0.1:8000',
        name: 'p0',
        address: '10.1.0.1',
        port: 8000,
        labels: { ...LABELS, 'openfuyao.com/pdRole': 'prefill', 'openfuyao.com/pdGroupID': 'g1' },
        kvEventsPort: 5557,
      },
    ]);
  });

  it('pod added: appears within a second', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    const took = await h.waitFor((eps) => eps.length === 2);
    expect(h.ids()).toEqual(['10.1.0.1:8000', '10.1.0.2:8000']);
    expect(took).toBeLessThan(1_000);
    // Debounced and deduplicated: no set was published twice in a row.
    for (let i = 1; i < h.sets.length; i++) expect(h.sets[i]).not.toEqual(h.sets[i - 1]);
  });

  it('pod turns unready (Ready=False, then deletionTimestamp): leaves the set', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS, ready: false });
    await h.waitFor((eps) => eps.length === 1);
    expect(h.ids()).toEqual(['10.1.0.2:8000']);
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS, ready: true });
    await h.waitFor((eps) => eps.length === 2);
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS, deleting: true }); // still Ready=True, but terminating
    await h.waitFor((eps) => eps.length === 1);
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
  });

  it('pod deleted: leaves the set', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    h.api.deletePod('ai-inference', 'p1');
    const took = await h.waitFor((eps) => eps.length === 1);
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
    expect(took).toBeLessThan(1_000);
  });

  it('pod labels no longer match the selector: leaves the set (watch sends DELETED)', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: { app: 'retired' } });
    await h.waitFor((eps) => eps.length === 1);
    expect(h.ids()).toEqual(['10.1.0.1:8000']);
    // And back: labels matching again bring it back.
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: { ...LABELS, extra: 'x' } });
    await h.waitFor((eps) => eps.length === 2);
    expect(h.latest().find((e) => e.name === 'p1')?.labels).toEqual({ ...LABELS, extra: 'x' });
  });

  it('pod IP change: the endpoint moves', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    h.pod({ name: 'p0', ip: '10.1.0.7', labels: LABELS });
    await h.waitFor((eps) => eps[0]?.id === '10.1.0.7:8000');
    expect(h.latest()).toHaveLength(1);
  });
});
