import { describe, expect, it } from 'vitest';
import {
  aggregateKvCacheAwareScorer,
  scorerAggregateKvCacheAware as factory,
} from '../../../src/plugins/scorer-aggregate-kv-cache-aware.js';
import { DEFAULT_KV_COST } from '../../../src/plugins/kv-cost.js';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { CacheIndexerClient, type IndexerOutcome } from '../../../src/datalayer/cache-indexer-client.js';
import { Director } from '../../../src/director/director.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import type { LLMRequest, SchedulingResult } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { build, ctx, endpoints, pdGroup, scoresOf, view } from './fixtures.js';

describe('scorer-aggregate-kv-cache-aware', () => {
  it('asks the cache-indexer at the documented default address, timeout in ns -> ms', () => {
    const q = build(factory, {
      kvCacheManagerIP: 'fd00::7',
      kvCacheManagerPort: 9000,
      kvCacheManagerPath: '/x',
      kvCacheManagerTimeout: 50_000_000,
      routingHistory: false,
    });
    expect(q.dataNeeds).toEqual({ indexer: { url: 'http://[fd00::7]:9000/x', timeoutMs: 50 } });
    expect(build(factory).dataNeeds?.indexer).toEqual({
      url: 'http://cache-indexer-service:8080/match_sort',
      timeoutMs: 5000,
    });
  });

  it('costs miss + usage + waiting in tokens and scores 1 - cost / max cost (hand-computed)', () => {
    // P = 1000 tokens.
    const a = view('a', { waiting: 2, usage: 0.5 });
    const b = view('b', { waiting: 4, usage: 0.5, inFlight: 9, running: 3 });
    const c = view('c', { waiting: 0, usage: 0 });
    const cx = ctx({ promptTokens: 1000, hitRates: { [a.endpoint.id]: 0.8, [c.endpoint.id]: 0.5 } });
    // Best hit 0.8 (a): a copy onto b or c costs 30 * usage^3 * (0.8 - hit) * 1000 more.
    // a: miss 200 + usage .5*1000 + waiting 2 * 200 = 1100
    // b: miss 1000 + copy 30 * .125 * .8 * 1000 = 3000, + 500 + max(4, 9 - 3) = 6 waiting * 1000 = 10500
    // c: miss 500 + copy 0 (empty cache) + 0 + 0 = 500
    const s = scoresOf(build(factory, { routingHistory: false }), cx, endpoints(a, b, c));
    expect(s[0]).toBeCloseTo(1 - 1100 / 10500, 12);
    expect(s[1]).toBeCloseTo(0, 12);
    expect(s[2]).toBeCloseTo(1 - 500 / 10500, 12);
  });

  it('keeps a busy prefix holder until its queue outweighs what a move would recompute', () => {
    // P = 7200, holder hit 6000/7200: each queued request there is counted at its 1200-token miss.
    const hits = (h: ReturnType<typeof view>) => ({ [h.endpoint.id]: 6000 / 7200 });
    const best = (waiting: number) => {
      const holder = view('h', { waiting });
      const idle = view('i');
      const s = scoresOf(
        build(factory, { routingHistory: false }),
        ctx({ promptTokens: 7200, hitRates: hits(holder) }),
        endpoints(holder, idle),
      );
      return s[0]! > s[1]! ? 'holder' : 'idle';
    };
    // holder: 1200 * (1 + waiting) vs idle 7200: holds while waiting < 5.
    expect(best(0)).toBe('holder');
    expect(best(4)).toBe('holder');
    expect(best(6)).toBe('idle');
  });

  it('prices a copy of the holder prefix by the target KV usage (hand-computed)', () => {
    // P = 7200, holder hit 6000/7200 with 6 requests waiting; the other endpoint is idle.
    // holder: 1200 * (1 + 6) + usage 0.5 * 7200 = 8400 + 3600 = 12000.
    // idle at usage u: 7200 + u * 7200 + 30 * u^3 * 6000.
    const pick = (usage: number) => {
      const holder = view('h', { waiting: 6, usage: 0.5 });
      const other = view('o', { usage });
      const s = scoresOf(
        build(factory, { routingHistory: false }),
        ctx({ promptTokens: 7200, hitRates: { [holder.endpoint.id]: 6000 / 7200 } }),
        endpoints(holder, other),
      );
      return s;
    };
    // u = 0.2: 7200 + 1440 + 30 * 0.008 * 6000 = 10080 < 12000: the prefix is copied.
    const low = pick(0.2);
    expect(low[0]).toBeCloseTo(0, 12);
    expect(low[1]).toBeCloseTo(1 - 10080 / 12000, 12);
    // u = 0.5: 7200 + 3600 + 30 * 0.125 * 6000 = 33300 > 12000: the holder keeps it.
    const half = pick(0.5);
    expect(half[0]).toBeCloseTo(1 - 12000 / 33300, 12);
    expect(half[1]).toBeCloseTo(0, 12);
  });

  it('ignores the prefix hit of a congested holder past the relative affinity bound (hand-computed)', () => {
    // P = 7200, holder hit 6000/7200. Mean in-flight (40 + 10 + 10) / 3 = 20 -> bound 1.15 * 20 + 8 = 31.
    const pick = (scrapedWaiting: number) => {
      const holder = view('h', { inFlight: 40, running: 38, waiting: scrapedWaiting });
      const i1 = view('i1', { inFlight: 10, running: 10 });
      const i2 = view('i2', { inFlight: 10, running: 10 });
      return scoresOf(
        build(factory, { routingHistory: false }),
        ctx({ promptTokens: 7200, hitRates: { [holder.endpoint.id]: 6000 / 7200 } }),
        endpoints(holder, i1, i2),
      );
    };
    // Nothing waits in the holder's scraped queue: the bound does not apply.
    // holder: miss 1200 + waiting max(0, 40 - 38) = 2 * 1200 = 3600; idle: 7200.
    const calm = pick(0);
    expect(calm[0]).toBeCloseTo(1 - 3600 / 7200, 12);
    expect(calm[1]).toBeCloseTo(0, 12);
    // One request waits there: past the bound, costed as holding nothing.
    // holder: miss 7200 + waiting 2 * 7200 = 21600; idle: 7200.
    const congested = pick(1);
    expect(congested[0]).toBeCloseTo(0, 12);
    expect(congested[1]).toBeCloseTo(1 - 7200 / 21600, 12);
    expect(congested[2]).toBeCloseTo(1 - 7200 / 21600, 12);
  });

  it('sheds a congested holder past the bound however full its cache is (the spare rule is bench-only, hand-computed)', () => {
    // P = 7200, holder hit 6000/7200, in flight 40 against 10 + 10: past the bound (31), one request waits.
    const pick = (holderUsage: number) => {
      const holder = view('h', { inFlight: 40, running: 38, waiting: 1, usage: holderUsage });
      const i1 = view('i1', { inFlight: 10, running: 10, usage: 0.5 });
      const i2 = view('i2', { inFlight: 10, running: 10, usage: 0.5 });
      return scoresOf(
        build(factory, { routingHistory: false }),
        ctx({ promptTokens: 7200, hitRates: { [holder.endpoint.id]: 6000 / 7200 } }),
        endpoints(holder, i1, i2),
      );
    };
    // The bound fires, the holder counts hit 0 and sets no copy price; idle: 7200 + 0.5 * 7200 = 10800.
    // Usage 0.5, holder: 7200 + 0.5 * 7200 + waiting max(1, 40 - 38) * 7200 = 25200.
    const half = pick(0.5);
    expect(half[0]).toBeCloseTo(0, 12);
    expect(half[1]).toBeCloseTo(1 - 10800 / 25200, 12);
    // Usage 0.85 (kv-r5-sp8 would spare it): 7200 + 0.85 * 7200 + 2 * 7200 = 27720.
    const full = pick(0.85);
    expect(full[0]).toBeCloseTo(0, 12);
    expect(full[1]).toBeCloseTo(1 - 10800 / 27720, 12);
  });

  it('applies the weights to each term', () => {
    const a = view('a', { waiting: 2, usage: 0.2 });
    const b = view('b', { waiting: 4, usage: 0.5 });
    const cx = ctx({ promptTokens: 100, hitRates: { [a.endpoint.id]: 0.8 } });
    const p = build(factory, {
      kvCacheHitNotRateWeight: 2,
      xpuCacheUsageWeight: 0,
      waitingRequestWeight: 0.5,
      routingHistory: false,
    });
    // a: 2*20 + 0 + 0.5*2*20 = 60
    // b: 2*(100 + copy 30 * .5^3 * .8 * 100 = 300) + 0 + 0.5*4*100 = 1000 (the copy is part of the miss term)
    const s = scoresOf(p, cx, endpoints(a, b));
    expect(s[0]).toBeCloseTo(1 - 60 / 1000, 12);
    expect(s[1]).toBeCloseTo(0, 12);
  });

  it('indexer failure (hitRates undefined) counts hit 0 for everyone and still ranks by load', () => {
    const a = view('a', { waiting: 3, usage: 0.9 });
    const b = view('b', { waiting: 0, usage: 0.1 });
    const s = scoresOf(build(factory), ctx({ promptTokens: 100, hitRates: undefined }), endpoints(a, b));
    // a: 100 + 90 + 300 = 490; b: 100 + 10 + 0 = 110
    expect(s[0]).toBeCloseTo(0, 12);
    expect(s[1]).toBeCloseTo(1 - 110 / 490, 12);
  });

  it('unknown signals: usage counts 0.5, waiting half the in-flight requests; the endpoint stays eligible', () => {
    const known = view('k', { waiting: 2, usage: 0.9 });
    const idle = view('i', { waiting: 0, usage: 0 });
    const stale = view('s', { unknown: true, inFlight: 2 });
    const s = scoresOf(
      build(factory),
      ctx({ promptTokens: 100, hitRates: {} }),
      endpoints(known, idle, stale),
    );
    // known: 100 + 90 + 200 = 390; idle: 100; stale: 100 + 50 + 1 * 100 = 250
    expect(s[0]).toBeCloseTo(0, 12);
    expect(s[1]).toBeCloseTo(1 - 100 / 390, 12);
    expect(s[2]).toBeCloseTo(1 - 250 / 390, 12);
  });

  it('gives every candidate 1 when all weights are 0', () => {
    const p = build(factory, { kvCacheHitNotRateWeight: 0, xpuCacheUsageWeight: 0, waitingRequestWeight: 0 });
    expect(scoresOf(p, ctx(), endpoints(view('a', { usage: 1, waiting: 9 }), view('b')))).toEqual([1, 1]);
  });

  it('accepts the deprecated waitingFromInFlight / waitingNormFloor and scores exactly as without them', () => {
    const a = view('a', { waiting: 2, usage: 0.5 });
    const b = view('b', { waiting: 4, usage: 0.3, inFlight: 9, running: 3 });
    const cx = ctx({ promptTokens: 1000, hitRates: { [a.endpoint.id]: 0.8 } });
    const plain = scoresOf(build(factory, { routingHistory: false }), cx, endpoints(a, b));
    const old = build(factory, { routingHistory: false, waitingFromInFlight: false, waitingNormFloor: 4 });
    expect(scoresOf(old, cx, endpoints(a, b))).toEqual(plain);
  });

  it('scores nothing on an empty candidate set and PD groups neutrally', () => {
    const p = build(factory);
    expect(scoresOf(p, ctx(), [])).toEqual([]);
    const g = pdGroup('g1');
    expect(scoresOf(p, ctx(), [{ kind: 'group', id: 'g1', group: { id: 'g1', ...g } }])).toEqual([0.5]);
  });

  it('rejects bad parameters, including ill-typed deprecated switches', () => {
    const bad = [
      { kvCacheHitNotRateWeight: 'high' },
      { xpuCacheUsageWeight: -1 },
      { kvCacheManagerPort: 0 },
      { kvCacheManagerTimeout: 1.5 },
      { kvCacheManagerPath: 'match_sort' },
      { waitingWeight: 1 },
      { waitingFromInFlight: 'yes' },
      { waitingNormFloor: 0.5 },
    ];
    for (const params of bad)
      expect(factory.parameters.safeParse(params).success, JSON.stringify(params)).toBe(false);
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

  it('is on by default with 256-token blocks over the first 16k tokens', () => {
    const parsed = factory.parameters.parse({});
    expect(parsed.routingHistory).toBe(true);
    expect(build(factory).dataNeeds).toEqual({
      indexer: { url: 'http://cache-indexer-service:8080/match_sort', timeoutMs: 5000 },
      prefix: {
        blockSizeTokens: 256,
        maxPrefixBlocksToMatch: 64,
        lruCapacityPerServer: 2000,
        // Left out, so another prefix plugin's hashing may replace them (collectNeeds).
        adoptable: ['blockSizeTokens', 'maxPrefixBlocksToMatch', 'lruCapacityPerServer'],
      },
    });
    expect(build(factory, { blockSizeTokens: 64 }).dataNeeds?.prefix?.adoptable).toEqual([
      'maxPrefixBlocksToMatch',
      'lruCapacityPerServer',
    ]);
    const off = build(factory, { routingHistory: false });
    expect(off.dataNeeds?.prefix).toBeUndefined();
    expect(off.charges).toBeUndefined();
    const a = view('a');
    const b = view('b');
    const cx = ctx({ hitRates: {}, prefixHashes: [101], prefixMatches: new Map([[a.endpoint.id, 1]]) });
    const [sa, sb] = scoresOf(off, cx, endpoints(a, b));
    expect(sa).toBeCloseTo(sb!, 12);
  });

  it('hit = max(indexer hit, matched blocks * blockSizeTokens / promptTokens), capped at 1', () => {
    const a = view('a');
    const b = view('b');
    const c = view('c');
    const d = view('d');
    const p = build(factory, { blockSizeTokens: 16 });
    // 100-token prompt, 16-token blocks: one matched block = 0.16 of the prompt.
    const cx = ctx({
      promptTokens: 100,
      prefixBlockTokens: 16,
      hitRates: { [a.endpoint.id]: 0.5, [b.endpoint.id]: 0.6 },
      prefixHashes: [1, 2, 3, 4, 5, 6],
      prefixMatches: new Map([
        [a.endpoint.id, 5], // 0.80 > indexer 0.5
        [b.endpoint.id, 2], // 0.32 < indexer 0.6
        [d.endpoint.id, 7], // 1.12 -> 1
      ]),
    });
    // Idle endpoints: cost = miss tokens only. a 20, b 40, c 100, d 0.
    const s = scoresOf(p, cx, endpoints(a, b, c, d));
    expect(s[0]).toBeCloseTo(1 - 20 / 100, 12);
    expect(s[1]).toBeCloseTo(1 - 40 / 100, 12);
    expect(s[2]).toBeCloseTo(0, 12);
    expect(s[3]).toBeCloseTo(1, 12);
  });

  it('records the prompt blocks on the primary (or the PD prefill pod)', () => {
    const p = build(factory, { routingHistory: true });
    const a = view('a');
    const hashes = [102, 103];
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

  it('bench knob chargeExpectedHit: charges outstanding prefill at max(indexer, history) hit (hand-computed)', () => {
    const knob = aggregateKvCacheAwareScorer('bench-charge', { ...DEFAULT_KV_COST, chargeExpectedHit: true });
    const p = build(knob, { blockSizeTokens: 16 });
    const a = view('a');
    // 100 tokens, indexer hit 0.25, 4 matched 16-token blocks = 0.64 -> 36 tokens to prefill.
    const cx = ctx({
      promptTokens: 100,
      prefixBlockTokens: 16,
      hitRates: { [a.endpoint.id]: 0.25 },
      prefixHashes: [1, 2, 3, 4],
      prefixMatches: new Map([[a.endpoint.id, 4]]),
    });
    expect(p.charges!(cx, { primary: a } as SchedulingResult).prefillTokens).toEqual([
      { endpointId: a.endpoint.id, tokens: 36 },
    ]);
    // The product scorer leaves the prefill charge to the scheduler.
    expect(
      build(factory, { blockSizeTokens: 16 }).charges!(cx, { primary: a } as SchedulingResult).prefillTokens,
    ).toBeUndefined();
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
    // With routing history (the default): 2 shared 256-token blocks (512 tokens) -> hit ~0.85 on the
    // first pick's endpoint, whose queue (the first request, in flight) weighs its miss, ~90 tokens.
    const [f1, s1] = await run('');
    expect(s1).toBe(f1);
    // Without it every endpoint but the first ties (hit 0, idle): the second pick goes elsewhere.
    const [f0, s0] = await run('routingHistory: false');
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
