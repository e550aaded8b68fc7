// The plugin contract, as the scheduler sees it: one small interface per
// extension point, and a type guard for each so a profile is compiled into
// typed lists once and the scheduler calls plugins without assertions. A
// plugin object may implement several (prefix-cache-scorer scores and
// charges); how plugins are built from parameters is in src/plugins/plugin.ts.
import type {
  Candidate,
  CycleContext,
  EndpointView,
  PdChoice,
  PickCharges,
  PickResult,
  ScoredCandidate,
  SchedulingResult,
} from './types.js';

export interface ScoreOutput {
  /** One score per candidate, same order, expected in [0,1] (clamped). */
  scores: ArrayLike<number>;
  /** PD scorers: the prefill/decode pods behind each group's score. */
  pdChoices?: ReadonlyArray<PdChoice | undefined>;
}

/** Remote or stored data a plugin needs before a cycle can run. */
export interface DataNeeds {
  /** Ask the cache-indexer for prefix hit rates. */
  indexer?: IndexerNeed;
  /** Hash the prompt into blocks and match them in the approximate prefix index. */
  prefix?: PrefixNeed;
  /** PD bucket loads are read from the state store. */
  bucketLoads?: boolean;
}

export interface IndexerNeed {
  url: string;
  timeoutMs: number;
}

export interface PrefixNeed {
  blockSizeTokens: number;
  maxPrefixBlocksToMatch: number;
  lruCapacityPerServer: number;
  /**
   * Fields the plugin's configuration left at a default it does not insist
   * on: another prefix plugin of the profile that sets them wins (collectNeeds).
   */
  adoptable?: readonly PrefixField[];
}

export type PrefixField = 'blockSizeTokens' | 'maxPrefixBlocksToMatch' | 'lruCapacityPerServer';

/** What every plugin has: GIE's TypedName, used in logs, errors and metrics. */
export interface Plugin {
  readonly type: string;
  readonly name: string;
  filter?(ctx: CycleContext, candidates: Candidate[]): Candidate[];
  score?(ctx: CycleContext, candidates: readonly Candidate[]): ScoreOutput;
  pick?(ctx: CycleContext, scored: ScoredCandidate[]): PickResult;
  headers?(ctx: CycleContext, result: SchedulingResult): Record<string, string>;
  charges?(ctx: CycleContext, result: SchedulingResult): Partial<PickCharges>;
  readonly dataNeeds?: DataNeeds;
  /** Saturation detectors (GIE): how full the pool is, 1 = saturated. */
  saturation?(candidates: readonly EndpointView[]): number;
  /** Profile handlers are accepted for GIE compatibility (one profile runs). */
  readonly profileHandler?: true;
}

/** Narrows the candidate set (never to more candidates than it was given). */
export interface Filter extends Plugin {
  filter(ctx: CycleContext, candidates: Candidate[]): Candidate[];
}

/** Gives every candidate a score in [0,1]; the scheduler weighs and sums. */
export interface Scorer extends Plugin {
  score(ctx: CycleContext, candidates: readonly Candidate[]): ScoreOutput;
}

/** Turns weighted scores into ordered targets (first = primary). */
export interface Picker extends Plugin {
  pick(ctx: CycleContext, scored: ScoredCandidate[]): PickResult;
}

/** Request headers to add once the result is known (PD pod addresses). */
export interface HeaderHandler extends Plugin {
  headers(ctx: CycleContext, result: SchedulingResult): Record<string, string>;
}

/** Shared-state charges of the pick beyond in-flight counts. */
export interface Charger extends Plugin {
  charges(ctx: CycleContext, result: SchedulingResult): Partial<PickCharges>;
}

/**
 * Judges the pool from the candidates' signals and the router's in-flight
 * charges (all replicas): >= 1 means saturated, sheddable requests are shed.
 */
export interface SaturationDetector extends Plugin {
  saturation(candidates: readonly EndpointView[]): number;
}

/** Data fetched by the director before the cycle (indexer, prefix index, bucket loads). */
export interface DataNeeder extends Plugin {
  readonly dataNeeds: DataNeeds;
}

export const isFilter = (p: Plugin): p is Filter => typeof p.filter === 'function';
export const isScorer = (p: Plugin): p is Scorer => typeof p.score === 'function';
export const isPicker = (p: Plugin): p is Picker => typeof p.pick === 'function';
export const isHeaderHandler = (p: Plugin): p is HeaderHandler => typeof p.headers === 'function';
export const isCharger = (p: Plugin): p is Charger => typeof p.charges === 'function';
export const isSaturationDetector = (p: Plugin): p is SaturationDetector =>
  typeof p.saturation === 'function';
export const hasDataNeeds = (p: Plugin): p is DataNeeder => p.dataNeeds !== undefined;

/** Takes part in scheduling (as opposed to a profile handler, accepted and inert). */
export function isSchedulingPlugin(p: Plugin): boolean {
  return isFilter(p) || isScorer(p) || isPicker(p) || isHeaderHandler(p);
}
