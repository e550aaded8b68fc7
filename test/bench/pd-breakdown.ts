// `npm run bench -- pd-breakdown [--policy a,b] [--qps 4,24] [--seeds N] [--bound]`
//
// Where the short requests' TTFT goes on long-short-mix (the routing
// benchmark's PD workload, same seeds and arrivals): per policy and load,
// p50 / p90 of the prefill part (dispatch to prompt computed) and the
// decode part (prompt computed to first token: KV transfer, waiting for the
// decode server's running step, its own step), each also as the excess over
// its no-wait minimum (one prefill step of the prompt on an idle server;
// transfer + one decode step of an idle decode server with an empty cache),
// and where each class's work went. Prints only; docs/benchmarks.md quotes it.
//
// --bound: per short request, the lowest TTFT any choice of prefill and
// decode pod could have given it in that run, the other requests staying
// where the policy put them (the run's recorded step times): for each pod
// pair (same PD group, and any pair), the prefill starts when the prefill
// pod's running step ends (a step cannot be joined; its queue is ignored)
// and takes one step of the prompt alone, the KV transfer follows, the
// sequence joins the decode pod at the end of the step running when its KV
// arrives (at once if the pod is idle) and its first token comes at the end
// of the decode pod's next step (as long as the one recorded there, at
// least overhead + idle decode). The bound's p90 against the target says
// whether any routing of the short requests alone could meet it.
import { simulate } from './sim/cluster.js';
import { pdEndpoints } from './sim/cluster-layout.js';
import type { Engine } from './sim/engine.js';
import { summarise } from './sim/metrics.js';
import { B8_H100, DEFAULT_ROUTER, type ServerParams } from './sim/params.js';
import { policy } from './sim/policies.js';
import { percentile } from './sim/rng.js';
import { flagList, flagNumber, longShortMix, mixSeed, policiesArg } from './sim/pd-mix-args.js';
import type { SimRequest } from './sim/workload-types.js';

const ms = (v: number) => (v * 1000).toFixed(1);
const p5090 = (xs: number[]) => `${ms(percentile(xs, 50))}/${ms(percentile(xs, 90))}`;

/** Share of each server in a sum over requests, as "server:share%" (server = its address's last octet). */
function spread(
  rs: readonly SimRequest[],
  server: (r: SimRequest) => string | undefined,
  w: (r: SimRequest) => number,
) {
  const by = new Map<string, number>();
  let total = 0;
  for (const r of rs) {
    const s = server(r);
    if (s === undefined) continue;
    by.set(s, (by.get(s) ?? 0) + w(r));
    total += w(r);
  }
  return [...by]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k.split(':')[0]!.split('.')[3]}:${Math.round((100 * v) / Math.max(1, total))}%`)
    .join(' ');
}

/** Index of the last step of `log` (see Engine.stepLog) that starts before t, or -1. */
function stepBefore(log: readonly number[], t: number): number {
  let lo = 0;
  let hi = log.length / 2 - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (log[2 * mid]! < t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** When a sequence reaching the engine at t can join a step: the end of the step running at t, else t. */
export function joinAt(log: readonly number[], t: number): number {
  const i = stepBefore(log, t);
  return i >= 0 && log[2 * i + 1]! > t ? log[2 * i + 1]! : t;
}

/** Duration of the recorded step starting at t (within 1 ns), or 0 when none does. */
export function stepStartingAt(log: readonly number[], t: number): number {
  const i = stepBefore(log, t + 1e-9);
  return i >= 0 && Math.abs(log[2 * i]! - t) <= 1e-9 ? log[2 * i + 1]! - log[2 * i]! : 0;
}

/** When the KV of a prompt of `promptTokens` tokens arriving at t reaches a decode pod (prefill pod `prefillLog`). */
export function kvArrival(
  p: ServerParams,
  prefillLog: readonly number[],
  promptTokens: number,
  t: number,
): number {
  const prefilled = joinAt(prefillLog, t) + p.stepOverheadS + promptTokens / p.prefillTokensPerS;
  return prefilled + p.kvTransferSetupS + promptTokens * p.kvTransferPerTokenS;
}

/** First token on decode pod `decodeLog` of a sequence whose KV arrives at `kvAt`. */
export function firstTokenAt(
  p: ServerParams,
  decodeLog: readonly number[],
  promptTokens: number,
  kvAt: number,
): number {
  const join = joinAt(decodeLog, kvAt);
  const minStep =
    p.stepOverheadS +
    p.decodeBaseS +
    p.decodePerSeqS +
    (p.decodeKvS * Math.ceil(promptTokens / p.blockSize)) / p.kvBlocks;
  return join + Math.max(minStep, stepStartingAt(decodeLog, join));
}

/**
 * Lowest first-token time (absolute, seconds) of a prompt of `promptTokens`
 * tokens arriving at t on the pod pair (prefill log, decode log), as the
 * --bound comment above describes.
 */
export function pairBound(
  p: ServerParams,
  prefillLog: readonly number[],
  decodeLog: readonly number[],
  promptTokens: number,
  t: number,
): number {
  return firstTokenAt(p, decodeLog, promptTokens, kvArrival(p, prefillLog, promptTokens, t));
}

/** Length of the step running at t (started before, ends after), 0 when idle. */
export function runningStepS(log: readonly number[], t: number): number {
  const i = stepBefore(log, t);
  return i >= 0 && log[2 * i + 1]! > t ? log[2 * i + 1]! - log[2 * i]! : 0;
}

/**
 * Per request, the lowest TTFT over same-group pod pairs and over any pair,
 * and the lowest over same-group prefill pods when the decode pod is the
 * one whose running step is shortest at the KV's arrival (idle first): a
 * choice that needs no step phase (which no router sees), only each decode
 * pod's exact state at that instant.
 */
function lowerBounds(
  rs: readonly SimRequest[],
  engines: readonly Engine[],
  group: ReadonlyMap<string, string>,
  p: ServerParams,
): { sameGroup: number[]; anyPair: number[]; shortestStep: number[] } {
  const prefill = engines.filter((e) => e.role === 'prefill');
  const decode = engines.filter((e) => e.role === 'decode');
  const sameGroup: number[] = [];
  const anyPair: number[] = [];
  const shortestStep: number[] = [];
  for (const r of rs) {
    let same = Infinity;
    let any = Infinity;
    let blind = Infinity;
    for (const pe of prefill) {
      const kvAt = kvArrival(p, pe.stepLog!, r.promptTokens, r.arrivalS);
      let pick: Engine | undefined;
      for (const de of decode) {
        const t = firstTokenAt(p, de.stepLog!, r.promptTokens, kvAt) - r.arrivalS;
        if (t < any) any = t;
        if (group.get(pe.id) !== group.get(de.id)) continue;
        if (t < same) same = t;
        if (!pick || runningStepS(de.stepLog!, kvAt) < runningStepS(pick.stepLog!, kvAt)) pick = de;
      }
      if (pick) blind = Math.min(blind, firstTokenAt(p, pick.stepLog!, r.promptTokens, kvAt) - r.arrivalS);
    }
    sameGroup.push(same);
    anyPair.push(any);
    shortestStep.push(blind);
  }
  return { sameGroup, anyPair, shortestStep };
}

export async function run(args: string[]): Promise<void> {
  const sc = longShortMix();
  const policies = policiesArg(args, 'hermes-pd-bucket,random-pd-bucket');
  const loads = flagList(args, '--qps', '4,24').map(Number);
  const seeds = flagNumber(args, '--seeds', 3);
  const bound = args.includes('--bound');
  const group = pdEndpoints(sc.pd!.pd!).group;
  const p = B8_H100;
  const prefillMin = (r: SimRequest) => p.stepOverheadS + r.promptTokens / p.prefillTokensPerS;
  const decodeMin = (r: SimRequest) =>
    p.kvTransferSetupS + r.promptTokens * p.kvTransferPerTokenS + p.stepOverheadS + p.decodeBaseS;
  for (const qps of loads) {
    for (const pid of policies) {
      for (let s = 0; s < seeds; s++) {
        const seed = mixSeed(s, qps);
        const gen = sc.generator.generate(seed, qps, sc.windowS);
        const out = await simulate({
          policy: policy(pid),
          cluster: sc.pd!,
          router: DEFAULT_ROUTER,
          run: gen,
          seed,
          maxDrainS: 300,
          recordSteps: bound,
        });
        const m = summarise(out, sc.windowS);
        const done = gen.requests.filter(
          (r) => r.measured && r.firstTokenS !== undefined && r.prefilledS !== undefined,
        );
        const short = done.filter((r) => r.cls === 'short');
        const long = done.filter((r) => r.cls === 'long');
        const prefill = short.map((r) => r.prefilledS! - r.dispatchS!);
        const decode = short.map((r) => r.firstTokenS! - r.prefilledS!);
        const lowerBound = short.map((r) => prefillMin(r) + decodeMin(r));
        console.log(
          `${pid} ${qps} QPS seed ${seed}: TTFT p90 ${m.ttftP90.toFixed(3)} s, short p90 ${m.shortTtftP90!.toFixed(4)} s, ${Math.round(m.outputTokensPerS)} tok/s` +
            ` | short ms p50/p90: prefill ${p5090(prefill)} (excess ${p5090(short.map((r, i) => prefill[i]! - prefillMin(r)))})` +
            `, decode ${p5090(decode)} (excess ${p5090(short.map((r, i) => decode[i]! - decodeMin(r)))})` +
            `, no-wait bound p90 ${ms(percentile(lowerBound, 90))}` +
            ` | long TTFT p50 ${percentile(
              long.map((r) => r.firstTokenS! - r.arrivalS),
              50,
            ).toFixed(3)} s`,
        );
        if (bound) {
          const b = lowerBounds(short, out.engines, group, p);
          console.log(
            `  lowest short TTFT any pod choice gives (others fixed), ms p50/p90: same group ${p5090(b.sameGroup)}, any pair ${p5090(b.anyPair)}; decode pod with the shortest running step ${p5090(b.shortestStep)}`,
          );
        }
        console.log(
          `  prefill servers: short requests ${spread(
            short,
            (r) => r.server,
            () => 1,
          )}; long prompt tokens ${spread(
            long,
            (r) => r.server,
            (r) => r.promptTokens,
          )}`,
        );
        console.log(
          `  decode servers: short requests ${spread(
            short,
            (r) => r.decodeServer,
            () => 1,
          )}; long requests ${spread(
            long,
            (r) => r.decodeServer,
            () => 1,
          )}`,
        );
      }
    }
  }
}
