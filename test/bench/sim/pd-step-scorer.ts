// Bench-only (docs/benchmarks.md, branch pdstep; not in the product
// registry): scorer-pd-bucket whose decode choice uses each decode pod's
// step clock, as a router could read it from streamed responses
// (sim/step-clock.ts). Everything else is the product scorer's formula
// (src/plugins/scorer-pd-bucket.ts: shares, prefill costs, the decode
// fallback), re-stated here because the product keeps it inside its factory.
// The decode part, for a request whose KV is predicted to land in fewer
// than PHASE_STEPS mean periods:
//   land(g)     = when the KV lands if prefilled on group g's chosen prefill
//                 pod p: now + overhead + (pending(p) + P) / rate + transfer
//                 (the simulated server's own constants: the best case of
//                 any prediction) + the chunk lag's mean (the clocks are
//                 seen that late); or, `learned`, now + the router's own
//                 fit of c0 + c1 * (P + pending(p)) (sim/landing-fit.ts)
//   w(d)        = first boundary of d's clock at or after land(g) minus
//                 land(g) (the clock extrapolated by whole periods)
//   delay(d)    = w(d) + T(d) + T(d) * (P(miss) - P(catch the previous)),
//                 the landing error uniform on +-errMs; an idle pod (no
//                 running, nothing in flight) starts at once: the shortest
//                 period; a busy pod without a clock: 1.5 x the mean period
//   cost(d)     = alpha * delay(d) / mean delay
// crossIdle: a short-bucket prompt on a prefill pod of the long share with
// nothing pending pays no separation price (the product charges beta).
import type {
  BucketCharge,
  Candidate,
  CycleContext,
  EndpointView,
  PdChoice,
} from '../../../src/scheduling/types.js';
import { minCostRandom, podsOf } from '../../../src/plugins/common.js';
import { costsToScores } from '../../../src/plugins/kv-cost.js';
import { definePlugin } from '../../../src/plugins/plugin.js';
import {
  bucketOf,
  decodeCosts,
  prefillCosts,
  scorerPdBucket,
} from '../../../src/plugins/scorer-pd-bucket.js';
import type { ServerParams } from './params.js';
import type { LandingFit } from './landing-fit.js';
import type { StepClock } from './step-clock.js';

/** How many decode steps ahead a landing may lie for the step phase to count. */
export const PHASE_STEPS = 4;

/**
 * Expected wait-and-first-step on a pod with clock `c` for KV landing at
 * `landMs` (error uniform on +-errMs); undefined without a period.
 */
export function stepDelayMs(c: StepClock, landMs: number, errMs = 0): number | undefined {
  const t = c.periodMs;
  if (t === undefined || !(t > 0)) return undefined;
  const k = Math.max(0, Math.ceil((landMs - c.lastMs) / t));
  const w = c.lastMs + k * t - landMs;
  if (!(errMs > 0)) return w + t;
  // A boundary closer than the error may be missed (one more step), one just
  // passed may still be caught.
  const a = Math.min(errMs, t / 2);
  const miss = Math.min(1, Math.max(0, (a - w) / (2 * a)));
  const catchPrev = Math.min(1, Math.max(0, (w - t + a) / (2 * a)));
  return w + t + t * (miss - catchPrev);
}

export interface PdStepOptions {
  type: string;
  server: ServerParams;
  /** The router's step clocks now (the simulator's StepClocks). */
  clocks: (nowMs: number) => ReadonlyMap<string, StepClock>;
  /** Mean chunk lag, ms (added to the landing: the clocks are seen that late). */
  lagMs: number;
  /** Half-width of the landing error, ms (0: none priced). */
  errMs: number;
  crossIdle: boolean;
  /** Landing from the router's own fit (sim/landing-fit.ts) instead of the server constants. */
  learned?: () => LandingFit | undefined;
  /** Requests decided phase-blind (the product's decode rule) so that they feed the fit without bias. */
  explore?: (requestId: string) => boolean;
}

export function pdStepScorer(o: PdStepOptions) {
  return definePlugin({
    type: o.type,
    parameters: scorerPdBucket.parameters,
    create: (name, p) => {
      const { alpha, bucketSeperateLength: sep } = p;
      // The product's tables; crossIdle waives the cross term on an idle prefill pod for short prompts.
      const idleCross = (b: 'short' | 'long') =>
        o.crossIdle && b === 'short' ? (v: EndpointView) => v.pendingPrefillTokens === 0 : undefined;
      const s = o.server;
      const landingMs = (ctx: CycleContext, prefill: EndpointView, tokens: number): number | undefined => {
        if (o.learned) {
          const y = o.learned()?.predict(tokens + prefill.pendingPrefillTokens);
          return y === undefined ? undefined : ctx.data.nowMs + y + o.lagMs;
        }
        return (
          ctx.data.nowMs +
          1000 *
            (s.stepOverheadS +
              (prefill.pendingPrefillTokens + tokens) / s.prefillTokensPerS +
              s.kvTransferSetupS +
              tokens * s.kvTransferPerTokenS) +
          o.lagMs
        );
      };
      const phaseCosts = (
        ctx: CycleContext,
        candidates: readonly Candidate[],
        bestP: ReadonlyArray<{ item: EndpointView } | undefined>,
        tokens: number,
      ): Map<string, number> | undefined => {
        if (o.explore?.(ctx.request.requestId)) return undefined;
        const clocks = o.clocks(ctx.data.nowMs);
        const pods: EndpointView[] = [];
        const delays: Array<number | undefined> = [];
        let ahead = Infinity;
        let tMin = Infinity;
        let tSum = 0;
        let nT = 0;
        for (let i = 0; i < candidates.length; i++) {
          const c = candidates[i]!;
          if (c.kind !== 'group') continue;
          const land = landingMs(ctx, bestP[i]!.item, tokens);
          if (land === undefined) return undefined;
          ahead = Math.min(ahead, land - ctx.data.nowMs);
          for (const v of c.group.decode) {
            const clock = clocks.get(v.endpoint.id);
            const t = clock?.periodMs;
            if (t !== undefined && t > 0) {
              tMin = Math.min(tMin, t);
              tSum += t;
              nT++;
            }
            pods.push(v);
            delays.push(clock ? stepDelayMs(clock, land, o.errMs) : undefined);
          }
        }
        if (nT === 0) return undefined;
        const tMean = tSum / nT;
        // Past a few steps the phase is lost: steps change length as sequences join and leave.
        if (ahead > PHASE_STEPS * tMean) return undefined;
        const ws = pods.map((v, i) =>
          v.runningRequests === 0 && v.inFlight === 0 ? tMin : (delays[i] ?? 1.5 * tMean),
        );
        let sum = 0;
        for (const w of ws) sum += w;
        const mean = sum / ws.length;
        const out = new Map<string, number>();
        for (let i = 0; i < pods.length; i++)
          out.set(pods[i]!.endpoint.id, mean > 0 ? (alpha * ws[i]!) / mean : 0);
        return out;
      };
      return {
        type: o.type,
        name,
        dataNeeds: { bucketLoads: true },
        score: (ctx, candidates) => {
          const b = bucketOf(ctx.request.promptTokens, sep);
          const tokens = Math.max(1, ctx.request.promptTokens);
          const prefillSide = podsOf(candidates, 'prefill');
          for (const c of candidates) if (c.kind === 'endpoint') prefillSide.push(c.endpoint);
          const costP = prefillCosts(ctx, prefillSide, b, tokens, p, idleCross(b));
          const n = candidates.length;
          const costs = new Float64Array(n);
          const pdChoices: Array<PdChoice | undefined> = new Array(n);
          // The prefill pods first: each group's landing follows from its pick.
          const bestP: Array<{ item: EndpointView; cost: number } | undefined> = new Array(n);
          for (let i = 0; i < n; i++) {
            const c = candidates[i]!;
            if (c.kind === 'group')
              bestP[i] = minCostRandom(ctx, c.group.prefill, (v) => costP.get(v.endpoint.id)!);
          }
          const costD =
            phaseCosts(ctx, candidates, bestP, tokens) ?? decodeCosts(ctx, podsOf(candidates, 'decode'), p);
          for (let i = 0; i < n; i++) {
            const c = candidates[i]!;
            if (c.kind === 'endpoint') {
              costs[i] = costP.get(c.endpoint.endpoint.id)!;
              continue;
            }
            const bp = bestP[i]!;
            const bd = minCostRandom(ctx, c.group.decode, (v) => costD.get(v.endpoint.id)!);
            costs[i] = bp.cost + bd.cost;
            pdChoices[i] = { prefill: bp.item, decode: bd.item };
          }
          return { scores: costsToScores(costs), pdChoices };
        },
        charges: (ctx, result) => {
          const b = bucketOf(ctx.request.promptTokens, sep);
          const tokens = Math.max(1, ctx.request.promptTokens);
          const items: BucketCharge[] = result.pd
            ? [
                { endpointId: result.pd.prefill.endpoint.id, bucket: b, amount: tokens },
                { endpointId: result.pd.decode.endpoint.id, bucket: b, amount: tokens },
              ]
            : [{ endpointId: result.primary.endpoint.id, bucket: b, amount: tokens }];
          return { bucket: { decayFactor: p.decayFactor, items } };
        },
      };
    },
  });
}
