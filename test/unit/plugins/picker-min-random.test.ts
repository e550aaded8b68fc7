import { describe, expect, it } from 'vitest';
import { pickerMinRandom as factory } from '../../../src/plugins/picker-min-random.js';
import type { ScoredCandidate } from '../../../src/scheduling/types.js';
import { build, ctx, endpoints, seeded, seqRandom, view } from './fixtures.js';

function scored(...scores: number[]): ScoredCandidate[] {
  return endpoints(...scores.map((_, i) => view(`e${i}`))).map((candidate, i) => ({
    candidate,
    score: scores[i]!,
  }));
}

describe('picker-min-random', () => {
  it('returns one target by default (one-address gateways), fallbacks in score order when asked', () => {
    const s = scored(0.2, 0.9, 0.5, 0.7);
    expect(build(factory).pick!(ctx({ random: seeded(1) }), s).targets.map((t) => t.score)).toEqual([0.9]);
    const three = build(factory, { maxNumOfEndpoints: 3 }).pick!(ctx({ random: seeded(1) }), s);
    expect(three.targets.map((t) => t.score)).toEqual([0.9, 0.7, 0.5]);
  });

  it('honours maxNumOfEndpoints and never returns more targets than candidates', () => {
    const p = build(factory, { maxNumOfEndpoints: 5 });
    expect(p.pick!(ctx(), scored(0.1, 0.3)).targets.map((t) => t.score)).toEqual([0.3, 0.1]);
    expect(build(factory).pick!(ctx(), scored(0.4)).targets).toHaveLength(1);
    expect(build(factory).pick!(ctx(), []).targets).toEqual([]);
  });

  it('breaks ties (within 1e-9) with the injected random source', () => {
    const s = scored(0.5, 0.5 + 1e-12, 0.1);
    const p = build(factory, { maxNumOfEndpoints: 1 });
    // Reservoir tie-break: the second tie replaces the first when random() * 2 < 1.
    expect(p.pick!(ctx({ random: seqRandom([0.3]) }), s).targets[0]!.candidate.id).toBe(s[1]!.candidate.id);
    expect(p.pick!(ctx({ random: seqRandom([0.7]) }), s).targets[0]!.candidate.id).toBe(s[0]!.candidate.id);
  });

  it('is a uniform random picker when every candidate ties (no scorer)', () => {
    const s = scored(0, 0, 0, 0);
    const p = build(factory, { maxNumOfEndpoints: 1 });
    const counts = new Map<string, number>();
    const random = seeded(7);
    for (let i = 0; i < 8000; i++) {
      const id = p.pick!(ctx({ random }), s).targets[0]!.candidate.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });

  it('rejects maxNumOfEndpoints that is not a positive integer', () => {
    for (const v of [0, 1.5, 'three'])
      expect(factory.parameters.safeParse({ maxNumOfEndpoints: v }).success).toBe(false);
  });
});
