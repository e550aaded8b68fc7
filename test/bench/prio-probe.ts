// `npm run bench -- prio-probe [--seed N] [--scales 0.3,0.075] [--sheddable-saturation X] [--policy P]
//   [--mix per-request|per-application] [--bound] [--steps] [--engine-priority] [--max-batched N]`
//
// Where the priority-10 requests of issue 14's 20/80 mix spend their TTFT on
// the trace replay (flow control on, --policy, default gie-default): the EPP queue (dispatch -
// arrival), the server (first token - dispatch), and of the server's share
// their own prefill (uncached prompt tokens / the server's prefill rate)
// against the rest (the engine's queue and batch). Per request mix and per
// application mix; for the latter also per application.
//
// Round six: the time in the server split by the engine's own records
// (SimRequest.engineSubmitS / stepFreeS / admitS): the wait for the step
// running when it reached the engine, the wait behind other queued requests
// (from that step's end to the start of the step that admits it), and the
// prefill phase (admission to first token) = its own prefill (uncached
// tokens / rate) + what it shares its steps with (other prefill chunks,
// decode, step overhead).
// --bound: at each priority-10 arrival, every server's state as the run has
// it then (the other requests where the policy put them), the request's
// TTFT on its best server if sent there at once: `Engine.predictTtftS` (the
// engine's FCFS step planning replayed from that instant, no later
// arrivals, KV capacity not modelled), and a no-queue bound (the running
// step's end, then its uncached prompt alone in steps of maxBatchedTokens).
// --steps: per server every step's prefill tokens of priority-10 and other
// requests and its decoding sequences; for the priority-10 tail, what the
// step it waited for and the steps that computed its prompt held.
// --max-batched N: bench what-if, the servers' step token budget (vLLM's
// --max-num-batched-tokens; the trace's servers have 8,192).
// --engine-priority: bench what-if, engines schedule as vLLM's
// `--scheduling-policy priority` with the request's priority (Engine.schedPriority).
import {
  FLOW_TRACE,
  SETTINGS,
  mixPriorities,
  mixPrioritiesByApp,
  traceFileScenario,
} from './flow-control.js';
import { cloneRequests } from './routing.js';
import { simulate } from './sim/cluster.js';
import { SimFlow } from './sim/flow-control.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { percentile } from './sim/rng.js';
import { offeredQps } from './sim/trace.js';
import type { Engine, Seq } from './sim/engine.js';
import type { SimRequest } from './sim/workload-types.js';

const arg = (a: string[], f: string) => (a.indexOf(f) < 0 ? undefined : a[a.indexOf(f) + 1]);
const r3 = (v: number) => Math.round(v * 1000) / 1000;

const p = (xs: number[], q: number) => (xs.length ? r3(percentile(xs, q)) : NaN);
const mean = (xs: number[]) => (xs.length ? r3(xs.reduce((a, b) => a + b, 0) / xs.length) : NaN);

export async function run(args: string[]): Promise<void> {
  const seed = Number(arg(args, '--seed') ?? 1000);
  const scales = (arg(args, '--scales') ?? '0.3,0.075').split(',').map(Number);
  const shed = arg(args, '--sheddable-saturation');
  const pid = (arg(args, '--policy') ?? 'gie-default') as PolicyId;
  const mixes = (arg(args, '--mix') ?? 'per-request,per-application').split(',');
  const bound = args.includes('--bound');
  const enginePriority = args.includes('--engine-priority');
  const stepsFlag = args.includes('--steps');
  const sc = traceFileScenario(FLOW_TRACE, scales);
  // --max-batched N (bench what-if): the servers' token budget per step (vLLM's --max-num-batched-tokens).
  const maxBatched = arg(args, '--max-batched');
  const cluster = maxBatched
    ? { ...sc.agg!, server: { ...sc.agg!.server, maxBatchedTokens: Number(maxBatched) } }
    : sc.agg!;
  const prefillRate = cluster.server.prefillTokensPerS;
  for (const [mixName, mixOf] of [
    ['per-request', mixPriorities],
    ['per-application', mixPrioritiesByApp],
  ] as const) {
    if (!mixes.includes(mixName)) continue;
    for (const x of scales) {
      const gen = sc.generator.generate(seed, x, 0);
      const pr = mixOf(gen.requests, seed);
      const sim = new SimFlow({
        settings: SETTINGS,
        priorityOf: (sr) => pr.get(sr.id) ?? 0,
        sheddableSaturation: shed !== undefined ? Number(shed) : undefined,
      });
      // --bound: per priority-10 request, each server's predicted TTFT and no-queue bound at its arrival.
      const predicted = new Map<number, { ids: string[]; pred: number[]; noQueue: number[] }>();
      const onArrival = (sr: SimRequest, engines: readonly Engine[]) => {
        if (pr.get(sr.id) !== 10) return;
        const sp = cluster.server;
        const maxCached = Math.floor((sr.promptTokens - 1) / sp.blockSize) * sp.blockSize;
        const row = { ids: [] as string[], pred: [] as number[], noQueue: [] as number[] };
        for (const e of engines) {
          const uncached = sr.promptTokens - Math.min(maxCached, e.cachedPrefixTokens(sr.hashes));
          row.ids.push(e.id);
          row.pred.push(e.predictTtftS(uncached));
          row.noQueue.push(
            e.stepRemainingS() +
              Math.ceil(uncached / sp.maxBatchedTokens) * sp.stepOverheadS +
              uncached / sp.prefillTokensPerS,
          );
        }
        predicted.set(sr.id, row);
      };
      // --steps: per engine, flat [start, end, p10 prefill, other prefill, decoding] per step.
      const stepRec = new Map<string, number[]>();
      const onStep = (e: Engine, running: readonly Seq[], startS: number, dt: number) => {
        let hi = 0;
        let lo = 0;
        let dec = 0;
        for (const q of running) {
          if (q.chunk === 0) continue;
          if (q.computed < q.target) {
            if (pr.get(q.sr.id) === 10) hi += q.chunk;
            else lo += q.chunk;
          } else dec++;
        }
        let a = stepRec.get(e.id);
        if (!a) stepRec.set(e.id, (a = []));
        a.push(startS, startS + dt, hi, lo, dec);
      };
      const out = await simulate({
        policy: policy(pid),
        cluster,
        router: DEFAULT_ROUTER,
        run: { ...gen, requests: cloneRequests(gen.requests) },
        seed,
        maxDrainS: 300,
        flow: sim,
        onArrival: bound ? onArrival : undefined,
        enginePriority: enginePriority ? (sr) => pr.get(sr.id) ?? 0 : undefined,
        onStep: stepsFlag ? onStep : undefined,
      });
      const high = out.requests.filter(
        (r) => r.measured && pr.get(r.id) === 10 && r.firstTokenS !== undefined,
      );
      const describe = (rs: typeof high, label: string) => {
        const ttft = rs.map((r) => r.firstTokenS! - r.arrivalS);
        const epp = rs.map((r) => (r.dispatchS ?? r.arrivalS) - r.arrivalS);
        const srv = rs.map((r) => r.firstTokenS! - (r.dispatchS ?? r.arrivalS));
        const uncached = rs.map((r) => r.promptTokens - (r.hitTokens ?? 0));
        const own = uncached.map((u) => u / prefillRate);
        const rest = srv.map((s, i) => s - own[i]!);
        const hit =
          rs.reduce((a, r) => a + (r.hitTokens ?? 0), 0) /
          Math.max(
            1,
            rs.reduce((a, r) => a + r.promptTokens, 0),
          );
        // The slowest decile: what its requests' TTFT is made of.
        const idx = ttft
          .map((t, i) => [t, i] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, Math.max(1, Math.floor(rs.length / 10)))
          .map(([, i]) => i);
        const pick = (xs: number[]) => idx.map((i) => xs[i]!);
        // The server's share split by the engine's records.
        const step = rs.map((r) => (r.stepFreeS ?? r.dispatchS!) - (r.engineSubmitS ?? r.dispatchS!));
        const queue = rs.map((r) => (r.admitS ?? r.stepFreeS!) - (r.stepFreeS ?? r.dispatchS!));
        const phase = rs.map((r) => r.firstTokenS! - (r.admitS ?? r.dispatchS!));
        const shared = phase.map((ph, i) => ph - own[i]!);
        const steps = rs.map((r) => r.prefillSteps ?? 0);
        const t90 = percentile(ttft, 90);
        // Requests at or above the p90: what the tail is made of.
        const tail = ttft
          .map((t, i) => [t, i] as const)
          .filter(([t]) => t >= t90 - 1e-12)
          .map(([, i]) => i);
        const tpick = (xs: number[]) => tail.map((i) => xs[i]!);
        console.log(
          `  ${label} split: EPP p50/p90 ${p(epp, 50)}/${p(epp, 90)} | running step p50/p90 ${p(step, 50)}/${p(step, 90)} (waited for one: ${r3(step.filter((v) => v > 0).length / Math.max(1, rs.length))}) | ` +
            `queue p50/p90 ${p(queue, 50)}/${p(queue, 90)} (queued past that step: ${r3(queue.filter((v) => v > 1e-9).length / Math.max(1, rs.length))}) | prefill phase p50/p90 ${p(phase, 50)}/${p(phase, 90)} = own ${p(own, 50)}/${p(own, 90)} + shared ${p(shared, 50)}/${p(shared, 90)} | steps p50/p90 ${p(steps, 50)}/${p(steps, 90)}`,
        );
        console.log(
          `  ${label} tail (TTFT >= p90 ${r3(t90)}, n ${tail.length}): mean TTFT ${mean(tpick(ttft))} = EPP ${mean(tpick(epp))} + running step ${mean(tpick(step))} + queue ${mean(tpick(queue))} + own prefill ${mean(tpick(own))} + shared steps ${mean(tpick(shared))}; steps mean ${mean(tpick(steps))}`,
        );
        if (bound) {
          const best = rs.map((r) => Math.min(...(predicted.get(r.id)?.pred ?? [NaN])));
          const noQ = rs.map((r) => Math.min(...(predicted.get(r.id)?.noQueue ?? [NaN])));
          const chosen = rs.map((r) => {
            const row = predicted.get(r.id);
            const k = row ? row.ids.indexOf(r.server ?? '') : -1;
            return k >= 0 ? row!.pred[k]! : NaN;
          });
          const actualSrv = srv;
          const err = chosen.map((c, i) => actualSrv[i]! - c);
          console.log(
            `  ${label} bound (best server at arrival, others in place): predicted FCFS TTFT p50/p90 ${p(best, 50)}/${p(best, 90)} | no-queue (running step + own prefill alone) p50/p90 ${p(noQ, 50)}/${p(noQ, 90)} | ` +
              `check: predicted on the chosen server p50/p90 ${p(chosen, 50)}/${p(chosen, 90)} vs its server time ${p(actualSrv, 50)}/${p(actualSrv, 90)} (actual - predicted p50/p90 ${p(err, 50)}/${p(err, 90)})`,
          );
        }
        if (stepsFlag) {
          // Per tail request: the step running at its submit and the steps from its admission to its first token.
          const acc = {
            runDur: 0,
            runLeft: 0,
            runHi: 0,
            runLo: 0,
            runDec: 0,
            shHi: 0,
            shLo: 0,
            shDec: 0,
            shN: 0,
            n: 0,
          };
          for (const i of tail) {
            const r = rs[i]!;
            const a = stepRec.get(r.server ?? '');
            if (!a || r.engineSubmitS === undefined) continue;
            acc.n++;
            for (let k = 0; k < a.length; k += 5) {
              const st = a[k]!;
              const en = a[k + 1]!;
              if (st <= r.engineSubmitS && en > r.engineSubmitS) {
                acc.runDur += en - st;
                acc.runLeft += en - r.engineSubmitS;
                acc.runHi += a[k + 2]!;
                acc.runLo += a[k + 3]!;
                acc.runDec += a[k + 4]!;
              }
              if (r.admitS !== undefined && st >= r.admitS - 1e-12 && st < r.firstTokenS!) {
                acc.shHi += a[k + 2]!;
                acc.shLo += a[k + 3]!;
                acc.shDec += a[k + 4]!;
                acc.shN++;
              }
            }
          }
          const m = (v: number) => Math.round(v / Math.max(1, acc.n));
          const own = tail.reduce((x, i) => x + rs[i]!.promptTokens - (rs[i]!.hitTokens ?? 0), 0);
          console.log(
            `  ${label} tail steps (n ${acc.n}): step running at submit mean ${r3(acc.runDur / Math.max(1, acc.n))} s (left ${r3(acc.runLeft / Math.max(1, acc.n))} s), prefill tokens p10 ${m(acc.runHi)} / other ${m(acc.runLo)}, decoding ${m(acc.runDec)} | ` +
              `its prefill steps (${r3(acc.shN / Math.max(1, acc.n))} per request): own ${m(own)} tokens, other p10 ${m(acc.shHi - own)}, other priorities ${m(acc.shLo)}, decoding ${m(acc.shDec / Math.max(1, acc.shN / Math.max(1, acc.n)))} per step`,
          );
        }
        console.log(
          `  ${label}: n ${rs.length} TTFT p50/p90 ${p(ttft, 50)}/${p(ttft, 90)} | EPP wait p90 ${p(epp, 90)} | server p90 ${p(srv, 90)} | ` +
            `own prefill p50/p90 ${p(own, 50)}/${p(own, 90)} s (uncached tok mean ${Math.round(mean(uncached))}, hit ${r3(hit)}) | rest (engine queue/batch) p50/p90 ${p(rest, 50)}/${p(rest, 90)} | ` +
            `slowest 10%: mean TTFT ${mean(pick(ttft))} = EPP ${mean(pick(epp))} + own prefill ${mean(pick(own))} + rest ${mean(pick(rest))}`,
        );
      };
      const served = [...sim.outcomes.values()].filter((o) => o.kind === 'dispatched').length;
      console.log(
        `${mixName} x${x} (${r3(offeredQps(gen))} qps) seed ${seed}: dispatched ${served} of ${gen.requests.length}, preempt ${out.preemptions}`,
      );
      describe(high, 'priority 10');
      const low = out.requests.filter(
        (r) => r.measured && pr.get(r.id) === -1 && r.firstTokenS !== undefined,
      );
      console.log(`  priority -1 served ${low.length}`);
      if (mixName === 'per-application') {
        const byApp = new Map<string, typeof high>();
        for (const r of high) {
          const k = r.hashes[0] ?? '';
          byApp.set(k, [...(byApp.get(k) ?? []), r]);
        }
        let i = 0;
        for (const [k, rs] of [...byApp.entries()].sort((a, b) => b[1].length - a[1].length)) {
          const servers = new Map<string, number>();
          for (const r of rs) servers.set(r.server ?? '?', (servers.get(r.server ?? '?') ?? 0) + 1);
          describe(
            rs,
            `app ${i++} (${k.slice(0, 8)}, servers ${[...servers.values()].sort((a, b) => b - a).join('/')})`,
          );
        }
      }
    }
  }
}
