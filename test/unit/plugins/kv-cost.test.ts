// The KV cost model's terms and the knobs the routing benchmark varies.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KV_COST,
  BOUND_SPARE_USAGE,
  affinityBound,
  candidatesAffinityBound,
  candidatesImbalanced,
  copyCost,
  costsToScores,
  hasRoom,
  imbalanced,
  kvCost,
  kvCostTerms,
  pastBound,
  waitingEstimate,
} from '../../../src/plugins/kv-cost.js';
import { view } from './fixtures.js';
import type { Candidate, EndpointView } from '../../../src/scheduling/types.js';

const W = { miss: 1, usage: 1, wait: 1 };

describe('kv-cost', () => {
  it('reads waiting as max(scraped, inFlight - running), or the scrape alone when asked', () => {
    expect(waitingEstimate(view('a', { waiting: 2, inFlight: 9, running: 3 }))).toBe(6);
    expect(waitingEstimate(view('a', { waiting: 7, inFlight: 9, running: 3 }))).toBe(7);
    expect(waitingEstimate(view('a', { waiting: 2, inFlight: 9, running: 3 }), false)).toBe(2);
    expect(waitingEstimate(view('a', { unknown: true, inFlight: 4 }))).toBeUndefined();
  });

  it('puts every term in tokens of the prompt', () => {
    const v = view('a', { waiting: 3, usage: 0.5 });
    expect(kvCostTerms(v, 1000, 0.75)).toEqual({ miss: 250, usage: 500, queue: 750 });
    expect(kvCost({ miss: 2, usage: 0, wait: 0.5 }, v, 1000, 0.75)).toBe(500 + 375);
  });

  it('applies the benchmark knobs', () => {
    const v = view('a', { waiting: 2, usage: 0.5, pendingPrefillTokens: 900 });
    const m = DEFAULT_KV_COST;
    expect(kvCostTerms(v, 1000, 0.5, { ...m, queueAtFullLength: true }).queue).toBe(2000);
    expect(kvCostTerms(v, 1000, 0.5, { ...m, queueFrom: 'pending' }).queue).toBe(900);
    expect(kvCostTerms(v, 1000, 0.5, { ...m, queueFrom: 'max' }).queue).toBe(1000);
    expect(kvCostTerms(v, 1000, 0.5, { ...m, usagePower: 2 }).usage).toBe(250);
    expect(kvCostTerms(v, 1000, 0.5, { ...m, usageOnMiss: true }).usage).toBe(250);
    expect(kvCostTerms(v, 1000, 0.5, { ...m, duplication: 1 }).miss).toBe(1000);
    // The product's model reads the waiting queue, not the outstanding prefill tokens.
    expect(kvCostTerms(v, 1000, 0.5).queue).toBe(1000);
    expect(kvCost(W, view('b', { pendingPrefillTokens: 1e6 }), 10, 0)).toBe(10);
  });

  it('reads a new prefix queue as the knob says, only when no candidate holds any of it', () => {
    // 2 waiting, 5 in flight, 900 pending prefill tokens, a 1000-token prompt nobody holds.
    const v = view('a', { waiting: 2, running: 3, inFlight: 5, usage: 0.5, pendingPrefillTokens: 900 });
    const m = DEFAULT_KV_COST;
    expect(kvCostTerms(v, 1000, 0, { ...m, newPrefixQueue: 'inflight' }, 0).queue).toBe(5000);
    expect(kvCostTerms(v, 1000, 0, { ...m, newPrefixQueue: 'pending' }, 0).queue).toBe(900);
    expect(kvCostTerms(v, 1000, 0, { ...m, newPrefixQueue: 'max' }, 0).queue).toBe(2000);
    // Another candidate holds 40%: the pick is not a new prefix, the waiting queue counts (2 x 1000).
    expect(kvCostTerms(v, 1000, 0, { ...m, newPrefixQueue: 'inflight' }, 0.4).queue).toBe(2000);
    expect(kvCostTerms(v, 1000, 0, m, 0).queue).toBe(2000);
  });

  it('reads the hit before the bound where the knobs say (copyPriceOwnRawHit, boundQueueAtRawHit)', () => {
    const m = { ...DEFAULT_KV_COST, copyPrice: 30, copyUsagePower: 3 };
    // A holder past the bound: hit 0 for the pick, 0.8 before it; best raw hit 0.8; 2 waiting.
    const v = view('a', { usage: 0.5, waiting: 2 });
    // Product: it pays for a copy of itself, 1000 + 30 x 0.5^3 x (0.8 - 0) x 1000 = 4000,
    // and its queue is counted at the bound's miss, 2 x 1000.
    expect(kvCostTerms(v, 1000, 0, m, 0.8, 0.8).miss).toBeCloseTo(4000, 9);
    expect(kvCostTerms(v, 1000, 0, m, 0.8, 0.8).queue).toBe(2000);
    // Own raw hit: copy = 30 x 0.125 x (0.8 - 0.8) x 1000 = 0, miss 1000.
    expect(kvCostTerms(v, 1000, 0, { ...m, copyPriceOwnRawHit: true }, 0.8, 0.8).miss).toBe(1000);
    // Queue at the raw hit: 2 x (1 - 0.8) x 1000 = 400.
    expect(kvCostTerms(v, 1000, 0, { ...m, boundQueueAtRawHit: true }, 0.8, 0.8).queue).toBeCloseTo(400, 9);
  });

  it('prices a prefix copy by the target KV usage (hand-computed)', () => {
    const m = { ...DEFAULT_KV_COST, copyPrice: 30, copyUsagePower: 3 };
    // Another candidate holds 80% of a 1000-token prompt, this one 20%, usage 0.5:
    // 30 x 0.5^3 x (0.8 - 0.2) x 1000 = 30 x 0.125 x 600 = 2250 tokens.
    const v = view('a', { usage: 0.5 });
    expect(copyCost(v, 1000, 0.2, 0.8, m)).toBeCloseTo(2250, 9);
    // Added to the miss term (then weighed by the miss weight): 800 + 2250.
    expect(kvCostTerms(v, 1000, 0.2, m, 0.8).miss).toBeCloseTo(3050, 9);
    expect(kvCost({ miss: 2, usage: 0, wait: 0 }, v, 1000, 0.2, m, 0.8)).toBeCloseTo(6100, 9);
    // Nothing for the best holder itself, nothing without a holder, nothing on an empty cache.
    expect(copyCost(v, 1000, 0.8, 0.8, m)).toBe(0);
    expect(copyCost(v, 1000, 0, 0, m)).toBe(0);
    expect(copyCost(view('b', { usage: 0 }), 1000, 0, 0.8, m)).toBe(0);
    // Unknown usage counts its neutral 0.5; price 0 turns the term off.
    expect(copyCost(view('c', { unknown: true }), 1000, 0.2, 0.8, m)).toBeCloseTo(2250, 9);
    expect(copyCost(v, 1000, 0.2, 0.8, { ...m, copyPrice: 0 })).toBe(0);
  });

  it('reads the bound and the imbalance off candidates as off their endpoint list, bit for bit', () => {
    const asCandidates = (vs: EndpointView[]): Candidate[] =>
      vs.map((v) => ({ kind: 'endpoint', id: v.endpoint.id, endpoint: v }));
    // A group candidate (PD) is not an endpoint: left out of both, as the scorer's list left it out.
    const group = { kind: 'group', id: 'g' } as unknown as Candidate;
    const models = [
      DEFAULT_KV_COST,
      { ...DEFAULT_KV_COST, relativeBound: 0 },
      { ...DEFAULT_KV_COST, boundRoomUsage: 0.9 },
      { ...DEFAULT_KV_COST, imbalanceGuard: 3 },
    ];
    for (let n = 0; n <= 7; n++) {
      const vs = Array.from({ length: n }, (_, i) =>
        view(`e${i}`, { inFlight: (i * 7919) % 13, waiting: i % 3, usage: ((i * 37) % 10) / 10 }),
      );
      const cs = asCandidates(vs);
      if (n > 2) cs.splice(1, 0, group);
      for (const m of models) {
        expect(Object.is(candidatesAffinityBound(cs, m), affinityBound(vs, m))).toBe(true);
        expect(candidatesImbalanced(cs, m)).toBe(imbalanced(vs, m));
      }
    }
  });

  it('guards on in-flight imbalance only when asked', () => {
    const vs = [view('a', { inFlight: 40 }), view('b', { inFlight: 5 })];
    expect(imbalanced(vs, DEFAULT_KV_COST)).toBe(false);
    expect(imbalanced(vs, { ...DEFAULT_KV_COST, imbalanceGuard: 32 })).toBe(true);
    expect(imbalanced(vs, { ...DEFAULT_KV_COST, imbalanceGuard: 35 })).toBe(false);
  });

  it('bounds affinity relative to the mean in-flight count, for congested endpoints only (hand-computed)', () => {
    const m = {
      ...DEFAULT_KV_COST,
      relativeBound: 0.15,
      boundSlack: 8,
      boundGate: 'scraped' as const,
      boundSpareFullUsage: 0,
    };
    // mean (10 + 30) / 2 = 20 -> bound 1.15 * 20 + 8 = 31 requests.
    const vs = [view('a', { inFlight: 10 }), view('b', { inFlight: 30 })];
    expect(affinityBound(vs, m)).toBeCloseTo(31, 12);
    expect(affinityBound(vs, { ...m, relativeBound: 0 })).toBe(Infinity);
    expect(affinityBound([vs[0]!], m)).toBe(Infinity);
    // Past the bound only while requests wait in the scraped queue ('scraped' gate).
    expect(pastBound(view('c', { inFlight: 32, waiting: 1 }), 31, m)).toBe(true);
    expect(pastBound(view('c', { inFlight: 32, waiting: 0, running: 20 }), 31, m)).toBe(false);
    expect(pastBound(view('c', { inFlight: 31, waiting: 5 }), 31, m)).toBe(false);
    // 'waiting' gate: the router's estimate max(scraped waiting, inFlight - running) counts.
    expect(pastBound(view('c', { inFlight: 32, running: 20 }), 31, { ...m, boundGate: 'waiting' })).toBe(
      true,
    );
    expect(pastBound(view('c', { inFlight: 32, usage: 0.95 }), 31, { ...m, boundGate: 'usage' })).toBe(true);
    expect(pastBound(view('c', { inFlight: 32, usage: 0.5 }), 31, { ...m, boundGate: 'usage' })).toBe(false);
    expect(pastBound(view('c', { inFlight: 32 }), 31, { ...m, boundGate: 'none' })).toBe(true);
  });

  it('spares holders at high KV usage, and fires only while a candidate has room, when asked (hand-computed)', () => {
    // The product leaves the spare rule off; bench variant kv-r5-sp8 spares a holder at usage >= 0.8.
    expect(DEFAULT_KV_COST.boundSpareFullUsage).toBe(0);
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.9 }), 31, DEFAULT_KV_COST)).toBe(true);
    const m = { ...DEFAULT_KV_COST, boundSpareFullUsage: BOUND_SPARE_USAGE };
    expect(BOUND_SPARE_USAGE).toBe(0.8);
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.79 }), 31, m)).toBe(true);
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.8 }), 31, m)).toBe(false);
    // Unknown usage counts its neutral 0.5: not spared.
    expect(pastBound(view('c', { inFlight: 32, unknown: true }), 31, { ...m, boundGate: 'none' })).toBe(true);
    expect(
      pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.9 }), 31, { ...m, boundSpareFullUsage: 0 }),
    ).toBe(true);
    // boundSpareUpTo 0.98 (bench): spared only while usage is in [0.8, 0.98).
    const band = { ...m, boundSpareUpTo: 0.98 };
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.97 }), 31, band)).toBe(false);
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 0.98 }), 31, band)).toBe(true);
    expect(pastBound(view('c', { inFlight: 32, waiting: 1, usage: 1 }), 31, m)).toBe(false);
    // boundRoomUsage 0.8 (bench): the bound is 31 while some candidate has nothing waiting and usage < 0.8.
    const r = { ...m, boundRoomUsage: 0.8 };
    const full = view('a', { inFlight: 10, waiting: 2, usage: 0.5 });
    expect(hasRoom(view('b', { inFlight: 30, usage: 0.79 }), 0.8)).toBe(true);
    expect(hasRoom(view('b', { inFlight: 30, usage: 0.8 }), 0.8)).toBe(false);
    expect(hasRoom(full, 0.8)).toBe(false);
    expect(hasRoom(view('b', { unknown: true }), 0.8)).toBe(false);
    expect(affinityBound([full, view('b', { inFlight: 30, usage: 0.79 })], r)).toBeCloseTo(31, 12);
    expect(affinityBound([full, view('b', { inFlight: 30, usage: 0.85 })], r)).toBe(Infinity);
    expect(affinityBound([full, view('b', { inFlight: 30, usage: 0.85 })], m)).toBeCloseTo(31, 12);
  });

  it('turns costs into scores against the dearest candidate', () => {
    expect([...costsToScores(Float64Array.from([0, 50, 100]))]).toEqual([1, 0.5, 0]);
    expect([...costsToScores(Float64Array.from([0, 0]))]).toEqual([1, 1]);
  });
});
