// Runs one scheduling profile over a snapshot: filters -> weighted scorers
// -> picker -> header handlers. Pure and synchronous: everything remote was
// fetched into the CycleContext before this runs.
import type { Plugin } from '../plugins/plugin.js';
import {
  SchedulingError,
  type Candidate,
  type CycleContext,
  type EndpointView,
  type PdChoice,
  type PickCharges,
  type ScoredCandidate,
  type SchedulingResult,
} from './types.js';
import { maxScorePick } from './pick.js';

export interface WeightedScorer {
  plugin: Plugin;
  weight: number;
}

export interface CompiledProfile {
  name: string;
  filters: Plugin[];
  scorers: WeightedScorer[];
  /** Undefined: the default picker (best score, random among ties). */
  picker: Plugin | undefined;
  headerHandlers: Plugin[];
  chargers: Plugin[];
  /** Every plugin of the profile, in configured order. */
  plugins: Plugin[];
}

export function endpointCandidates(views: readonly EndpointView[]): Candidate[] {
  const out: Candidate[] = new Array(views.length);
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    out[i] = { kind: 'endpoint', id: v.endpoint.id, endpoint: v };
  }
  return out;
}

export function schedule(
  profile: CompiledProfile,
  ctx: CycleContext,
  endpoints: readonly EndpointView[],
): SchedulingResult {
  if (endpoints.length === 0) {
    throw new SchedulingError('NO_CANDIDATES', 'no ready endpoint in the pool');
  }
  let candidates = endpointCandidates(endpoints);
  for (const f of profile.filters) {
    candidates = f.filter!(ctx, candidates);
    if (candidates.length === 0) {
      throw new SchedulingError('FILTERED_OUT', `filter "${f.name}" left no candidate for the request`);
    }
  }

  const scored = scoreCandidates(profile.scorers, ctx, candidates);
  const picked = profile.picker ? profile.picker.pick!(ctx, scored) : maxScorePick(ctx, scored, 1);
  const first = picked.targets[0];
  if (!first) throw new SchedulingError('NO_PICK', 'the picker chose no target');

  const result = toResult(profile.name, ctx, first, picked.targets.slice(1));
  for (const h of profile.headerHandlers) Object.assign(result.headers, h.headers!(ctx, result));
  for (const c of profile.chargers) mergeCharges(result.charges, c.charges!(ctx, result));
  return result;
}

function scoreCandidates(
  scorers: readonly WeightedScorer[],
  ctx: CycleContext,
  candidates: Candidate[],
): ScoredCandidate[] {
  const n = candidates.length;
  const totals = new Float64Array(n);
  let pdChoices: ReadonlyArray<PdChoice | undefined> | undefined;
  let pdChoiceWeight = -Infinity;
  for (const { plugin, weight } of scorers) {
    const out = plugin.score!(ctx, candidates);
    const s = out.scores;
    for (let i = 0; i < n; i++) {
      const v = s[i]!;
      // Clamp as GIE does, so a misbehaving scorer cannot outweigh the rest.
      totals[i]! += weight * (v > 1 ? 1 : v >= 0 ? v : 0);
    }
    // The PD pods come from the scorer that weighs most: it is the one the
    // user told us to trust.
    if (out.pdChoices && weight > pdChoiceWeight) {
      pdChoices = out.pdChoices;
      pdChoiceWeight = weight;
    }
  }
  const scored: ScoredCandidate[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const sc: ScoredCandidate = { candidate: candidates[i]!, score: totals[i]! };
    const choice = pdChoices?.[i];
    if (choice) sc.pdChoice = choice;
    scored[i] = sc;
  }
  return scored;
}

function pickUniform<T>(ctx: CycleContext, items: readonly T[]): T {
  return items[Math.floor(ctx.random() * items.length)]!;
}

function toResult(
  profile: string,
  ctx: CycleContext,
  first: ScoredCandidate,
  rest: ScoredCandidate[],
): SchedulingResult {
  const c = first.candidate;
  if (c.kind === 'endpoint') {
    const fallbacks: EndpointView[] = [];
    for (const r of rest) if (r.candidate.kind === 'endpoint') fallbacks.push(r.candidate.endpoint);
    return {
      profile,
      primary: c.endpoint,
      fallbacks,
      headers: {},
      charges: withPrefill({ inFlight: [c.endpoint.endpoint.id] }, ctx, c.endpoint.endpoint.id),
      score: first.score,
    };
  }
  const g = c.group;
  const choice = first.pdChoice ?? {
    prefill: pickUniform(ctx, g.prefill),
    decode: pickUniform(ctx, g.decode),
  };
  // PD fallbacks would need their own pod headers; the gateway gets one
  // destination and the leader retries inside its group instead.
  return {
    profile,
    primary: g.leader,
    fallbacks: [],
    pd: { groupId: g.id, leader: g.leader, prefill: choice.prefill, decode: choice.decode },
    headers: {},
    charges: withPrefill(
      { inFlight: [g.leader.endpoint.id, choice.prefill.endpoint.id, choice.decode.endpoint.id] },
      ctx,
      choice.prefill.endpoint.id,
    ),
    score: first.score,
  };
}

/**
 * Prompt tokens `endpointId` is expected to prefill: the prompt minus what
 * it is expected to hold cached (the indexer's hit rate when known, else the
 * approximate prefix match, else nothing cached).
 */
export function uncachedPromptTokens(ctx: CycleContext, endpointId: string): number {
  const total = ctx.request.promptTokens;
  const d = ctx.data;
  const hit = d.hitRates?.get(endpointId);
  let cached = 0;
  if (hit !== undefined) cached = total * (hit > 1 ? 1 : hit > 0 ? hit : 0);
  else if (d.prefixMatches && d.prefixBlockTokens)
    cached = (d.prefixMatches.get(endpointId) ?? 0) * d.prefixBlockTokens;
  return Math.max(0, Math.round(total - Math.min(total, cached)));
}

function withPrefill(charges: PickCharges, ctx: CycleContext, endpointId: string): PickCharges {
  const tokens = uncachedPromptTokens(ctx, endpointId);
  if (tokens > 0) charges.prefillTokens = [{ endpointId, tokens }];
  return charges;
}

function mergeCharges(into: PickCharges, add: Partial<PickCharges>): void {
  if (add.inFlight) {
    for (const id of add.inFlight) if (!into.inFlight.includes(id)) into.inFlight.push(id);
  }
  if (add.bucket) {
    if (into.bucket) into.bucket.items.push(...add.bucket.items);
    else into.bucket = { decayFactor: add.bucket.decayFactor, items: [...add.bucket.items] };
  }
  if (add.prefixRecord) into.prefixRecord = add.prefixRecord;
  if (add.prefillTokens) into.prefillTokens = add.prefillTokens;
}
