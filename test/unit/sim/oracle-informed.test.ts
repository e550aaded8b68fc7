// oracle-informed (test/bench/sim/oracle-informed.ts): the product scorer's
// inputs with the router's signals replaced by the engines' exact state, by
// hand on two tiny engines, and the registered bench scorer end to end.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../bench/sim/engine.js';
import { EventQueue } from '../../bench/sim/event-queue.js';
import { informedInputs, type ExactState } from '../../bench/sim/oracle-informed.js';
import { benchRegistry, type OracleView } from '../../bench/sim/policies.js';
import type { SimRequest } from '../../bench/sim/workload-types.js';
import { scorerAggregateKvCacheAware } from '../../../src/plugins/scorer-aggregate-kv-cache-aware.js';
import { build, ctx, endpoints, scoresOf, view } from '../plugins/fixtures.js';
import { NO_HOOKS as HOOKS, simRequest as mk, TINY, twoEngines } from './fixtures.js';

/** The exact state the simulator hands oracle-informed (cluster.ts does the same). */
function exactOf(e: Engine, sr: SimRequest): ExactState {
  return {
    cachedTokens: e.cachedPrefixTokens(sr.hashes),
    waiting: e.waiting.length,
    running: e.running.length,
    kvUsage: e.kvUsage,
    pendingPrefillTokens: e.pendingPrefillTokens(),
  };
}

describe('oracle-informed: exact state in place of the router signals', () => {
  it('replaces hit, waiting, running, usage and pending prefill; keeps inFlight; leaves unknown servers alone', () => {
    const [a, b] = twoEngines();
    const sr = mk(3, ['a', 'b', 'c']); // P = 202
    const va = view('A', { waiting: 7, running: 0, usage: 0.9, inFlight: 3, pendingPrefillTokens: 999 });
    const vb = view('B', { waiting: 0, running: 0, usage: 0, inFlight: 1 });
    const vc = view('C', { waiting: 2, usage: 0.3 });
    // The router's (stale) view: the indexer says B holds everything, A nothing; history matches on C.
    const cx = ctx({
      promptTokens: sr.promptTokens,
      hitRates: { [va.endpoint.id]: 0, [vb.endpoint.id]: 1, [vc.endpoint.id]: 0.5 },
      prefixMatches: new Map([[vc.endpoint.id, 3]]),
      prefixBlockTokens: 64,
    });
    const out = informedInputs(cx, endpoints(va, vb, vc), [exactOf(a, sr), exactOf(b, sr), undefined]);
    // A's block index holds a, b: 128 of 202 tokens.
    expect(out.ctx.data.hitRates!.get(va.endpoint.id)).toBeCloseTo(128 / 202, 12);
    expect(out.ctx.data.hitRates!.get(vb.endpoint.id)).toBe(0);
    // C is not a simulated server: no exact hit (the scorer reads 0), no history either.
    expect(out.ctx.data.hitRates!.has(vc.endpoint.id)).toBe(false);
    expect(out.ctx.data.prefixMatches).toBeUndefined();
    const [ea, eb, ec] = out.candidates.map((c) => (c.kind === 'endpoint' ? c.endpoint : undefined));
    expect(ea).toMatchObject({
      waitingQueueSize: 0,
      runningRequests: 0,
      kvCacheUsage: 0,
      pendingPrefillTokens: 0,
      signalsAgeMs: 0,
      inFlight: 3,
    });
    expect(eb).toMatchObject({
      waitingQueueSize: 0,
      runningRequests: 1,
      kvCacheUsage: 5 / 40,
      pendingPrefillTokens: 0,
      inFlight: 1,
    });
    expect(ec).toBe(vc);
    // The input context is not modified.
    expect(cx.data.hitRates!.get(vb.endpoint.id)).toBe(1);
  });

  it("splits the substitution: 'hits' keeps the scraped views, 'load' keeps the router's hits and history", () => {
    const [a, b] = twoEngines();
    const sr = mk(3, ['a', 'b', 'c']);
    const va = view('A', { waiting: 7, usage: 0.9, inFlight: 3 });
    const vb = view('B', { waiting: 2, usage: 0.5, inFlight: 1 });
    const cx = ctx({
      promptTokens: sr.promptTokens,
      hitRates: { [vb.endpoint.id]: 1 },
      prefixMatches: new Map([[vb.endpoint.id, 3]]),
      prefixBlockTokens: 64,
    });
    const states = [exactOf(a, sr), exactOf(b, sr)];
    const hits = informedInputs(cx, endpoints(va, vb), states, 'hits');
    expect(hits.ctx.data.hitRates!.get(va.endpoint.id)).toBeCloseTo(128 / 202, 12);
    expect(hits.ctx.data.prefixMatches).toBeUndefined();
    expect(hits.candidates.map((c) => (c.kind === 'endpoint' ? c.endpoint : undefined))).toEqual([va, vb]);
    const load = informedInputs(cx, endpoints(va, vb), states, 'load');
    expect(load.ctx).toBe(cx);
    expect(load.candidates[0]).toMatchObject({
      endpoint: { waitingQueueSize: 0, kvCacheUsage: 0, inFlight: 3 },
    });
    expect(load.candidates[1]).toMatchObject({ endpoint: { waitingQueueSize: 0, kvCacheUsage: 5 / 40 } });
  });

  it('counts blocks a queued request is about to compute as held (the engine index, not the indexer)', () => {
    const q = new EventQueue();
    const e = new Engine('A', 'agg', TINY, q, HOOKS);
    e.submit(mk(1, ['p', 'q', 'r'], 10, 3));
    // Its first step is planned, not finished: it is prefilling (4 blocks
    // referenced), all 202 tokens still to compute, its blocks incoming.
    const s = exactOf(e, mk(2, ['p', 'q', 'x']));
    expect(s).toEqual({
      cachedTokens: 128,
      waiting: 0,
      running: 1,
      kvUsage: 4 / 40,
      pendingPrefillTokens: 202,
    });
    const v = view('A', { waiting: 0, usage: 0 });
    const out = informedInputs(ctx({ promptTokens: 202 }), endpoints(v), [s]);
    expect(out.ctx.data.hitRates!.get(v.endpoint.id)).toBeCloseTo(128 / 202, 12);
  });

  it('bench-oracle-informed-scorer = the product scorer (default weights, no history) on the exact inputs', () => {
    const [a, b] = twoEngines();
    const sr = mk(3, ['a', 'b', 'c']);
    const va = view('A', { waiting: 3, usage: 0.9, inFlight: 0 });
    const vb = view('B', { waiting: 0, usage: 0, inFlight: 1 });
    const engines = new Map([
      [va.endpoint.id, a],
      [vb.endpoint.id, b],
    ]);
    const oracle: OracleView = {
      costs: (ids) => new Float64Array(ids.length),
      exact: (ids) => ids.map((id) => exactOf(engines.get(id)!, sr)),
    };
    const factory = benchRegistry(oracle).get('bench-oracle-informed-scorer');
    expect(factory).toBeDefined();
    const informed = build(factory!);
    // No indexer call and no routing-history hashing: the exact index replaces both.
    expect(informed.dataNeeds).toBeUndefined();
    // With the router's hits ('load') it asks the indexer and keeps routing history, as hermes-kv-aware.
    const loadOnly = build(factory!, { informed: 'load' });
    expect(loadOnly.dataNeeds?.indexer).toBeDefined();
    expect(loadOnly.dataNeeds?.prefix).toBeDefined();
    expect(loadOnly.charges).toBeDefined();
    const cx = ctx({ promptTokens: sr.promptTokens, hitRates: { [vb.endpoint.id]: 1 } });
    const got = scoresOf(informed, cx, endpoints(va, vb));
    // By hand, P = 202: A holds 128 (hit 128/202), idle, empty cache: cost = miss 74.
    // B: miss 202 + copy 30 * (5/40)^3 * 128 + usage (5/40) * 202 + waiting 0 = 202 + 7.5 + 25.25.
    const costB = 202 + 30 * (5 / 40) ** 3 * 128 + (5 / 40) * 202;
    expect(got[0]).toBeCloseTo(1 - 74 / costB, 12);
    expect(got[1]).toBeCloseTo(0, 12);
    // The same as the product scorer fed the exact inputs by hand.
    const exact = informedInputs(cx, endpoints(va, vb), [exactOf(a, sr), exactOf(b, sr)]);
    const product = build(scorerAggregateKvCacheAware, { routingHistory: false });
    expect(got).toEqual(scoresOf(product, exact.ctx, exact.candidates));
  });
});
