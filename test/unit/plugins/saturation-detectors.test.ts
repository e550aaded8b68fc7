import { describe, expect, it } from 'vitest';
import { concurrencyDetector } from '../../../src/plugins/concurrency-detector.js';
import { utilizationDetector } from '../../../src/plugins/utilization-detector.js';
import { build, ctx, endpoints, view } from './fixtures.js';

const ids = (cs: ReturnType<typeof endpoints>) => cs.map((c) => c.id);

describe('utilization-detector', () => {
  const d = build(utilizationDetector);

  it('pool saturation is the mean of max(queue/5, kv/0.8)', () => {
    // a: max(1/5, 0.4/0.8) = 0.5; b: max(10/5, 0.2/0.8) = 2; mean 1.25
    expect(
      d.saturation!([view('a', { waiting: 1, usage: 0.4 }), view('b', { waiting: 10, usage: 0.2 })]),
    ).toBe(1.25);
    // a: max(2/5, 0.6/0.8) = 0.75; b: max(4/5, 0) = 0.8; mean 0.775
    expect(
      d.saturation!([view('a', { waiting: 2, usage: 0.6 }), view('b', { waiting: 4, usage: 0 })]),
    ).toBeCloseTo(0.775, 12);
  });

  it('unknown or stale signals count as full; no candidates is saturated', () => {
    expect(d.saturation!([view('a', { unknown: true }), view('b', { waiting: 0, usage: 0 })])).toBe(0.5);
    const stale = { ...view('s', { waiting: 0, usage: 0 }), signalsAgeMs: 201 };
    expect(d.saturation!([stale])).toBe(1);
    expect(d.saturation!([])).toBe(1);
  });

  it('takes GIE parameters, durations as strings', () => {
    const custom = build(utilizationDetector, {
      queueDepthThreshold: 10,
      kvCacheUtilThreshold: 0.5,
      metricsStalenessThreshold: '1s',
    });
    const old = { ...view('o', { waiting: 5, usage: 0.1 }), signalsAgeMs: 900 };
    expect(custom.saturation!([old])).toBe(0.5); // max(5/10, 0.1/0.5=0.2), still fresh at 900 ms
    expect(() => build(utilizationDetector, { kvCacheUtilThreshold: 1.5 })).toThrow(/\(0, 1\]/);
    expect(() => build(utilizationDetector, { metricsStalenessThreshold: 'soon' })).toThrow(/duration/);
  });

  it('as a filter drops stale and over-threshold endpoints, with headroom, never all', () => {
    const f = build(utilizationDetector, { headroom: 0.2 });
    const ok = view('ok', { waiting: 5, usage: 0.9 }); // 5 < 6, 0.9 < 0.96
    const q = view('q', { waiting: 6 }); // 6 >= 5 x 1.2
    const kv = view('kv', { usage: 0.96 }); // 0.96 >= 0.8 x 1.2
    const stale = view('stale', { unknown: true });
    const cs = endpoints(ok, q, kv, stale);
    expect(ids(f.filter!(ctx(), cs))).toEqual([ok.endpoint.id]);
    const all = endpoints(q, stale);
    expect(ids(f.filter!(ctx(), all))).toEqual(ids(all));
  });
});

describe('concurrency-detector', () => {
  it('pool saturation is in-flight over maxConcurrency x endpoints', () => {
    const d = build(concurrencyDetector, { maxConcurrency: 4 });
    // (3 + 5) / (4 x 2) = 1
    expect(d.saturation!([view('a', { inFlight: 3 }), view('b', { inFlight: 5 })])).toBe(1);
    expect(d.saturation!([view('a', { inFlight: 1 }), view('b', { inFlight: 1 })])).toBe(0.25);
    expect(d.saturation!([])).toBe(1);
  });

  it('filters endpoints at maxConcurrency x (1 + headroom), never all', () => {
    const f = build(concurrencyDetector, { maxConcurrency: 10, headroom: 0.5 });
    const a = view('a', { inFlight: 14 });
    const b = view('b', { inFlight: 15 });
    expect(ids(f.filter!(ctx(), endpoints(a, b)))).toEqual([a.endpoint.id]);
    expect(ids(f.filter!(ctx(), endpoints(b)))).toEqual([b.endpoint.id]);
  });

  it('limits the filter at trunc(capacity x (1 + headroom)), as GIE does', () => {
    // 100 x 1.015 = 101.5, truncated to 101: 101 in flight is at the limit.
    const f = build(concurrencyDetector, { maxConcurrency: 100, headroom: 0.015 });
    const a = view('a', { inFlight: 100 });
    const b = view('b', { inFlight: 101 });
    expect(ids(f.filter!(ctx(), endpoints(a, b)))).toEqual([a.endpoint.id]);
  });

  it('requests mode ignores pending prefill tokens', () => {
    const d = build(concurrencyDetector, { maxConcurrency: 10 });
    // 2 / (10 x 1) = 0.2, whatever the tokens
    expect(d.saturation!([view('a', { inFlight: 2, pendingPrefillTokens: 5_000_000 })])).toBe(0.2);
  });

  it('tokens mode: pool saturation is pending prefill tokens over maxTokenConcurrency x endpoints', () => {
    const d = build(concurrencyDetector, { concurrencyMode: 'tokens', maxTokenConcurrency: 1000 });
    // (300 + 900) / (1000 x 2) = 0.6; the in-flight request counts do not enter
    expect(
      d.saturation!([
        view('a', { pendingPrefillTokens: 300, inFlight: 50 }),
        view('b', { pendingPrefillTokens: 900, inFlight: 50 }),
      ]),
    ).toBe(0.6);
    // (0 + 2500) / 2000 = 1.25: over capacity
    expect(
      d.saturation!([view('a', { pendingPrefillTokens: 0 }), view('b', { pendingPrefillTokens: 2500 })]),
    ).toBe(1.25);
    expect(d.saturation!([])).toBe(1);
    // GIE's default capacity, 1 000 000 tokens per endpoint: 250 000 / 1 000 000
    const byDefault = build(concurrencyDetector, { concurrencyMode: 'tokens' });
    expect(byDefault.saturation!([view('a', { pendingPrefillTokens: 250_000 })])).toBe(0.25);
  });

  it('tokens mode: filters endpoints at trunc(maxTokenConcurrency x (1 + headroom)) tokens, never all', () => {
    // 1000 x 1.25 = 1250 tokens
    const f = build(concurrencyDetector, {
      concurrencyMode: 'tokens',
      maxTokenConcurrency: 1000,
      headroom: 0.25,
    });
    const a = view('a', { pendingPrefillTokens: 1249, inFlight: 500 });
    const b = view('b', { pendingPrefillTokens: 1250 });
    expect(ids(f.filter!(ctx(), endpoints(a, b)))).toEqual([a.endpoint.id]);
    expect(ids(f.filter!(ctx(), endpoints(b)))).toEqual([b.endpoint.id]);
    // 3 x 1.5 = 4.5, truncated to 4: 4 tokens is at the limit, 3 is under
    const small = build(concurrencyDetector, {
      concurrencyMode: 'tokens',
      maxTokenConcurrency: 3,
      headroom: 0.5,
    });
    const c3 = view('c3', { pendingPrefillTokens: 3 });
    const c4 = view('c4', { pendingPrefillTokens: 4 });
    expect(ids(small.filter!(ctx(), endpoints(c3, c4)))).toEqual([c3.endpoint.id]);
  });

  it('refuses modes GIE does not define and out-of-range capacities', () => {
    expect(() => build(concurrencyDetector, { concurrencyMode: 'hybrid' })).toThrow(
      /expected concurrencyMode .*requests.* or .*tokens/,
    );
    expect(() => build(concurrencyDetector, { maxConcurrency: 0 })).toThrow(/maxConcurrency > 0/);
    expect(() => build(concurrencyDetector, { maxTokenConcurrency: 0 })).toThrow(/maxTokenConcurrency > 0/);
    expect(() => build(concurrencyDetector, { maxTokenConcurrency: 1.5 })).toThrow(/integer/);
  });
});
