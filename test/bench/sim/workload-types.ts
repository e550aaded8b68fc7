import type { LLMRequest } from '../../../src/scheduling/types.js';

/** One request of a simulated run and what happened to it. */
export interface SimRequest {
  id: number;
  arrivalS: number;
  /** What the router sees (parsed request with the rendered prompt). */
  req: LLMRequest;
  promptTokens: number;
  outputTokens: number;
  /** Chained hashes of the prompt's full KV blocks (model-server blocks). */
  hashes: readonly string[];
  /** Multi-turn: hashes of prompt + answer, cached when the request ends. */
  cacheHashes?: readonly string[];
  /** Counted in the results (false: warm-up). */
  measured: boolean;
  /** long-short-mix: the request's length class. */
  cls?: 'short' | 'long';
  // Outcome.
  dispatchS?: number;
  firstTokenS?: number;
  finishS?: number;
  hitTokens?: number;
  server?: string;
  /** PD: when the prefill server finished the prompt, and the decode server chosen. */
  prefilledS?: number;
  decodeServer?: string;
  decisionUs?: number;
  /**
   * Bench analysis (prio-probe): when its engine received it, when the step
   * running then ended (= engineSubmitS if the engine was idle), when the
   * step that first admitted it started, and how many steps computed its
   * prompt. Bookkeeping only; no decision reads them.
   */
  engineSubmitS?: number;
  stepFreeS?: number;
  admitS?: number;
  prefillSteps?: number;
}
