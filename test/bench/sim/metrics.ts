// From a simulated run to the numbers the benchmark reports.
import { percentile } from './rng.js';
import type { RunOutput } from './cluster.js';

export interface RunMetrics {
  ttftP50: number;
  ttftP90: number;
  ttftP99: number;
  tpotP50: number;
  outputTokensPerS: number;
  hitRate: number;
  /** long-short-mix: TTFT p90 of the short requests. */
  shortTtftP90: number | undefined;
  /** Coefficient of variation of busy time across serving engines. */
  busyCv: number;
  preemptions: number;
  /** Measured requests that had not got their first token when the run was cut off. */
  censored: number;
  measured: number;
  decisionUsP50: number;
}

export function summarise(out: RunOutput, windowS: number): RunMetrics {
  const measured = out.requests.filter((r) => r.measured);
  const ttft: number[] = [];
  const shortTtft: number[] = [];
  const tpot: number[] = [];
  const decision: number[] = [];
  let censored = 0;
  let hit = 0;
  let prompt = 0;
  for (const r of measured) {
    // A request cut off before its first token counts with the time it waited (a lower bound).
    const first = r.firstTokenS ?? out.endS;
    if (r.firstTokenS === undefined) censored++;
    const t = first - r.arrivalS;
    ttft.push(t);
    if (r.cls === 'short') shortTtft.push(t);
    if (r.finishS !== undefined && r.firstTokenS !== undefined && r.outputTokens > 1) {
      tpot.push((r.finishS - r.firstTokenS) / (r.outputTokens - 1));
    }
    if (r.hitTokens !== undefined && r.hitTokens >= 0) {
      hit += r.hitTokens;
      prompt += r.promptTokens;
    }
    if (r.decisionUs !== undefined) decision.push(r.decisionUs);
  }
  const busy = out.busyS;
  const mean = busy.reduce((a, b) => a + b, 0) / Math.max(1, busy.length);
  const sd = Math.sqrt(busy.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, busy.length));
  return {
    ttftP50: percentile(ttft, 50),
    ttftP90: percentile(ttft, 90),
    ttftP99: percentile(ttft, 99),
    tpotP50: tpot.length ? percentile(tpot, 50) : NaN,
    outputTokensPerS: out.windowTokens / windowS,
    hitRate: prompt === 0 ? 0 : hit / prompt,
    shortTtftP90: shortTtft.length ? percentile(shortTtft, 90) : undefined,
    busyCv: mean > 0 ? sd / mean : 0,
    preemptions: out.preemptions,
    censored,
    measured: measured.length,
    decisionUsP50: decision.length ? percentile(decision, 50) : NaN,
  };
}
