import { describe, expect, it } from 'vitest';
import { pickerPdKvCacheAware } from '../../../src/plugins/picker-pd-kv-cache-aware.js';
import { scorerPdKvCacheAware as factory } from '../../../src/plugins/scorer-pd-kv-cache-aware.js';
import type { Candidate, ScoredCandidate } from '../../../src/scheduling/types.js';
import { build, ctx, endpoints, pdGroup, scoresOf, seqRandom, view } from './fixtures.js';

function asCandidate(g: ReturnType<typeof pdGroup>, id: string): Candidate {
  return { kind: 'group', id, group: { id, leader: g.leader, prefill: g.prefill, decode: g.decode } };
}

// g1: prefill p0 (hit .5, usage .4, waiting 2), p1 (hit 0, usage 0, waiting 0)
//     decode  d0 (usage .2, waiting 1), d1 (usage .6, waiting 0)
// g2: prefill q0 (hit 1, usage .8, waiting 4); decode e0 (usage 0, waiting 3)
function fixture() {
  const g1 = pdGroup(
    'g1',
    [
      { usage: 0.4, waiting: 2 },
      { usage: 0, waiting: 0 },
    ],
    [
      { usage: 0.2, waiting: 1 },
      { usage: 0.6, waiting: 0 },
    ],
  );
  const g2 = pdGroup('g2', [{ usage: 0.8, waiting: 4 }], [{ usage: 0, waiting: 3 }]);
  const hitRates = { [g1.prefill[0]!.endpoint.id]: 0.5, [g2.prefill[0]!.endpoint.id]: 1 };
  return { g1, g2, hitRates, candidates: [asCandidate(g1, 'g1'), asCandidate(g2, 'g2')] };
}

describe('scorer-pd-kv-cache-aware', () => {
  it('scores groups from their best prefill and decode pods, in tokens (hand-computed)', () => {
    const { g1, g2, hitRates, candidates } = fixture();
    const out = build(factory).score!(ctx({ promptTokens: 100, hitRates }), candidates);
    // P = 100. prefill: miss + usage^2 * P + waiting * miss; decode: usage^2 * P + waiting * P
    // g1: p0 = 50 + 16 + 2*50 = 166, p1 = 100 + 0 + 0 = 100 -> p1;  d0 = 4 + 100 = 104, d1 = 36 -> d1
    //     cost = 100 + 36 = 136
    // g2: q0 = 0 + 64 + 0 = 64; e0 = 0 + 300 = 300; cost = 364
    expect(out.scores[0]).toBeCloseTo(1 - 136 / 364, 12);
    expect(out.scores[1]).toBeCloseTo(0, 12);
    expect(out.pdChoices![0]).toEqual({ prefill: g1.prefill[1], decode: g1.decode[1] });
    expect(out.pdChoices![1]).toEqual({ prefill: g2.prefill[0], decode: g2.decode[0] });
  });

  it('counts the larger of the waiting queue and the pending prefill tokens on prefill pods', () => {
    const g = pdGroup('g', [{ waiting: 1, pendingPrefillTokens: 500 }, { waiting: 3 }], [{}]);
    // P = 100, no hits: p0 = 100 + max(1 * 100, 500) = 600, p1 = 100 + 300 = 400 -> p1
    const out = build(factory).score!(ctx({ promptTokens: 100, hitRates: {} }), [asCandidate(g, 'g')]);
    expect(out.pdChoices![0]!.prefill).toBe(g.prefill[1]);
    // In-flight counts are not read on prefill pods (they stay charged while decode runs).
    const h = pdGroup('h', [{ inFlight: 50 }, { waiting: 1 }], [{}]);
    const o2 = build(factory).score!(ctx({ promptTokens: 100, hitRates: {} }), [asCandidate(h, 'h')]);
    expect(o2.pdChoices![0]!.prefill).toBe(h.prefill[0]);
  });

  it('applies the pod score weights and waiting weights', () => {
    const { hitRates, candidates } = fixture();
    const p = build(factory, {
      prefillPodScoreWeight: 2,
      decodePodScoreWeight: 0.5,
      decodeWaitingRequestWeight: 0,
      kvCacheHitNotRateWeight: 3,
    });
    // P = 100. g1: p0 = 150 + 16 + 100 = 266, p1 = 300 -> 266; d0 = 4, d1 = 36 -> 4; cost = 532 + 2 = 534
    // g2: q0 = 0 + 64 + 0 = 64; e0 = 0; cost = 128
    const s = scoresOf(p, ctx({ promptTokens: 100, hitRates }), candidates);
    expect(s[0]).toBeCloseTo(0, 12);
    expect(s[1]).toBeCloseTo(1 - 128 / 534, 12);
  });

  it('prefix hits count on prefill only; without the indexer every hit is 0', () => {
    const g = pdGroup('g', [{}], [{}, {}]);
    const hitRates = { [g.decode[1]!.endpoint.id]: 1 };
    const out = build(factory).score!(ctx({ hitRates, random: seqRandom([0.9]) }), [asCandidate(g, 'g')]);
    // Decode pods tie (the hit rate on d1 is ignored); random 0.9 keeps d0.
    expect(out.pdChoices![0]!.decode).toBe(g.decode[0]);
    const none = build(factory).score!(ctx({ hitRates: undefined }), [asCandidate(g, 'g')]);
    expect(none.scores[0]).toBe(out.scores[0]);
  });

  it('breaks pod ties at random with the injected source', () => {
    const g = pdGroup('g', [{}, {}], [{}]);
    const first = build(factory).score!(ctx({ random: seqRandom([0.9]) }), [asCandidate(g, 'g')]);
    const second = build(factory).score!(ctx({ random: seqRandom([0.1]) }), [asCandidate(g, 'g')]);
    expect(first.pdChoices![0]!.prefill).toBe(g.prefill[0]);
    expect(second.pdChoices![0]!.prefill).toBe(g.prefill[1]);
  });

  it('gives unknown signals their neutral values and keeps the pod eligible', () => {
    const g = pdGroup(
      'g',
      [
        { unknown: true, inFlight: 2 },
        { usage: 0.9, waiting: 0 },
      ],
      [{ unknown: true }],
    );
    const out = build(factory).score!(ctx({ promptTokens: 100, hitRates: {} }), [asCandidate(g, 'g')]);
    // prefill: unknown = 100 + 25 + (2 * .5) * 100 = 225, known = 100 + 81 = 181 -> known
    expect(out.pdChoices![0]!.prefill).toBe(g.prefill[1]);
  });

  it('scores plain endpoints as prefill pods', () => {
    const a = view('a', { usage: 0.5, waiting: 2 });
    const b = view('b');
    const s = scoresOf(
      build(factory),
      ctx({ promptTokens: 100, hitRates: { [a.endpoint.id]: 0.5 } }),
      endpoints(a, b),
    );
    // a = 50 + 25 + 2 * 50 = 175, b = 100
    expect(s[0]).toBeCloseTo(0, 12);
    expect(s[1]).toBeCloseTo(1 - 100 / 175, 12);
  });
});

describe('picker-pd-kv-cache-aware', () => {
  it('picks the lowest-cost group with the pods that produced its cost', () => {
    const { g1, hitRates, candidates } = fixture();
    const out = build(factory).score!(ctx({ promptTokens: 100, hitRates }), candidates);
    const scored: ScoredCandidate[] = candidates.map((c, i) => ({
      candidate: c,
      score: out.scores[i]!,
      pdChoice: out.pdChoices![i]!,
    }));
    const { targets } = build(pickerPdKvCacheAware).pick!(ctx(), scored);
    expect(targets).toHaveLength(1);
    expect(targets[0]!.candidate.id).toBe('g1');
    expect(targets[0]!.pdChoice).toEqual({ prefill: g1.prefill[1], decode: g1.decode[1] });
  });

  it('breaks group ties at random and draws pods itself when no PD scorer chose them', () => {
    const a = pdGroup('a', [{}, {}], [{}, {}]);
    const b = pdGroup('b');
    const scored: ScoredCandidate[] = [
      { candidate: asCandidate(a, 'a'), score: 1 },
      { candidate: asCandidate(b, 'b'), score: 1 },
    ];
    const picker = build(pickerPdKvCacheAware);
    // tie: 0.2*2 < 1 -> b replaces a; then b's single pods.
    expect(picker.pick!(ctx({ random: seqRandom([0.2]) }), scored).targets[0]!.candidate.id).toBe('b');
    // tie kept on a (0.8*2 >= 1); then prefill index floor(.6*2)=1, decode floor(.1*2)=0.
    const t = picker.pick!(ctx({ random: seqRandom([0.8, 0.6, 0.1]) }), scored).targets[0]!;
    expect(t.candidate.id).toBe('a');
    expect(t.pdChoice).toEqual({ prefill: a.prefill[1], decode: a.decode[0] });
  });

  it('returns no target for no candidate', () => {
    expect(build(pickerPdKvCacheAware).pick!(ctx(), []).targets).toEqual([]);
  });
});
