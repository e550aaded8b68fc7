import { describe, expect, it } from 'vitest';
import { scorerAggregateKvCacheAware as factory } from '../../../src/plugins/scorer-aggregate-kv-cache-aware.js';
import { build, ctx, endpoints, pdGroup, scoresOf, view } from './fixtures.js';

describe('scorer-aggregate-kv-cache-aware', () => {
  it('asks the cache-indexer at the documented default address, timeout in ns -> ms', () => {
    const p = build(factory);
    expect(p.dataNeeds?.indexer).toEqual({
      url: 'http://cache-indexer-service:8080/match_sort',
      timeoutMs: 5000,
    });
    const q = build(factory, {
      kvCacheManagerIP: 'fd00::7',
      kvCacheManagerPort: 9000,
      kvCacheManagerPath: '/x',
      kvCacheManagerTimeout: 50_000_000,
    });
    expect(q.dataNeeds?.indexer).toEqual({ url: 'http://[fd00::7]:9000/x', timeoutMs: 50 });
  });

  it('computes 1 - cost/maxPossibleCost on hand-computed values', () => {
    const a = view('a', { waiting: 2, usage: 0.2 });
    const b = view('b', { waiting: 4, usage: 0.5 });
    const c = view('c', { waiting: 0, usage: 0 });
    const cx = ctx({ hitRates: { [a.endpoint.id]: 0.8, [c.endpoint.id]: 0.5 } });
    // norm = max(1, 4) = 4; maxPossibleCost = 3
    // a: 0.2 + 0.2 + 2/4 = 0.9   b: 1 + 0.5 + 1 = 2.5 (no hit rate: 0)   c: 0.5 + 0 + 0 = 0.5
    const s = scoresOf(build(factory), cx, endpoints(a, b, c));
    expect(s[0]).toBeCloseTo(1 - 0.9 / 3, 12);
    expect(s[1]).toBeCloseTo(1 - 2.5 / 3, 12);
    expect(s[2]).toBeCloseTo(1 - 0.5 / 3, 12);
  });

  it('applies the weights to each term', () => {
    const a = view('a', { waiting: 2, usage: 0.2 });
    const b = view('b', { waiting: 4, usage: 0.5 });
    const cx = ctx({ hitRates: { [a.endpoint.id]: 0.8 } });
    const p = build(factory, {
      kvCacheHitNotRateWeight: 2,
      xpuCacheUsageWeight: 0,
      waitingRequestWeight: 0.5,
    });
    // maxPossibleCost = 2.5; a: 2*0.2 + 0 + 0.5*0.5 = 0.65; b: 2*1 + 0 + 0.5*1 = 2.5
    const s = scoresOf(p, cx, endpoints(a, b));
    expect(s[0]).toBeCloseTo(1 - 0.65 / 2.5, 12);
    expect(s[1]).toBeCloseTo(0, 12);
  });

  it('normalises waiting by max(1, max waiting): all idle => the term is 0', () => {
    const a = view('a', { waiting: 0, usage: 0 });
    const b = view('b', { waiting: 1, usage: 0 });
    const cx = ctx({ hitRates: {} });
    const [sa, sb] = scoresOf(build(factory), cx, endpoints(a, b));
    // a: 1 + 0 + 0 = 1, b: 1 + 0 + 1/1 = 2
    expect(sa).toBeCloseTo(1 - 1 / 3, 12);
    expect(sb).toBeCloseTo(1 - 2 / 3, 12);
  });

  it('indexer failure (hitRates undefined) counts hit 0 for everyone and still ranks by load', () => {
    const a = view('a', { waiting: 3, usage: 0.9 });
    const b = view('b', { waiting: 0, usage: 0.1 });
    const s = scoresOf(build(factory), ctx({ hitRates: undefined }), endpoints(a, b));
    expect(s[0]).toBeCloseTo(1 - (1 + 0.9 + 1) / 3, 12);
    expect(s[1]).toBeCloseTo(1 - (1 + 0.1 + 0) / 3, 12);
    expect(s[1]).toBeGreaterThan(s[0]!);
  });

  it('unknown signals count the neutral 0.5 per term, never zero load, and are left out of the norm', () => {
    const known = view('k', { waiting: 2, usage: 0.9 });
    const idle = view('i', { waiting: 0, usage: 0 });
    const stale = view('s', { unknown: true });
    const s = scoresOf(build(factory), ctx({ hitRates: {} }), endpoints(known, idle, stale));
    // norm = 2: stale: 1 + 0.5 + 0.5 = 2; known: 1 + 0.9 + 1 = 2.9; idle: 1
    expect(s[2]).toBeCloseTo(1 - 2 / 3, 12);
    expect(s[0]).toBeCloseTo(1 - 2.9 / 3, 12);
    expect(s[2]).toBeLessThan(s[1]!); // an unknown endpoint is not taken for idle
    expect(s[2]).toBeGreaterThan(0); // and it stays eligible
  });

  it('gives every candidate 1 when all weights are 0', () => {
    const p = build(factory, { kvCacheHitNotRateWeight: 0, xpuCacheUsageWeight: 0, waitingRequestWeight: 0 });
    expect(scoresOf(p, ctx(), endpoints(view('a', { usage: 1, waiting: 9 }), view('b')))).toEqual([1, 1]);
  });

  it('scores nothing on an empty candidate set and PD groups neutrally', () => {
    const p = build(factory);
    expect(scoresOf(p, ctx(), [])).toEqual([]);
    const g = pdGroup('g1');
    expect(scoresOf(p, ctx(), [{ kind: 'group', id: 'g1', group: { id: 'g1', ...g } }])).toEqual([0.5]);
  });

  it('rejects bad parameters', () => {
    const bad = [
      { kvCacheHitNotRateWeight: 'high' },
      { xpuCacheUsageWeight: -1 },
      { kvCacheManagerPort: 0 },
      { kvCacheManagerTimeout: 1.5 },
      { kvCacheManagerPath: 'match_sort' },
      { waitingWeight: 1 },
    ];
    for (const params of bad)
      expect(factory.parameters.safeParse(params).success, JSON.stringify(params)).toBe(false);
  });
});

describe('scorer-aggregate-kv-cache-aware optional waiting signal', () => {
  it('defaults to the documented formula: scraped waiting, norm max(1, max waiting)', () => {
    const parsed = factory.parameters.parse({});
    expect(parsed.waitingFromInFlight).toBe(false);
    expect(parsed.waitingNormFloor).toBe(1);
    // In-flight requests beyond running are ignored by default.
    const a = view('a', { waiting: 0, running: 1, inFlight: 5 });
    const b = view('b', { waiting: 0, running: 0 });
    const [sa, sb] = scoresOf(build(factory), ctx({ hitRates: {} }), endpoints(a, b));
    expect(sa).toBeCloseTo(sb!, 12);
  });

  it('waitingNormFloor: norm = max(floor, max waiting)', () => {
    const a = view('a', { waiting: 1, usage: 0 });
    const b = view('b', { waiting: 0, usage: 0 });
    const cx = ctx({ hitRates: { [a.endpoint.id]: 0.8 } });
    // Default: norm 1. a: 0.2 + 0 + 1 = 1.2; b: 1 + 0 + 0 = 1 -> b wins (busy holder loses).
    const [da, db] = scoresOf(build(factory), cx, endpoints(a, b));
    expect(da).toBeCloseTo(1 - 1.2 / 3, 12);
    expect(db).toBeCloseTo(1 - 1 / 3, 12);
    // Floor 4: a: 0.2 + 1/4 = 0.45 -> the prefix holder wins.
    const [fa, fb] = scoresOf(build(factory, { waitingNormFloor: 4 }), cx, endpoints(a, b));
    expect(fa).toBeCloseTo(1 - 0.45 / 3, 12);
    expect(fb).toBeCloseTo(1 - 1 / 3, 12);
    // Above the floor the max still normalises: waiting 10 vs 5 -> 1 and 0.5.
    const c = view('c', { waiting: 10 });
    const d = view('d', { waiting: 5 });
    const [sc, sd] = scoresOf(
      build(factory, { waitingNormFloor: 4 }),
      ctx({ hitRates: {} }),
      endpoints(c, d),
    );
    expect(sc).toBeCloseTo(1 - 2 / 3, 12);
    expect(sd).toBeCloseTo(1 - 1.5 / 3, 12);
  });

  it('waitingFromInFlight: waiting = max(scraped waiting, inFlight - running)', () => {
    const a = view('a', { waiting: 1, running: 2, inFlight: 6 }); // est 4
    const b = view('b', { waiting: 3, running: 4, inFlight: 5 }); // est 3 (scraped wins)
    const c = view('c', { waiting: 0, running: 3, inFlight: 1 }); // est 0 (finished since scrape)
    const stale = view('s', { unknown: true, inFlight: 9 }); // unknown stays neutral
    const p = build(factory, { waitingFromInFlight: true });
    const s = scoresOf(p, ctx({ hitRates: {} }), endpoints(a, b, c, stale));
    // norm = max(1, 4, 3, 0) = 4; costs: a 1 + 1, b 1 + 0.75, c 1 + 0, stale 1 + 0.5 + 0.5
    expect(s[0]).toBeCloseTo(1 - 2 / 3, 12);
    expect(s[1]).toBeCloseTo(1 - 1.75 / 3, 12);
    expect(s[2]).toBeCloseTo(1 - 1 / 3, 12);
    expect(s[3]).toBeCloseTo(1 - 2 / 3, 12);
  });

  it('rejects a floor below 1 and a non-boolean switch', () => {
    expect(() => factory.parameters.parse({ waitingNormFloor: 0.5 })).toThrow(/>= 1/);
    expect(() => factory.parameters.parse({ waitingFromInFlight: 'yes' })).toThrow(/true or false/);
  });
});
