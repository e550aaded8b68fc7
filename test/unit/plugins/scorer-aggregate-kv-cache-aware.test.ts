import { describe, expect, it } from 'vitest';
import { scorerAggregateKvCacheAware as factory } from '../../../src/plugins/scorer-aggregate-kv-cache-aware.js';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { CacheIndexerClient, type IndexerOutcome } from '../../../src/datalayer/cache-indexer-client.js';
import { Director } from '../../../src/director/director.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import type { LLMRequest, SchedulingResult } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
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

describe('scorer-aggregate-kv-cache-aware routingHistory', () => {
  const PROFILE = (params: string) => `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: scorer-aggregate-kv-cache-aware
  parameters: {${params}}
- type: picker-min-random
`;

  /** An indexer that knows nothing yet (every prefix still prefilling). */
  class BlindIndexer extends CacheIndexerClient {
    override async matchSort(
      _url: string,
      _req: LLMRequest,
      candidates: readonly string[],
    ): Promise<IndexerOutcome> {
      return { hitRates: new Map(candidates.map((c) => [c, 0])), status: 'ok', latencyMs: 0 };
    }
  }

  it('is off by default: no prefix hashing, no charges, prefix matches ignored', () => {
    const parsed = factory.parameters.parse({});
    expect(parsed.routingHistory).toBe(false);
    expect([parsed.blockSizeTokens, parsed.maxPrefixBlocksToMatch, parsed.lruCapacityPerServer]).toEqual([
      16, 256, 31_250,
    ]);
    const p = build(factory);
    expect(p.dataNeeds?.prefix).toBeUndefined();
    expect(p.charges).toBeUndefined();
    const a = view('a');
    const b = view('b');
    const cx = ctx({ hitRates: {}, prefixHashes: ['h1'], prefixMatches: new Map([[a.endpoint.id, 1]]) });
    const [sa, sb] = scoresOf(p, cx, endpoints(a, b));
    expect(sa).toBeCloseTo(sb!, 12);
  });

  it("asks for the approximate prefix index with prefix-cache-scorer's defaults (or the given values)", () => {
    expect(build(factory, { routingHistory: true }).dataNeeds).toEqual({
      indexer: { url: 'http://cache-indexer-service:8080/match_sort', timeoutMs: 5000 },
      prefix: { blockSizeTokens: 16, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31_250 },
    });
    const q = build(factory, {
      routingHistory: true,
      blockSizeTokens: 64,
      maxPrefixBlocksToMatch: 100,
      lruCapacityPerServer: 5000,
    });
    expect(q.dataNeeds?.prefix).toEqual({
      blockSizeTokens: 64,
      maxPrefixBlocksToMatch: 100,
      lruCapacityPerServer: 5000,
    });
  });

  it('hit = max(indexer hit, matched blocks * blockSizeTokens / promptTokens), capped at 1', () => {
    const a = view('a');
    const b = view('b');
    const c = view('c');
    const d = view('d');
    const p = build(factory, { routingHistory: true });
    // 100-token prompt, 16-token blocks: one matched block = 0.16 of the prompt.
    const cx = ctx({
      promptTokens: 100,
      hitRates: { [a.endpoint.id]: 0.5, [b.endpoint.id]: 0.6 },
      prefixHashes: ['1', '2', '3', '4', '5', '6'],
      prefixMatches: new Map([
        [a.endpoint.id, 5], // 0.80 > indexer 0.5
        [b.endpoint.id, 2], // 0.32 < indexer 0.6
        [d.endpoint.id, 7], // 1.12 -> 1
      ]),
    });
    // Idle endpoints: cost = miss only. a 0.2, b 0.4, c 1 (known to neither), d 0.
    const s = scoresOf(p, cx, endpoints(a, b, c, d));
    expect(s[0]).toBeCloseTo(1 - 0.2 / 3, 12);
    expect(s[1]).toBeCloseTo(1 - 0.4 / 3, 12);
    expect(s[2]).toBeCloseTo(1 - 1 / 3, 12);
    expect(s[3]).toBeCloseTo(1, 12);
  });

  it('fills in when the indexer failed, and adds nothing without a match', () => {
    const a = view('a', { waiting: 1 });
    const b = view('b', { waiting: 0 });
    const p = build(factory, { routingHistory: true, waitingNormFloor: 4 });
    // Indexer down; by routing history a holds 2 blocks of 20 tokens = 40 of 200 tokens -> hit 0.2.
    const p20 = build(factory, { routingHistory: true, waitingNormFloor: 4, blockSizeTokens: 20 });
    const cx = ctx({
      promptTokens: 200,
      hitRates: undefined,
      prefixHashes: ['1', '2', '3'],
      prefixMatches: new Map([[a.endpoint.id, 2]]),
    });
    // a: (1 - 40/200) + 0 + 1/4 = 1.05; b: 1 + 0 + 0 = 1 -> b still wins (small hit).
    const [sa, sb] = scoresOf(p20, cx, endpoints(a, b));
    expect(sa).toBeCloseTo(1 - 1.05 / 3, 12);
    expect(sb).toBeCloseTo(1 - 1 / 3, 12);
    // No matches at all: exactly the documented formula.
    const [na, nb] = scoresOf(
      p,
      ctx({ promptTokens: 200, hitRates: {}, prefixHashes: ['1'] }),
      endpoints(a, b),
    );
    expect(na).toBeCloseTo(1 - 1.25 / 3, 12);
    expect(nb).toBeCloseTo(1 - 1 / 3, 12);
  });

  it('records the prompt blocks on the primary (or the PD prefill pod)', () => {
    const p = build(factory, { routingHistory: true });
    const a = view('a');
    const hashes = ['x', 'y'];
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
    expect(p.charges!(ctx({ prefixHashes: [] }), { primary: a } as SchedulingResult)).toEqual({});
  });

  it('through the Director: a second request with the same new prefix follows the first while the indexer is blind', async () => {
    const eps = [1, 2, 3, 4].map((i) => ({
      id: `10.0.0.${i}:8000`,
      name: `pod-${i}`,
      address: `10.0.0.${i}`,
      port: 8000,
      labels: {},
    }));
    const shared = 'A long shared system prompt that no server has cached yet. '.repeat(40); // 2,360 bytes = 590 tokens
    const mk = (id: string, suffix: string): LLMRequest => {
      const promptText = shared + suffix;
      return {
        requestId: id,
        model: 'm',
        apiType: 'completions',
        promptText,
        promptTokens: Math.ceil(Buffer.byteLength(promptText) / 4),
        stream: false,
        headers: {},
      };
    };
    const run = async (params: string) => {
      const store = new MemoryStateStore({ now: () => 1_000 });
      await store.replaceEndpoints(eps);
      for (const e of eps)
        await store.writeSignals(e.id, {
          waitingQueueSize: 0,
          runningRequests: 0,
          kvCacheUsage: 0,
          updatedAtMs: 1_000,
        });
      const { profile } = loadConfigText(PROFILE(params), 'test.yaml', builtinRegistry());
      let r = 0;
      const seq = [0.1, 0.9, 0.6, 0.3];
      const director = new Director({
        store,
        profile,
        indexer: new BlindIndexer(),
        now: () => 1_000,
        random: () => seq[r++ % seq.length]!,
      });
      const first = await director.pick(mk('r1', 'first question?'));
      const second = await director.pick(mk('r2', 'a different question, same prefix'));
      return [first.result.primary.endpoint.id, second.result.primary.endpoint.id];
    };
    // With routing history: 36 shared 16-token blocks (576 tokens) -> hit ~0.97 on the first pick's endpoint.
    const [f1, s1] = await run('routingHistory: true');
    expect(s1).toBe(f1);
    // Without it every endpoint ties (hit 0, idle): the second pick is the tie-break's, here another endpoint.
    const [f0, s0] = await run('');
    expect(s0).not.toBe(f0);
  });

  it('rejects bad block parameters', () => {
    for (const bad of [
      { routingHistory: 'yes' },
      { blockSizeTokens: 0 },
      { maxPrefixBlocksToMatch: 1.5 },
      { lruCapacityPerServer: -1 },
    ])
      expect(factory.parameters.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });
});
