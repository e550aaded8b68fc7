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
  it('scores groups from their best prefill and decode pods (hand-computed)', () => {
    const { g1, g2, hitRates, candidates } = fixture();
    const out = build(factory).score!(ctx({ hitRates }), candidates);
    // normP = 4, normD = 3, maxPossibleCost = (1+1+1) + (1+1) = 5
    // g1: p0 = .5+.4+.5 = 1.4, p1 = 1+0+0 = 1 -> p1;  d0 = .2+1/3, d1 = .6 -> d0
    // g2: q0 = 0+.8+1 = 1.8; e0 = 0+1 = 1
    expect(out.scores[0]).toBeCloseTo(1 - (1 + 0.2 + 1 / 3) / 5, 12);
    expect(out.scores[1]).toBeCloseTo(1 - 2.8 / 5, 12);
    expect(out.pdChoices![0]).toEqual({ prefill: g1.prefill[1], decode: g1.decode[0] });
    expect(out.pdChoices![1]).toEqual({ prefill: g2.prefill[0], decode: g2.decode[0] });
  });

  it('applies the pod score weights and waiting weights', () => {
    const { hitRates, candidates } = fixture();
    const p = build(factory, {
      prefillPodScoreWeight: 2,
      decodePodScoreWeight: 0.5,
      decodeWaitingRequestWeight: 0,
      kvCacheHitNotRateWeight: 3,
    });
    // maxPossibleCost = 2*(3+1+1) + 0.5*(1+0) = 10.5
    // g1: p0 = 3*.5+.4+.5 = 2.4, p1 = 3 -> 2.4; d0 = .2, d1 = .6 -> .2 ; cost = 4.8 + .1
    // g2: q0 = 0+.8+1 = 1.8; e0 = 0 ; cost = 3.6
    const s = scoresOf(p, ctx({ hitRates }), candidates);
    expect(s[0]).toBeCloseTo(1 - 4.9 / 10.5, 12);
    expect(s[1]).toBeCloseTo(1 - 3.6 / 10.5, 12);
  });

  it('prefix hits count on prefill only; without the indexer every hit is 0', () => {
    const g = pdGroup('g', [{}], [{}, {}]);
    const hitRates = { [g.decode[1]!.endpoint.id]: 1 };
    const out = build(factory).score!(ctx({ hitRates, random: seqRandom([0.9]) }), [asCandidate(g, 'g')]);
    // Decode pods tie (the hit rate on d1 is ignored); random 0.9 keeps d0.
    expect(out.pdChoices![0]!.decode).toBe(g.decode[0]);
    expect(out.scores[0]).toBeCloseTo(1 - 1 / 5, 12);
    const none = build(factory).score!(ctx({ hitRates: undefined }), [asCandidate(g, 'g')]);
    expect(none.scores[0]).toBeCloseTo(1 - 1 / 5, 12);
  });

  it('breaks pod ties at random with the injected source', () => {
    const g = pdGroup('g', [{}, {}], [{}]);
    const first = build(factory).score!(ctx({ random: seqRandom([0.9]) }), [asCandidate(g, 'g')]);
    const second = build(factory).score!(ctx({ random: seqRandom([0.1]) }), [asCandidate(g, 'g')]);
    expect(first.pdChoices![0]!.prefill).toBe(g.prefill[0]);
    expect(second.pdChoices![0]!.prefill).toBe(g.prefill[1]);
  });

  it('gives unknown signals the neutral middle and keeps the pod eligible', () => {
    const g = pdGroup('g', [{ unknown: true }, { usage: 0.9, waiting: 0 }], [{ unknown: true }]);
    const out = build(factory).score!(ctx({ hitRates: {} }), [asCandidate(g, 'g')]);
    // prefill: unknown = 1 + .5 + .5 = 2, known = 1 + .9 + 0 = 1.9 -> known; decode unknown = .5 + .5
    expect(out.pdChoices![0]!.prefill).toBe(g.prefill[1]);
    expect(out.scores[0]).toBeCloseTo(1 - (1.9 + 1) / 5, 12);
  });

  it('scores plain endpoints as prefill pods', () => {
    const a = view('a', { usage: 0.5, waiting: 2 });
    const s = scoresOf(build(factory), ctx({ hitRates: { [a.endpoint.id]: 0.5 } }), endpoints(a));
    expect(s[0]).toBeCloseTo(1 - (0.5 + 0.5 + 1) / 3, 12);
  });
});

describe('picker-pd-kv-cache-aware', () => {
  it('picks the lowest-cost group with the pods that produced its cost', () => {
    const { g1, hitRates, candidates } = fixture();
    const out = build(factory).score!(ctx({ hitRates }), candidates);
    const scored: ScoredCandidate[] = candidates.map((c, i) => ({
      candidate: c,
      score: out.scores[i]!,
      pdChoice: out.pdChoices![i]!,
    }));
    const { targets } = build(pickerPdKvCacheAware).pick!(ctx(), scored);
    expect(targets).toHaveLength(1);
    expect(targets[0]!.candidate.id).toBe('g1');
    expect(targets[0]!.pdChoice).toEqual({ prefill: g1.prefill[1], decode: g1.decode[0] });
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
