// The plugin contract. A plugin is a small object built by a factory from
// zod-validated parameters; it takes part in a profile through the methods
// it implements (filter, score, pick, headers, charges), as GIE places
// plugins by interface rather than by list order.
import type { z } from 'zod';
import type {
  Candidate,
  CycleContext,
  PdChoice,
  PickCharges,
  PickResult,
  ScoredCandidate,
  SchedulingResult,
} from '../scheduling/types.js';

export interface ScoreOutput {
  /** One score per candidate, same order, expected in [0,1] (clamped). */
  scores: ArrayLike<number>;
  /** PD scorers: the prefill/decode pods behind each group's score. */
  pdChoices?: ReadonlyArray<PdChoice | undefined>;
}

/** Remote or stored data a plugin needs before a cycle can run. */
export interface DataNeeds {
  /** Ask the cache-indexer for prefix hit rates. */
  indexer?: { url: string; timeoutMs: number };
  /** Hash the prompt into blocks and match them in the approximate prefix index. */
  prefix?: { blockSizeTokens: number; maxPrefixBlocksToMatch: number; lruCapacityPerServer: number };
  /** PD bucket loads are read from the state store. */
  bucketLoads?: boolean;
}

export interface Plugin {
  readonly type: string;
  readonly name: string;
  filter?(ctx: CycleContext, candidates: Candidate[]): Candidate[];
  score?(ctx: CycleContext, candidates: readonly Candidate[]): ScoreOutput;
  pick?(ctx: CycleContext, scored: ScoredCandidate[]): PickResult;
  /** Request headers to add once the result is known (PD pod addresses). */
  headers?(ctx: CycleContext, result: SchedulingResult): Record<string, string>;
  /** Shared-state charges of the pick beyond in-flight counts. */
  charges?(ctx: CycleContext, result: SchedulingResult): Partial<PickCharges>;
  readonly dataNeeds?: DataNeeds;
  /** Profile handlers are accepted for GIE compatibility (one profile runs). */
  readonly profileHandler?: true;
}

export interface PluginFactory<S extends z.ZodType = z.ZodType> {
  type: string;
  /** Strict schema of `parameters`; defaults are the documented ones. */
  parameters: S;
  create(name: string, params: z.output<S>): Plugin;
}

export type AnyPluginFactory = PluginFactory<z.ZodType>;

export function definePlugin<S extends z.ZodType>(f: PluginFactory<S>): PluginFactory<S> {
  return f;
}
