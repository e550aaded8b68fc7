import { describe, expect, it } from 'vitest';
import { kvCacheUtilizationScorer } from '../../../src/plugins/kv-cache-utilization-scorer.js';
import { prefixCacheScorer } from '../../../src/plugins/prefix-cache-scorer.js';
import { queueScorer } from '../../../src/plugins/queue-scorer.js';
import { promptHashes } from '../../../src/director/director.js';
import type { Candidate, SchedulingResult } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { build, ctx, endpoints, pdGroup, request, scoresOf, view } from './fixtures.js';

const group = (g: ReturnType<typeof pdGroup>, id: string): Candidate => ({
  kind: 'group',
  id,
  group: { id, leader: g.leader, prefill: g.prefill, decode: g.decode },
});

describe('queue-scorer', () => {
  it('is (max - q) / (max - min) over the candidates', () => {
    const s = scoresOf(
      build(queueScorer),
      ctx(),
      endpoints(view('a', { waiting: 2 }), view('b', { waiting: 10 }), view('c', { waiting: 6 })),
    );
    expect(s).toEqual([1, 0, 0.5]);
  });
  it('gives 1 to all when queues are equal, 0.5 to unknown queues and groups', () => {
    expect(
      scoresOf(build(queueScorer), ctx(), endpoints(view('a', { waiting: 3 }), view('b', { waiting: 3 }))),
    ).toEqual([1, 1]);
    const s = scoresOf(build(queueScorer), ctx(), [
      ...endpoints(view('a', { waiting: 0 }), view('u', { unknown: true }), view('b', { waiting: 4 })),
      group(pdGroup('g'), 'g'),
    ]);
    expect(s).toEqual([1, 0.5, 0, 0.5]);
    expect(scoresOf(build(queueScorer), ctx(), [])).toEqual([]);
  });
});

describe('kv-cache-utilization-scorer', () => {
  it('is 1 - usage, clamped, with unknown usage at 0.5', () => {
    const s = scoresOf(
      build(kvCacheUtilizationScorer),
      ctx(),
      endpoints(
        view('a', { usage: 0 }),
        view('b', { usage: 0.25 }),
        view('c', { usage: 1.2 }),
        view('u', { unknown: true }),
      ),
    );
    expect(s).toEqual([1, 0.75, 0, 0.5]);
  });
  it('takes no parameters', () => {
    expect(kvCacheUtilizationScorer.parameters.safeParse({ x: 1 }).success).toBe(false);
  });
});

describe('prefix-cache-scorer', () => {
  it('has GIE v1.5 defaults and derives its data needs', () => {
    expect(build(prefixCacheScorer).dataNeeds).toEqual({
      prefix: { blockSizeTokens: 16, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31_250 },
    });
    const tokens = build(prefixCacheScorer, {
      blockSizeTokens: 32,
      maxPrefixTokensToMatch: 1024,
      autoTune: false,
    });
    expect(tokens.dataNeeds!.prefix).toEqual({
      blockSizeTokens: 32,
      maxPrefixBlocksToMatch: 32,
      lruCapacityPerServer: 31_250,
    });
    // GIE v1.2's character-sized blockSize still loads: 64 characters = 16 tokens.
    expect(build(prefixCacheScorer, { blockSize: 64 }).dataNeeds!.prefix!.blockSizeTokens).toBe(16);
    expect(build(prefixCacheScorer, { hashBlockSize: 128 }).dataNeeds!.prefix!.blockSizeTokens).toBe(32);
    for (const bad of [
      { blockSizeTokens: 0 },
      { autoTune: 'yes' },
      { lruCapacityPerServer: -1 },
      { maxPrefixTokensToMatch: 1.5 },
    ]) {
      expect(prefixCacheScorer.parameters.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('scores matched leading blocks / prompt blocks, 0 without information', () => {
    const a = view('a');
    const b = view('b');
    const c = view('c');
    const prefixMatches = new Map([
      [a.endpoint.id, 3],
      [b.endpoint.id, 1],
    ]);
    const hashes = [101, 102, 103, 104];
    expect(
      scoresOf(build(prefixCacheScorer), ctx({ prefixHashes: hashes, prefixMatches }), endpoints(a, b, c)),
    ).toEqual([0.75, 0.25, 0]);
    expect(
      scoresOf(build(prefixCacheScorer), ctx({ prefixHashes: [], prefixMatches }), endpoints(a, b)),
    ).toEqual([0, 0]);
    expect(scoresOf(build(prefixCacheScorer), ctx({ prefixHashes: hashes }), endpoints(a, b))).toEqual([
      0, 0,
    ]);
  });

  it('scores a PD group as its best prefill pod', () => {
    const g = pdGroup('g', [{}, {}], [{}]);
    const prefixMatches = new Map([
      [g.prefill[1]!.endpoint.id, 2],
      [g.decode[0]!.endpoint.id, 4],
    ]);
    expect(
      scoresOf(build(prefixCacheScorer), ctx({ prefixHashes: [1, 2, 3, 4], prefixMatches }), [group(g, 'g')]),
    ).toEqual([0.5]);
  });

  it('records the prompt blocks on the primary (or the PD prefill pod)', () => {
    const p = build(prefixCacheScorer);
    const a = view('a');
    const hashes = [105, 106];
    expect(p.charges!(ctx({ prefixHashes: hashes }), { primary: a } as SchedulingResult)).toEqual({
      prefixRecord: { endpointId: a.endpoint.id, hashes },
    });
    const g = pdGroup('g');
    const pd = {
      primary: g.leader,
      pd: { prefill: g.prefill[0]!, decode: g.decode[0]! },
    } as SchedulingResult;
    expect(p.charges!(ctx({ prefixHashes: hashes }), pd).prefixRecord!.endpointId).toBe(
      g.prefill[0]!.endpoint.id,
    );
    expect(p.charges!(ctx({ prefixHashes: [] }), pd)).toEqual({});
  });

  it('round-trips through the state store: a repeated prompt prefers the endpoint that served it', async () => {
    const store = new MemoryStateStore();
    const p = build(prefixCacheScorer, { blockSizeTokens: 4 });
    const need = p.dataNeeds!.prefix!;
    const a = view('a');
    const b = view('b');
    const shared = 'You are a helpful assistant. '.repeat(8);
    const first = request({ promptText: shared + 'first question?' });
    const hashes1 = promptHashes(first, need.blockSizeTokens, need.maxPrefixBlocksToMatch);
    expect(hashes1.length).toBeGreaterThan(10);
    const rec = p.charges!(ctx({ prefixHashes: hashes1 }), { primary: b } as SchedulingResult);
    await store.commitPick({
      chargeId: 'r1',
      charges: { inFlight: [], ...rec },
      leaseMs: 1000,
      prefixCapacityPerEndpoint: need.lruCapacityPerServer,
      decision: {
        requestId: 'r1',
        atMs: 0,
        model: 'm',
        profile: 'p',
        endpoint: b.endpoint.id,
        promptTokens: 1,
        score: 0,
      },
    });
    const second = request({ promptText: shared + 'another, different question' });
    const hashes2 = promptHashes(second, need.blockSizeTokens, need.maxPrefixBlocksToMatch);
    const snap = await store.readSnapshot({ prefixHashes: hashes2 });
    const [sa, sb] = scoresOf(
      p,
      ctx({ prefixHashes: hashes2, prefixMatches: snap.prefixMatches }),
      endpoints(a, b),
    );
    expect(sa).toBe(0);
    expect(sb).toBeGreaterThan(0.5);
    expect(sb).toBeLessThan(1);
  });
});
