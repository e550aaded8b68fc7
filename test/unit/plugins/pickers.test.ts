import { describe, expect, it } from 'vitest';
import { maxScorePicker } from '../../../src/plugins/max-score-picker.js';
import { pickerRandomPdBucket } from '../../../src/plugins/picker-random-pd-bucket.js';
import { randomPicker } from '../../../src/plugins/random-picker.js';
import { weightedRandomPicker } from '../../../src/plugins/weighted-random-picker.js';
import type { Candidate, ScoredCandidate } from '../../../src/scheduling/types.js';
import { build, ctx, endpoints, pdGroup, seeded, seqRandom, view } from './fixtures.js';

function scored(...scores: number[]): ScoredCandidate[] {
  return endpoints(...scores.map((_, i) => view(`e${i}`))).map((candidate, i) => ({
    candidate,
    score: scores[i]!,
  }));
}

function tally(n: number, draw: () => string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = draw();
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

describe('max-score-picker', () => {
  it('takes the best by default and top N in score order', () => {
    const s = scored(0.3, 0.9, 0.6);
    expect(build(maxScorePicker).pick!(ctx(), s).targets.map((t) => t.score)).toEqual([0.9]);
    const two = build(maxScorePicker, { maxNumOfEndpoints: 2 }).pick!(ctx({ random: seeded(1) }), s);
    expect(two.targets.map((t) => t.score)).toEqual([0.9, 0.6]);
    expect(
      build(maxScorePicker, { maxNumOfEndpoints: 10 }).pick!(ctx({ random: seeded(1) }), s).targets,
    ).toHaveLength(3);
  });
  it('treats maxNumOfEndpoints <= 0 as 1, as GIE does', () => {
    for (const n of [0, -3]) {
      expect(
        build(maxScorePicker, { maxNumOfEndpoints: n }).pick!(ctx(), scored(0.1, 0.2, 0.3)).targets,
      ).toHaveLength(1);
    }
    expect(maxScorePicker.parameters.safeParse({ maxNumOfEndpoints: 'one' }).success).toBe(false);
  });
  it('breaks ties at random', () => {
    const s = scored(0.5, 0.5, 0.5);
    const counts = tally(
      6000,
      () => build(maxScorePicker).pick!(ctx({ random: seeded(9) }), s).targets[0]!.candidate.id,
    );
    // Each call gets a fresh seeded(9): deterministic, always the same pick.
    expect(counts.size).toBe(1);
    const random = seeded(9);
    const spread = tally(
      6000,
      () => build(maxScorePicker).pick!(ctx({ random }), s).targets[0]!.candidate.id,
    );
    expect(spread.size).toBe(3);
    for (const n of spread.values()) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('random-picker', () => {
  it('ignores scores and draws uniformly', () => {
    const s = scored(0, 1, 0.2);
    expect(build(randomPicker).pick!(ctx({ random: seqRandom([0]) }), s).targets[0]).toBe(s[0]);
    expect(build(randomPicker).pick!(ctx({ random: seqRandom([0.99]) }), s).targets[0]).toBe(s[2]);
    const random = seeded(5);
    const counts = tally(6000, () => build(randomPicker).pick!(ctx({ random }), s).targets[0]!.candidate.id);
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
  it('returns N distinct targets, at most all candidates', () => {
    const s = scored(0, 0, 0, 0);
    const t = build(randomPicker, { maxNumOfEndpoints: 3 }).pick!(ctx({ random: seeded(2) }), s).targets;
    expect(new Set(t.map((x) => x.candidate.id)).size).toBe(3);
    expect(
      build(randomPicker, { maxNumOfEndpoints: 9 }).pick!(ctx({ random: seeded(2) }), s).targets,
    ).toHaveLength(4);
    expect(build(randomPicker).pick!(ctx(), []).targets).toEqual([]);
  });
});

describe('weighted-random-picker', () => {
  it('orders by the A-Res key U^(1/score)', () => {
    const s = scored(1, 3);
    // U = 0.5 for both: keys 0.5 and 0.5^(1/3) ~ 0.79 -> the second wins.
    expect(build(weightedRandomPicker).pick!(ctx({ random: seqRandom([0.5]) }), s).targets[0]).toBe(s[1]);
    // U = 0.9 then 0.1: keys 0.9 and 0.1^(1/3) ~ 0.46 -> the first wins.
    expect(build(weightedRandomPicker).pick!(ctx({ random: seqRandom([0.9, 0.1]) }), s).targets[0]).toBe(
      s[0],
    );
  });
  it('picks in proportion to score and never picks a zero score while another is positive', () => {
    const s = scored(1, 2, 3, 0);
    const random = seeded(11);
    const counts = tally(
      30000,
      () => build(weightedRandomPicker).pick!(ctx({ random }), s).targets[0]!.candidate.id,
    );
    expect(counts.get(s[3]!.candidate.id)).toBeUndefined();
    expect(counts.get(s[0]!.candidate.id)! / 30000).toBeCloseTo(1 / 6, 1);
    expect(counts.get(s[1]!.candidate.id)! / 30000).toBeCloseTo(2 / 6, 1);
    expect(counts.get(s[2]!.candidate.id)! / 30000).toBeCloseTo(3 / 6, 1);
    expect(Math.abs(counts.get(s[2]!.candidate.id)! - 15000)).toBeLessThan(400);
  });
  it('falls back to random-picker when no score is positive, and returns N targets', () => {
    const s = scored(0, 0, 0);
    const random = seeded(4);
    const counts = tally(
      3000,
      () => build(weightedRandomPicker).pick!(ctx({ random }), s).targets[0]!.candidate.id,
    );
    expect(counts.size).toBe(3);
    const t = build(weightedRandomPicker, { maxNumOfEndpoints: 2 }).pick!(
      ctx({ random }),
      scored(0.5, 0.1, 0.9),
    ).targets;
    expect(t).toHaveLength(2);
    expect(new Set(t).size).toBe(2);
  });
});

describe('picker-random-pd-bucket', () => {
  const asGroup = (g: ReturnType<typeof pdGroup>, id: string): Candidate => ({
    kind: 'group',
    id,
    group: { id, leader: g.leader, prefill: g.prefill, decode: g.decode },
  });

  it('draws a group, then a prefill and a decode pod inside it', () => {
    const g1 = pdGroup('g1', [{}, {}], [{}, {}, {}]);
    const g2 = pdGroup('g2', [{}, {}], [{}, {}, {}]);
    const s: ScoredCandidate[] = [
      { candidate: asGroup(g1, 'g1'), score: 5 },
      { candidate: asGroup(g2, 'g2'), score: 0 },
    ];
    // group floor(.6*2)=1 -> g2 (scores ignored); prefill floor(0*2)=0; decode floor(.99*3)=2
    const t = build(pickerRandomPdBucket).pick!(ctx({ random: seqRandom([0.6, 0, 0.99]) }), s).targets;
    expect(t).toHaveLength(1);
    expect(t[0]!.candidate.id).toBe('g2');
    expect(t[0]!.pdChoice).toEqual({ prefill: g2.prefill[0], decode: g2.decode[2] });
  });

  it('is uniform over groups and over the pods of a group', () => {
    const groups = [pdGroup('a', [{}, {}], [{}]), pdGroup('b', [{}], [{}, {}]), pdGroup('c')];
    const s: ScoredCandidate[] = groups.map((g, i) => ({ candidate: asGroup(g, 'abc'[i]!), score: i }));
    const random = seeded(21);
    const gCount = new Map<string, number>();
    const pCount = new Map<string, number>();
    for (let i = 0; i < 9000; i++) {
      const t = build(pickerRandomPdBucket).pick!(ctx({ random }), s).targets[0]!;
      gCount.set(t.candidate.id, (gCount.get(t.candidate.id) ?? 0) + 1);
      if (t.candidate.id === 'a')
        pCount.set(t.pdChoice!.prefill.endpoint.id, (pCount.get(t.pdChoice!.prefill.endpoint.id) ?? 0) + 1);
    }
    for (const n of gCount.values()) expect(Math.abs(n - 3000)).toBeLessThan(250);
    expect(pCount.size).toBe(2);
    const [x, y] = [...pCount.values()];
    expect(Math.abs(x! - y!)).toBeLessThan(250);
  });

  it('picks plain endpoints uniformly and nothing from nothing', () => {
    const s = scored(1, 0);
    expect(build(pickerRandomPdBucket).pick!(ctx({ random: seqRandom([0.7]) }), s).targets).toEqual([s[1]]);
    expect(build(pickerRandomPdBucket).pick!(ctx(), []).targets).toEqual([]);
  });
});
