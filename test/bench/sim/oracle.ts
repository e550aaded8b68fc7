// The benchmark's oracle: a routing cost computed from the exact engine
// state of the simulated cluster (cached and about-to-be-computed blocks,
// waiting queues, running sequences, KV usage, the step in progress) and
// from what it routed, with no signal delay and no look at arrivals that
// have not happened. Bench-only; a strong reference, not a proven optimum.
//
// Round five (`oracle`, kind 'r5'). Cost of sending request r (P prompt
// tokens) to server e, in seconds:
//   cached(e) = leading prompt tokens e holds or is about to compute (<= P - 1)
//   best      = max over candidates of cached; dup(e) = best - cached(e)
//   cost(e)   = ttft(e)                      r's exact TTFT on e (below)
//             + (copy(e) + usage(e) * P + placement(e)) / e's prefill rate
//   ttft(e)   = Engine.predictTtftS(P - cached(e)): e's own step planning
//               (running first, FCFS admission in the token budget and
//               max-num-seqs, sequences leaving as their output ends)
//               replayed on token counts from the step in progress until r's
//               prompt is computed, with no new arrivals. It prices r's own
//               miss, the prefill queued ahead, the decode steps it shares
//               and a full batch, in place of the round-four proxy
//               (waiting count x miss, + 1 s when max-num-seqs run).
//   copy(e)   = the price of the copy beyond its own prefill (already in
//               ttft(e)):
//               closed: 32 * (1 + usage(e)) * dup(e)     (no copy wanted)
//               open:   dup(e) * (mix * 32 * usage(e) + (1 - mix) * (1 / uses - 1))
//   open      = the prefix's traffic needs another holder (need >= 1.5, once
//               the rate window holds >= 1 request per server), or every
//               holder is congested (waits >= 1) and loaded past the bound
//               1.15 x the mean load (waiting + running) + 8 requests (the
//               product's bounded-load affinity, here on exact counts)
//   need, mix, uses, placement: as round four (below).
//   usage(e) * P: as round four. The replay does not see KV capacity
//               (admission stalls, preemption); pricing usage 2 x moved
//               shared-prefix-cold's knee from 34.0 to 34.3 QPS but
//               shared-prefix's from 41 to 34.6 (3 seeds, docs/benchmarks.md).
// Why the bound gate (round five, docs/benchmarks.md): with the exact TTFT
// alone an idle server beats a holder still prefilling the prefix, so at
// the start of hot-prefix both 10k-token prefixes were copied onto the same
// two servers (6 copies where 4 serve), costing 0.4-0.8% of the top-load
// tokens/s for the rest of the run; a prefix that carries more than 1.5 x
// its holders' share of the traffic still gets its copy at once (the trace's
// tool-agent prompts), which the bound alone would delay. Its share needs
// one request per server in the window: on hot-prefix the first three
// requests' shares opened a third holder at 0.03 s (seed 4000).
//
// Round four (`oracle-r4`, kind 'amortised'), in tokens of prefill work
// (seconds = tokens / e's prefill rate):
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
// server is KV-bound (docs/benchmarks.md, round three). Round five keeps
// the amortised copy price and the placement term, which is what that
// lacked, and gates copies as above.
import type { Engine } from './engine.js';
import type { SimRequest } from './workload-types.js';

export type OracleKind = 'r5' | 'amortised' | 'r2';

/** Time constant of the rate estimates, seconds. */
const RATE_TAU_S = 5;
/** Price of a copy of a prefix whose traffic does not need it, in prefills of the copied tokens. */
const DUPLICATION = 32;
/** Round five's gate: a copy is open when need >= this ... */
const NEED_OPEN = 1.5;
/** ... once the rate window holds this many requests per server (the share of the first few is noise) ... */
const NEED_EVIDENCE = 1;
/** ... or every holder's load exceeds (1 + this) x the mean load + BOUND_SLACK requests (the product's bound). */
const BOUND_RELATIVE = 0.15;
const BOUND_SLACK = 8;
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

  /** Cost (seconds; Infinity for an unknown server) of sending sr to each engine. */
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
      const copyTokens = dup * (copy.mix * (1 + DUPLICATION * e.kvUsage) + (1 - copy.mix) / copy.uses);
      const placement = best === 0 && meanRate > 0 ? (rates[i]! / meanRate) * P : 0;
      if (this.kind === 'r5') {
        // ttft(e) already holds the copied tokens' prefill once.
        const extra = copy.open ? copyTokens - dup : DUPLICATION * (1 + e.kvUsage) * dup;
        out[i] = e.predictTtftS(miss) + (extra + e.kvUsage * P + placement) / p.prefillTokensPerS;
        continue;
      }
      const tokens = P - best + copyTokens + e.kvUsage * P + e.waiting.length * miss + placement;
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
  ): { mix: number; uses: number; open: boolean } {
    const blockSize = engines.find((e) => e)?.p.blockSize ?? 64;
    const bestBlocks = Math.floor(best / blockSize);
    let mix = 1;
    let uses = 1;
    let open = true;
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
      if (this.kind === 'r5') {
        // The share needs evidence: a few requests per server in the rate window.
        const evidence = rateAt(this.total, now) * RATE_TAU_S >= NEED_EVIDENCE * servers;
        open = (evidence && need >= NEED_OPEN) || holdersPastBound(engines, cached, best);
      }
    }
    this.total = bump(this.total, now);
    for (const h of sr.hashes) this.blockRates.set(h, bump(this.blockRates.get(h), now));
    return { mix, uses, open };
  }
}

/**
 * Round five's bounded affinity on exact counts: every server holding the
 * longest cached prefix (cached >= best) has requests waiting and more
 * requests (waiting + running) than (1 + BOUND_RELATIVE) x the servers'
 * mean + BOUND_SLACK.
 */
export function holdersPastBound(
  engines: readonly (Engine | undefined)[],
  cached: Float64Array,
  best: number,
): boolean {
  let sum = 0;
  let servers = 0;
  let minLoad = Infinity;
  let minWaiting = Infinity;
  for (let i = 0; i < engines.length; i++) {
    const e = engines[i];
    if (!e) continue;
    const load = e.waiting.length + e.running.length;
    sum += load;
    servers++;
    if (cached[i]! >= best) {
      minLoad = Math.min(minLoad, load);
      minWaiting = Math.min(minWaiting, e.waiting.length);
    }
  }
  if (servers === 0) return false;
  return minWaiting >= 1 && minLoad > (1 + BOUND_RELATIVE) * (sum / servers) + BOUND_SLACK;
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
