// InferenceModelRewrite rule selection (GIE): for the model a request names,
// a rule with an Exact match of it beats a generic rule (one without
// matches); between objects, the oldest (creationTimestamp, then name) wins;
// within the chosen rule a target is drawn at random in proportion to its
// weight (default 1). Pure: the caller gives the random source.
import type { InferenceModelRewrite } from './objectives.js';

type Rule = InferenceModelRewrite['spec']['rules'][number];

export interface RewriteChoice {
  /** The model the request is sent to. */
  target: string;
  /** The InferenceModelRewrite object whose rule chose it. */
  rewriteName: string;
}

function byAge(a: InferenceModelRewrite, b: InferenceModelRewrite): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** Rewrites in the order ties are broken: oldest first. Sort once per table. */
export function rewritesByAge(rewrites: readonly InferenceModelRewrite[]): InferenceModelRewrite[] {
  return [...rewrites].sort(byAge);
}

function drawTarget(rule: Rule, random: () => number): string {
  let total = 0;
  for (const t of rule.targets) total += t.weight ?? 1;
  let r = random() * total;
  for (const t of rule.targets) {
    r -= t.weight ?? 1;
    if (r < 0) return t.modelRewrite;
  }
  return rule.targets[rule.targets.length - 1]!.modelRewrite;
}

/** The rewrite for `model`, or undefined when no rule applies. `ordered` from rewritesByAge. */
export function chooseRewrite(
  model: string,
  ordered: readonly InferenceModelRewrite[],
  random: () => number,
): RewriteChoice | undefined {
  for (const rw of ordered) {
    for (const rule of rw.spec.rules) {
      if (rule.matches?.some((m) => m.model.value === model)) {
        return { target: drawTarget(rule, random), rewriteName: rw.metadata.name };
      }
    }
  }
  for (const rw of ordered) {
    for (const rule of rw.spec.rules) {
      if (!rule.matches || rule.matches.length === 0) {
        return { target: drawTarget(rule, random), rewriteName: rw.metadata.name };
      }
    }
  }
  return undefined;
}
