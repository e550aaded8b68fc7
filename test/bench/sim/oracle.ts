// The benchmark's oracle: a routing cost computed from the exact engine
// state of the simulated cluster (cached and about-to-be-computed blocks,
// waiting queues, KV usage) and from what it routed, with no signal delay.
// Bench-only; a strong reference, not a proven optimum.
//
// Cost of sending request r (P prompt tokens) to server e, in tokens of
// prefill work (seconds = tokens / e's prefill rate):
//   cached(e) = leading prompt tokens e holds or is about to compute (<= P - 1)
//   best      = max over candidates of cached; dup(e) = best - cached(e): prefix
//               tokens some server holds that e would compute and keep again
//   cost(e)   = (P - best)                             what any server computes
//             + dup(e) * (mix * (1 + 32 * usage(e))     a copy nobody needs ...
//                         + (1 - mix) / uses)           ... or one shared by later requests
//             + usage(e) * P                           squeezing P into e's KV cache
//             + waiting(e) * (P - cached(e))           the queue ahead (exact count)
//             + placement(e)
//             (+ 1 s of work when e runs max-num-seqs sequences)
//   need      = (share of recent requests carrying the block where the
//               longest cached prefix ends) / (share of the servers holding it)
//   mix       = clamp01(2 * (1 - need)): 1 when the prefix's traffic is half
//               its holders' share of the cluster or less, 0 when it fills it
//   uses      = max(1, that prefix's request rate * 5 s / (holders + 1)): the
//               later requests a new copy would serve, so a needed copy is
//               paid by all of them, an unneeded one by the request that
//               makes it, at 32 prefills scaled by how full e's cache is
//               (the copy crowds out what e holds)
//   placement = P * routedRate(e) / mean routedRate, only when no server
//               holds any of the prompt: a new prefix brings its group's
//               later requests to e, so it goes where the routed prompt +
//               output tokens per second (decayed, 5 s) are lowest
// Why amortised: a copy is paid once, by the request that makes it, but it
// holds KV for as long as its group is active and every later request of
// the group follows it. The round-two oracle (`oracle-r2`: predicted TTFT +
// 4 x the whole uncached prefill time, a fixed price) copied 6,000-token
// prefixes under load (hit rate 0.85 of 0.99 at 60 QPS on shared-prefix)
// and lost to the Hermes policies; predicting TTFT exactly did not help,
// because equalising TTFT spreads a KV-bound server's groups until every
// server is KV-bound (docs/benchmarks.md, round three).
import type { Engine } from './engine.js';
import type { SimRequest } from './workload-types.js';

export type OracleKind = 'amortised' | 'r2';

/** Time constant of the rate estimates, seconds. */
const RATE_TAU_S = 5;
/** Price of a copy of a prefix whose traffic does not need it, in prefills of the copied tokens. */
const DUPLICATION = 32;
/** The round-two oracle's fixed duplication price (x the uncached prefill time). */
const R2_DUPLICATION = 4;

/** An exponentially decayed rate (per second). */
interface Rate {
  atS: number;
  perS: number;
}

function rateAt(r: Rate | undefined, nowS: number): number {
  return r ? r.perS * Math.exp(-(nowS - r.atS) / RATE_TAU_S) : 0;
}

function bump(r: Rate | undefined, nowS: number, amount = 1): Rate {
  return { atS: nowS, perS: rateAt(r, nowS) + amount / RATE_TAU_S };
}

export class OracleModel {
  /** Rate of requests containing each block (by chained hash), and of all requests. */
  private readonly blockRates = new Map<string, Rate>();
  private total: Rate | undefined;
  /** Prompt + output tokens routed to each server per second. */
  private readonly routed = new Map<string, Rate>();

  constructor(
    private readonly kind: OracleKind,
    private readonly nowS: () => number,
  ) {}

  /** Cost (seconds of prefill work; Infinity for an unknown server) of sending sr to each engine. */
  costs(engines: readonly (Engine | undefined)[], sr: SimRequest): Float64Array {
    const n = engines.length;
    const out = new Float64Array(n);
    const cached = new Float64Array(n);
    let best = 0;
    for (let i = 0; i < n; i++) {
      const e = engines[i];
      if (!e) continue;
      cached[i] = Math.min(e.cachedPrefixTokens(sr.hashes), sr.promptTokens - 1);
      if (cached[i]! > best) best = cached[i]!;
    }
    if (this.kind === 'r2') {
      for (let i = 0; i < n; i++) {
        const e = engines[i];
        out[i] = e ? r2Cost(e, sr, sr.promptTokens - cached[i]!) : Infinity;
      }
      return out;
    }
    const now = this.nowS();
    const copy = this.copyTerms(engines, cached, best, sr, now);
    const rates = engines.map((e) => (e ? rateAt(this.routed.get(e.id), now) : 0));
    let known = 0;
    let meanRate = 0;
    for (let i = 0; i < n; i++) if (engines[i]) known++;
    for (const r of rates) meanRate += r / Math.max(1, known);
    const P = sr.promptTokens;
    for (let i = 0; i < n; i++) {
      const e = engines[i];
      if (!e) {
        out[i] = Infinity;
        continue;
      }
      const p = e.p;
      const miss = P - cached[i]!;
      const dup = best - cached[i]!;
      const tokens =
        P -
        best +
        dup * (copy.mix * (1 + DUPLICATION * e.kvUsage) + (1 - copy.mix) / copy.uses) +
        e.kvUsage * P +
        e.waiting.length * miss +
        (best === 0 && meanRate > 0 ? (rates[i]! / meanRate) * P : 0);
      out[i] = tokens / p.prefillTokensPerS + (e.running.length >= p.maxNumSeqs ? 1 : 0);
    }
    return out;
  }

  /** The request went to `endpointId`: its prompt and output tokens join that server's routed rate. */
  picked(endpointId: string, sr: SimRequest): void {
    const now = this.nowS();
    this.routed.set(endpointId, bump(this.routed.get(endpointId), now, sr.promptTokens + sr.outputTokens));
  }

  /**
   * mix = clamp01(2 * (1 - need)) and the later requests a new copy would
   * serve in the next RATE_TAU_S seconds (see the top comment); records the
   * request's blocks.
   */
  private copyTerms(
    engines: readonly (Engine | undefined)[],
    cached: Float64Array,
    best: number,
    sr: SimRequest,
    now: number,
  ): { mix: number; uses: number } {
    const blockSize = engines.find((e) => e)?.p.blockSize ?? 64;
    const bestBlocks = Math.floor(best / blockSize);
    let mix = 1;
    let uses = 1;
    if (bestBlocks > 0) {
      let holders = 0;
      let servers = 0;
      for (let i = 0; i < engines.length; i++) {
        if (!engines[i]) continue;
        servers++;
        if (cached[i]! >= best) holders++;
      }
      const rate = rateAt(this.blockRates.get(sr.hashes[bestBlocks - 1]!), now);
      const need = ((rate / Math.max(1e-9, rateAt(this.total, now))) * servers) / holders;
      mix = Math.max(0, Math.min(1, 2 * (1 - need)));
      uses = Math.max(1, (rate * RATE_TAU_S) / (holders + 1));
    }
    this.total = bump(this.total, now);
    for (const h of sr.hashes) this.blockRates.set(h, bump(this.blockRates.get(h), now));
    return { mix, uses };
  }
}

/**
 * The round-two oracle, seconds: predicted TTFT (the uncached prefill queued
 * on e plus this request's, at the peak rate, plus one step of overhead and
 * decode per budget-full), + 4 x this request's uncached prefill time, + a
 * penalty when e's free and evictable KV cannot hold the request or e runs
 * max-num-seqs sequences.
 */
function r2Cost(e: Engine, sr: SimRequest, uncached: number): number {
  const p = e.p;
  const prefill = e.pendingPrefillTokens() + uncached;
  const steps = Math.ceil(prefill / p.maxBatchedTokens);
  const decodeStep =
    e.running.length > 0 ? p.decodeBaseS + p.decodeKvS * e.kvUsage + p.decodePerSeqS * e.running.length : 0;
  let t = prefill / p.prefillTokensPerS + steps * (p.stepOverheadS + decodeStep);
  t += (R2_DUPLICATION * uncached) / p.prefillTokensPerS;
  const needBlocks = Math.ceil((uncached + sr.outputTokens) / p.blockSize);
  const room = p.kvBlocks - e.usedBlocks;
  if (needBlocks > room) t += (10 * (needBlocks - room)) / needBlocks;
  if (e.running.length >= p.maxNumSeqs) t += 1;
  return t;
}
