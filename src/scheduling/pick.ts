// Picking helpers, the one home for them: the default picker, the pickers
// and the PD scorers all draw through these.
import type { CycleContext, PdChoice, PdGroup, PickResult, ScoredCandidate } from './types.js';

/** Scores closer than this are ties. */
export const SCORE_EPSILON = 1e-9;

/**
 * Best score first, ties broken uniformly at random, then the next best as
 * ordered fallbacks: `count` targets at most.
 */
export function maxScorePick(
  ctx: CycleContext,
  scored: readonly ScoredCandidate[],
  count: number,
): PickResult {
  const n = scored.length;
  if (n === 0) return { targets: [] };
  if (count <= 1) {
    // One pass, reservoir-style random tie-break: no sort, no allocation.
    let best = scored[0]!;
    let ties = 1;
    for (let i = 1; i < n; i++) {
      const s = scored[i]!;
      if (s.score > best.score + SCORE_EPSILON) {
        best = s;
        ties = 1;
      } else if (Math.abs(s.score - best.score) <= SCORE_EPSILON) {
        ties++;
        if (ctx.random() * ties < 1) best = s;
      }
    }
    return { targets: [best] };
  }
  const shuffled = shuffle(ctx, scored);
  // Stable sort over a shuffled list: random order inside each tie.
  shuffled.sort((a, b) => (Math.abs(a.score - b.score) <= SCORE_EPSILON ? 0 : b.score - a.score));
  return { targets: shuffled.slice(0, count) };
}

/** Fisher-Yates over a copy. */
export function shuffle<T>(ctx: CycleContext, items: readonly T[]): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(ctx.random() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

/** A uniformly random element of a non-empty list. */
export function pickUniform<T>(ctx: CycleContext, items: readonly T[]): T {
  return items[Math.floor(ctx.random() * items.length)]!;
}

/** A prefill pod, then a decode pod, each uniformly at random inside the group. */
export function uniformPdChoice(ctx: CycleContext, group: PdGroup): PdChoice {
  const prefill = pickUniform(ctx, group.prefill);
  const decode = pickUniform(ctx, group.decode);
  return { prefill, decode };
}

/**
 * The item of lowest cost, uniformly at random among ties (within
 * SCORE_EPSILON), in one pass without allocating. `items` must be non-empty.
 */
export function minCostRandom<T>(
  ctx: CycleContext,
  items: readonly T[],
  cost: (item: T) => number,
): { item: T; cost: number } {
  let best = items[0]!;
  let bestCost = cost(best);
  let ties = 1;
  for (let i = 1; i < items.length; i++) {
    const it = items[i]!;
    const c = cost(it);
    if (c < bestCost - SCORE_EPSILON) {
      best = it;
      bestCost = c;
      ties = 1;
    } else if (Math.abs(c - bestCost) <= SCORE_EPSILON) {
      ties++;
      if (ctx.random() * ties < 1) best = it;
    }
  }
  return { item: best, cost: bestCost };
}
