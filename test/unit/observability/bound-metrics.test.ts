// The bound families must expose exactly what prom-client's own metrics
// expose for the same calls: same lines, same order, same values.
import fc from 'fast-check';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundGauge, BoundHistogram } from '../../../src/observability/bound-metrics.js';

const BUCKETS = [0.5, 1, 2, 8];
const LABELS = ['model_name', 'target_model_name'] as const;

/** One call: which label set (index into a small pool of values) and the value observed. */
const calls = fc.array(
  fc.record({
    set: fc.integer({ min: 0, max: 3 }),
    value: fc.oneof(fc.constantFrom(0, 0.5, 1, 2, 8, 9), fc.double({ min: 0, max: 20, noNaN: true })),
    dec: fc.boolean(),
  }),
  { maxLength: 40 },
);
// Label values the registry must escape, and one that looks like a number.
const VALUES = ['llama', 'other', 'a"b\\c\nd', '7'];

function registries() {
  const stock = new Registry();
  const bound = new Registry();
  return { stock, bound };
}

describe('bound metrics expose what prom-client exposes', () => {
  it('labelled histogram, counter and gauge, for any sequence of calls', async () => {
    await fc.assert(
      fc.asyncProperty(calls, async (cs) => {
        const { stock, bound } = registries();
        const h = new Histogram({
          name: 'h',
          help: 'help h',
          labelNames: LABELS,
          buckets: BUCKETS,
          registers: [stock],
        });
        const c = new Counter({
          name: 'c_total',
          help: 'help c',
          labelNames: [...LABELS, 'priority'],
          registers: [stock],
        });
        const g = new Gauge({ name: 'g', help: 'help g', labelNames: ['model_name'], registers: [stock] });
        const bh = new BoundHistogram('h', 'help h', LABELS, BUCKETS, bound);
        const bc = new BoundCounter('c_total', 'help c', [...LABELS, 'priority'], bound);
        const bg = new BoundGauge('g', 'help g', ['model_name'], bound);
        for (const { set, value, dec } of cs) {
          const v = VALUES[set]!;
          h.observe({ model_name: v, target_model_name: v }, value);
          bh.child(v, v).observe(value);
          c.inc({ model_name: v, target_model_name: v, priority: String(set) });
          bc.child(v, v, String(set)).inc();
          if (dec) {
            g.dec({ model_name: v });
            bg.child(v).dec();
          } else {
            g.inc({ model_name: v });
            bg.child(v).inc();
          }
        }
        expect(await bound.metrics()).toBe(await stock.metrics());
        expect(await bound.getMetricsAsJSON()).toEqual(await stock.getMetricsAsJSON());
      }),
      { numRuns: 200 },
    );
  });

  it('families without labels are exposed from zero, and after observations', async () => {
    const { stock, bound } = registries();
    const h = new Histogram({ name: 'e2e', help: 'x', buckets: [0.001, 0.01], registers: [stock] });
    const g = new Gauge({ name: 'open', help: 'y', registers: [stock] });
    const c = new Counter({ name: 'n_total', help: 'z', registers: [stock] });
    const bh = new BoundHistogram('e2e', 'x', [], [0.001, 0.01], bound);
    const bg = new BoundGauge('open', 'y', [], bound);
    const bc = new BoundCounter('n_total', 'z', [], bound);
    expect(await bound.metrics()).toBe(await stock.metrics());
    h.observe(0.005);
    bh.child().observe(0.005);
    h.observe(1);
    bh.child().observe(1);
    g.inc();
    g.inc();
    g.dec();
    bg.child().inc();
    bg.child().inc();
    bg.child().dec();
    c.inc();
    bc.child().inc();
    const text = await bound.metrics();
    expect(text).toBe(await stock.metrics());
    // Hand-computed: 0.005 is in the 0.01 bucket, 1 only in +Inf.
    expect(text).toContain(
      'e2e_bucket{le="0.001"} 0\ne2e_bucket{le="0.01"} 1\ne2e_bucket{le="+Inf"} 2\ne2e_sum 1.005\ne2e_count 2',
    );
    expect(text).toContain('open 1');
  });

  it('a child is the same series every time; reset empties labelled families and zeroes unlabelled ones', async () => {
    const { stock, bound } = registries();
    const c = new Counter({ name: 'c_total', help: 'c', labelNames: ['status'], registers: [stock] });
    const u = new Counter({ name: 'u_total', help: 'u', registers: [stock] });
    const bc = new BoundCounter('c_total', 'c', ['status'], bound);
    const bu = new BoundCounter('u_total', 'u', [], bound);
    expect(bc.child('ok')).toBe(bc.child('ok'));
    c.inc({ status: 'ok' });
    bc.child('ok').inc();
    u.inc();
    bu.child().inc();
    stock.resetMetrics();
    bound.resetMetrics();
    expect(await bound.metrics()).toBe(await stock.metrics());
    c.inc({ status: 'failure' });
    bc.child('failure').inc();
    expect(await bound.metrics()).toBe(await stock.metrics());
  });

  it('refuses what prom-client refuses: a non-finite observation, a wrong number of labels', () => {
    const bound = new Registry();
    const h = new BoundHistogram('h', 'h', ['a'], [1], bound);
    expect(() => h.child('x').observe(Number.NaN)).toThrow(TypeError);
    expect(() => h.child()).toThrow(/expected labels a/);
  });
});
