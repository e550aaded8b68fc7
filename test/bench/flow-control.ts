// `npm run bench -- flow-control [--quick] [--policy a,b] [--seeds N,M,..] [--trace FILE] [--time-scale a,b,..]
//   [--workloads shared-prefix,trace] [--kv-threshold X] [--queue-threshold N] [--sheddable-saturation X]
//   [--engine-priority] [--tag NAME]`
//
// Flow control in the routing simulator (sim/flow-control.ts: the product's
// FlowController on the virtual clock). For each policy and workload
// (shared-prefix, and the trace replay):
//  1. without flow control, the load ladder gives the knee (highest load with
//     TTFT p90 <= the workload's SLO) and the peak output tok/s;
//  2. at 1.5x and 2x the knee, the same arrivals (same seed) run with and
//     without flow control (default settings: an empty flowControl section,
//     so the 4 s TTL, a wait predicted past 1 s refused with 429), every
//     request priority 0: output tok/s inside the arrival window vs the
//     peak, outcomes, served TTFT p90 (queue wait included);
//  3. a 20/80 mix of priority 10 / priority -1 at 0.5x and 2x the knee, with
//     flow control: the priority-10 TTFT p90 at both loads (on a trace also
//     with the mix drawn per application).
// --seeds runs it all per seed and prints each target's figure per seed.
// --engine-priority (bench what-if, round six): in the 20/80 runs the engines
// schedule as vLLM's `--scheduling-policy priority` with each request's
// priority (Engine.schedPriority); every priority-0 run is unchanged.
// Writes bench-results/flow-control.json, flow-control.md and SVG plots (first seed).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { flowControlSettingsOf } from '../../src/config/flow-control.js';
import { poolUtilization, utilizationDetectorParameters } from '../../src/plugins/utilization-detector.js';
import type { EndpointView } from '../../src/scheduling/types.js';
import { cloneRequests, knee } from './routing.js';
import { simulate } from './sim/cluster.js';
import { SimFlow } from './sim/flow-control.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { percentile, Rng } from './sim/rng.js';
import { SCENARIOS, traceScenario, type Scenario } from './sim/scenarios.js';
import { lineChart } from './sim/svg.js';
import { DEFAULT_TRACE_BLOCK_TOKENS, offeredQps, parseTrace, type TraceRecord } from './sim/trace.js';
import type { GeneratedRun } from './sim/workloads.js';
import type { SimRequest } from './sim/workload-types.js';

function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

const r3 = (v: number) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v);
const r0 = (v: number) => (Number.isFinite(v) ? Math.round(v) : v);

/** An empty `flowControl` section's settings (the probes run the same). */
export const SETTINGS = flowControlSettingsOf({}, '(bench)', (p) => p.join('.'))!;

/** The replayed trace of the flow-control runs and probes. */
export const FLOW_TRACE = 'test/bench/traces/agentic-chat-long.jsonl';

/** The records of the trace file at `path` (bad lines reported with their line number). */
export function readTraceRecords(path: string): TraceRecord[] {
  return parseTrace(readFileSync(path, 'utf8'), path, DEFAULT_TRACE_BLOCK_TOKENS);
}

/** The trace file at `path` as a scenario at the given time scales. */
export function traceFileScenario(path: string, scales: number[]): Scenario {
  return traceScenario(
    basename(path, extname(path)),
    readTraceRecords(path),
    DEFAULT_TRACE_BLOCK_TOKENS,
    scales,
  );
}
let sheddableSaturation: number | undefined;
/** --engine-priority: the 20/80 runs' engines order their queues by priority (bench what-if). */
let enginePriority = false;
/** --kv-threshold: flow control judges with a utilization-detector of this kvCacheUtilThreshold. */
let saturation: ((views: readonly EndpointView[]) => number) | undefined;

interface Point {
  workload: string;
  policy: PolicyId;
  /** Offered load, requests/s. */
  qps: number;
  /** Traces: the time scale that offers it. */
  timeScale?: number;
  flow: boolean;
  /** '20/80-app': the 20/80 mix by application (a trace's system prompt), not by request. */
  mix: 'p0' | '20/80' | '20/80-app';
  outputTokensPerS: number;
  /** Output tokens of every finished request / (last finish - first arrival): the replay's whole run. */
  runTokensPerS: number;
  measured: number;
  served: number;
  refused429: number;
  /** Of the 429s, those answered from the queue after a wait (a predicted wait past the TTL). */
  refused429Queued: number;
  refused503: number;
  /** Dispatched but without a first token when the run was cut off. */
  censored: number;
  /** Served requests (first token seen), queue wait included. */
  ttftP90: number;
  ttftP50: number;
  /** 20/80 mix: the priority-10 requests. */
  highTtftP90?: number;
  highServed?: number;
  highMeasured?: number;
  waitP90: number;
  preemptions: number;
}

/** 20% priority 10, 80% priority -1, drawn once per request id (same for every run of a seed). */
export function mixPriorities(rs: readonly SimRequest[], seed: number): Map<number, number> {
  const rng = new Rng(seed ^ 0xf10c);
  const out = new Map<number, number>();
  for (const r of rs) out.set(r.id, rng.next() < 0.2 ? 10 : -1);
  return out;
}

/**
 * The same mix by application: an objective is the client application's, so
 * every request on one system prompt (a trace's first block) has one
 * priority; applications in a seeded order are priority 10 while they keep
 * the share <= 25% of the requests (the rest -1). A session's turns then
 * share a priority, so a refused sheddable turn never leaves a priority-10
 * turn of the same conversation without its cached context.
 */
export function mixPrioritiesByApp(rs: readonly SimRequest[], seed: number): Map<number, number> {
  const rng = new Rng(seed ^ 0xa99);
  const apps = new Map<string, number>();
  for (const r of rs) apps.set(r.hashes[0] ?? '', (apps.get(r.hashes[0] ?? '') ?? 0) + 1);
  const order = [...apps.keys()].map((k) => ({ k, u: rng.next() })).sort((a, b) => a.u - b.u);
  const high = new Set<string>();
  let n = 0;
  for (const { k } of order) {
    const c = apps.get(k)!;
    if (n + c <= 0.25 * rs.length) {
      high.add(k);
      n += c;
    }
  }
  const out = new Map<number, number>();
  for (const r of rs) out.set(r.id, high.has(r.hashes[0] ?? '') ? 10 : -1);
  return out;
}

async function runPoint(
  sc: Scenario,
  pid: PolicyId,
  gen: GeneratedRun,
  seed: number,
  load: { qps: number; timeScale?: number },
  flow: boolean,
  mix: Point['mix'],
): Promise<Point> {
  const def = policy(pid);
  const priorities =
    mix === '20/80'
      ? mixPriorities(gen.requests, seed)
      : mix === '20/80-app'
        ? mixPrioritiesByApp(gen.requests, seed)
        : undefined;
  const sim = flow
    ? new SimFlow({
        settings: SETTINGS,
        priorityOf: (sr) => priorities?.get(sr.id) ?? 0,
        sheddableSaturation,
        saturation,
      })
    : undefined;
  const out = await simulate({
    policy: def,
    cluster: sc.agg!,
    router: DEFAULT_ROUTER,
    run: { ...gen, requests: cloneRequests(gen.requests) },
    seed,
    maxDrainS: 300,
    flow: sim,
    enginePriority: enginePriority && priorities ? (sr) => priorities.get(sr.id) ?? 0 : undefined,
  });
  const measured = out.requests.filter((r) => r.measured);
  const ttft: number[] = [];
  const high: number[] = [];
  const wait: number[] = [];
  let refused429 = 0;
  let refused429Queued = 0;
  let refused503 = 0;
  let censored = 0;
  let highMeasured = 0;
  for (const r of measured) {
    const o = sim?.outcomes.get(r.id);
    const isHigh = priorities?.get(r.id) === 10;
    if (isHigh) highMeasured++;
    if (o?.kind === 'refused') {
      if (o.status === 429) {
        refused429++;
        if (o.waitS > 0) refused429Queued++;
      } else refused503++;
      continue;
    }
    if (o?.kind === 'dispatched') wait.push(o.waitS);
    if (r.firstTokenS === undefined) {
      censored++;
      continue;
    }
    const t = r.firstTokenS - r.arrivalS;
    ttft.push(t);
    if (isHigh) high.push(t);
  }
  const windowS = gen.windowEndS - gen.windowStartS;
  let runTokens = 0;
  let lastFinish = 0;
  let firstArrival = Infinity;
  for (const r of out.requests) {
    firstArrival = Math.min(firstArrival, r.arrivalS);
    if (r.finishS === undefined) continue;
    runTokens += r.outputTokens;
    lastFinish = Math.max(lastFinish, r.finishS);
  }
  return {
    workload: sc.workload,
    policy: pid,
    ...load,
    flow,
    mix,
    outputTokensPerS: r0(out.windowTokens / windowS),
    runTokensPerS: r0(runTokens / Math.max(1e-9, lastFinish - firstArrival)),
    measured: measured.length,
    served: ttft.length,
    refused429,
    refused429Queued,
    refused503,
    censored,
    ttftP90: r3(percentile(ttft, 90)),
    ttftP50: r3(percentile(ttft, 50)),
    ...(priorities ? { highTtftP90: r3(percentile(high, 90)), highServed: high.length, highMeasured } : {}),
    waitP90: r3(wait.length ? percentile(wait, 90) : 0),
    preemptions: out.preemptions,
  };
}

interface Verdicts {
  workload: string;
  policy: PolicyId;
  seed: number;
  knee: number;
  peakTokS: number;
  lines: string[];
  /** Per load factor (1.5, 2): tok/s over the peak, requests ending 503, served TTFT p90. */
  atFactor: Array<{ factor: number; tokRatio: number; ended503: number; ttftP90: number }>;
  /** Priority-10 TTFT p90 at 2x over its value at 0.5x (20/80 mix). */
  highRatio: number;
  /** The same with the mix by application (traces). */
  highRatioByApp?: number;
}

async function runWorkload(
  sc: Scenario,
  pid: PolicyId,
  ladder: number[],
  windowS: number,
  seed: number,
  log: (s: string) => void,
  points: Point[],
): Promise<Verdicts> {
  // Traces: the ladder holds time scales; load = offered qps of the replay.
  const genAt = (x: number) => sc.generator.generate(seed, x, windowS);
  const loadOf = (x: number, gen: GeneratedRun) =>
    sc.trace ? { qps: r3(offeredQps(gen)), timeScale: x } : { qps: x };
  const base: Point[] = [];
  for (const x of ladder) {
    const gen = genAt(x);
    const p = await runPoint(sc, pid, gen, seed, loadOf(x, gen), false, 'p0');
    base.push(p);
    points.push(p);
    log(row(p));
  }
  const k = knee(base, sc.sloTtftS).value;
  // Output tokens inside the arrival window: the steady state (the long trace's window is
  // 60 s at x0.05); the whole run's figure is dominated by the drain once arrivals stop.
  const tokS = (p: Point) => p.outputTokensPerS;
  const peak = Math.max(...base.map(tokS));
  // Trace load is inversely proportional to the time scale.
  const ref = base[0]!;
  const at = (factor: number) => {
    const target = k * factor;
    return sc.trace ? genAndLoad(r3((ref.timeScale! * ref.qps) / target)) : genAndLoad(target);
  };
  const genAndLoad = (x: number) => {
    const gen = genAt(x);
    return { gen, load: loadOf(x, gen) };
  };
  const lines: string[] = [];
  const atFactor: Verdicts['atFactor'] = [];
  for (const f of [1.5, 2]) {
    const { gen, load } = at(f);
    const off = await runPoint(sc, pid, gen, seed, load, false, 'p0');
    const on = await runPoint(sc, pid, gen, seed, load, true, 'p0');
    points.push(off, on);
    log(row(off));
    log(row(on));
    const all = on.served + on.refused429 + on.censored === on.measured && on.refused503 === 0;
    atFactor.push({ factor: f, tokRatio: r3(tokS(on) / peak), ended503: on.refused503, ttftP90: on.ttftP90 });
    lines.push(
      `${f}x knee (${load.qps} qps): tok/s ${tokS(on)} = ${r3(tokS(on) / peak)} x peak ` +
        `(no flow control: ${tokS(off)}, TTFT p90 ${off.ttftP90} s); served ${on.served}, 429 ${on.refused429}, ` +
        `503 ${on.refused503}, unfinished ${on.censored} of ${on.measured}; served TTFT p90 ${on.ttftP90} s ` +
        `[>= 0.95 x peak: ${tokS(on) >= 0.95 * peak ? 'met' : 'MISSED'}; served or 429: ${all ? 'met' : 'MISSED'}; ` +
        `TTFT p90 <= 5 s: ${on.ttftP90 <= 5 ? 'met' : 'MISSED'}]`,
    );
  }
  const mixed: Point[] = [];
  for (const f of [0.5, 2]) {
    const { gen, load } = at(f);
    const p = await runPoint(sc, pid, gen, seed, load, true, '20/80');
    mixed.push(p);
    points.push(p);
    log(row(p));
  }
  const [half, double] = mixed as [Point, Point];
  lines.push(
    `20/80 priority 10 / -1: priority-10 TTFT p90 ${half.highTtftP90} s at 0.5x, ${double.highTtftP90} s at 2x ` +
      `(${r3(double.highTtftP90! / half.highTtftP90!)}x; served ${double.highServed} of ${double.highMeasured} at 2x) ` +
      `[<= 2x: ${double.highTtftP90! <= 2 * half.highTtftP90! ? 'met' : 'MISSED'}]`,
  );
  const highRatio = r3(double.highTtftP90! / half.highTtftP90!);
  let highRatioByApp: number | undefined;
  if (sc.trace) {
    const byApp: Point[] = [];
    for (const f of [0.5, 2]) {
      const { gen, load } = at(f);
      const p = await runPoint(sc, pid, gen, seed, load, true, '20/80-app');
      byApp.push(p);
      points.push(p);
      log(row(p));
    }
    const [h, d] = byApp as [Point, Point];
    highRatioByApp = r3(d.highTtftP90! / h.highTtftP90!);
    lines.push(
      `20/80 by application (${r3(d.highMeasured! / d.measured)} of requests priority 10): priority-10 TTFT p90 ` +
        `${h.highTtftP90} s at 0.5x, ${d.highTtftP90} s at 2x (${highRatioByApp}x; served ${d.highServed} of ` +
        `${d.highMeasured} at 2x) [<= 2x: ${d.highTtftP90! <= 2 * h.highTtftP90! ? 'met' : 'MISSED'}]`,
    );
  }
  return {
    workload: sc.workload,
    policy: pid,
    seed,
    knee: r3(k),
    peakTokS: peak,
    lines,
    atFactor,
    highRatio,
    highRatioByApp,
  };
}

function row(p: Point): string {
  const load = p.timeScale !== undefined ? `${p.qps} (x${p.timeScale})` : `${p.qps}`;
  const high = p.highTtftP90 !== undefined ? ` p10 TTFT p90 ${p.highTtftP90}` : '';
  return (
    `  ${p.workload} ${p.policy} ${p.flow ? 'flow' : 'none'} ${p.mix} qps ${load}: tok/s ${p.outputTokensPerS} ` +
    `(run ${p.runTokensPerS}) ` +
    `TTFT p50/p90 ${p.ttftP50}/${p.ttftP90} wait p90 ${p.waitP90} served ${p.served} 429 ${p.refused429} ` +
    `(after queueing ${p.refused429Queued}) ` +
    `503 ${p.refused503} unfinished ${p.censored}/${p.measured}${high} preempt ${p.preemptions}`
  );
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const shed = arg(args, '--sheddable-saturation');
  if (shed !== undefined) sheddableSaturation = Number(shed);
  enginePriority = args.includes('--engine-priority');
  const kvThreshold = arg(args, '--kv-threshold');
  const queueThreshold = arg(args, '--queue-threshold');
  if (kvThreshold !== undefined || queueThreshold !== undefined) {
    const p = utilizationDetectorParameters.parse({
      ...(kvThreshold !== undefined ? { kvCacheUtilThreshold: Number(kvThreshold) } : {}),
      ...(queueThreshold !== undefined ? { queueDepthThreshold: Number(queueThreshold) } : {}),
    });
    saturation = (views) => poolUtilization(views, p);
  }
  const policies = (arg(args, '--policy') ?? 'gie-default').split(',') as PolicyId[];
  const seeds = (arg(args, '--seeds') ?? arg(args, '--seed') ?? '1000').split(',').map(Number);
  const tracePath = arg(args, '--trace') ?? FLOW_TRACE;
  const workloads = (arg(args, '--workloads') ?? 'shared-prefix,trace').split(',');
  const scales = (arg(args, '--time-scale') ?? '0.25,0.15,0.1,0.07,0.05').split(',').map(Number);
  const log = (s: string) => process.stdout.write(s + '\n');
  const sharedPrefix = SCENARIOS.find((s) => s.workload === 'shared-prefix')!;
  const trace = traceFileScenario(tracePath, scales);
  const points: Point[] = [];
  const verdicts: Verdicts[] = [];
  for (const seed of seeds) {
    for (const pid of policies) {
      for (const sc of [sharedPrefix, trace]) {
        if (!workloads.includes(sc.trace ? 'trace' : sc.workload)) continue;
        const ladder = sc.trace ? sc.ladder : quick ? sc.quickLadder : sc.ladder;
        const windowS = quick ? sc.quickWindowS : sc.windowS;
        log(`${sc.workload} / ${pid} / seed ${seed}: ${sc.describe}`);
        const v = await runWorkload(sc, pid, ladder, windowS, seed, log, seed === seeds[0] ? points : []);
        verdicts.push(v);
        log(`  knee ${v.knee} qps, peak ${v.peakTokS} tok/s without flow control`);
        for (const l of v.lines) log(`  ${l}`);
      }
    }
  }
  // Across seeds: each target's figures, one per seed.
  for (const key of [...new Set(verdicts.map((v) => `${v.workload} / ${v.policy}`))]) {
    const vs = verdicts.filter((v) => `${v.workload} / ${v.policy}` === key);
    const per = (f: (v: Verdicts) => number) => vs.map(f).join(' / ');
    log(`${key}, seeds ${vs.map((v) => v.seed).join(' / ')}:`);
    for (const factor of [1.5, 2]) {
      const at = (v: Verdicts) => v.atFactor.find((a) => a.factor === factor)!;
      log(
        `  ${factor}x: tok/s x peak ${per((v) => at(v).tokRatio)}; 503 ${per((v) => at(v).ended503)}; ` +
          `served TTFT p90 ${per((v) => at(v).ttftP90)} s`,
      );
    }
    log(`  priority-10 TTFT p90 2x / 0.5x: ${per((v) => v.highRatio)}`);
    if (vs[0]!.highRatioByApp !== undefined)
      log(`  the same, mix by application: ${per((v) => v.highRatioByApp ?? NaN)}`);
  }
  mkdirSync('bench-results', { recursive: true });
  const tag = arg(args, '--tag');
  const out = (ext: string) => `bench-results/flow-control${tag ? `-${tag}` : ''}.${ext}`;
  writeFileSync(
    out('json'),
    JSON.stringify(
      { seeds, sheddableSaturation, kvThreshold, queueThreshold, enginePriority, points, verdicts },
      null,
      2,
    ),
  );
  const md = verdicts.flatMap((v) => [
    `### ${v.workload} / ${v.policy} / seed ${v.seed}: knee ${v.knee} qps, peak ${v.peakTokS} tok/s without flow control`,
    '',
    ...v.lines.map((l) => `- ${l}`),
    '',
  ]);
  writeFileSync(out('md'), md.join('\n'));
  for (const wl of [...new Set(points.map((p) => p.workload))]) {
    const of = (flow: boolean, mix: Point['mix']) =>
      points
        .filter((p) => p.workload === wl && p.flow === flow && p.mix === mix)
        .sort((a, b) => a.qps - b.qps);
    const file = wl.replace(/[^a-z0-9]+/gi, '-');
    for (const [metric, label, f] of [
      ['tok', 'output tok/s (arrival window)', (p: Point) => p.outputTokensPerS],
      ['ttft', 'served TTFT p90 s', (p: Point) => p.ttftP90],
    ] as const) {
      writeFileSync(
        `bench-results/flow-control${tag ? `-${tag}` : ''}-${file}-${metric}.svg`,
        lineChart({
          title: `${wl}: ${label} with and without flow control`,
          xLabel: 'offered load (requests/s)',
          yLabel: label,
          logY: metric === 'ttft',
          series: [
            { name: 'no flow control', points: of(false, 'p0').map((p) => [p.qps, f(p)]) },
            { name: 'flow control', points: of(true, 'p0').map((p) => [p.qps, f(p)]) },
          ],
        }),
      );
    }
  }
  log('wrote bench-results/flow-control.{json,md} and flow-control-*.svg');
}
