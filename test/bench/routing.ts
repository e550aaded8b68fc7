// `npm run bench -- routing [--quick] [--seeds N] [--workload a,b] [--policy a,b] [--qps 5,10] [--tag NAME] [--verbose]`
// `npm run bench -- routing --trace FILE [--time-scale 1,0.5,0.25] [--block-tokens 512] [--policy a,b]`
//
// Routing quality in a deterministic discrete-event simulator (virtual
// time; test/bench/sim/): every policy is an EndpointPickerConfig run by the
// product's real Director, MemoryStateStore, scheduler and plugins. For each
// workload x policy x offered load, the same arrivals (same seed) are
// replayed against a fresh cluster; results are medians over seeds.
// Writes bench-results/routing.json (rows of the issue's format),
// routing-detail.json (every seed, plus balance, preemptions, decision time),
// routing-tables.md, and SVG plots of TTFT p90 and throughput vs load.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { simulate } from './sim/cluster.js';
import { summarise, type RunMetrics } from './sim/metrics.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { median } from './sim/rng.js';
import { SCENARIOS, traceScenario, type Scenario } from './sim/scenarios.js';
import { lineChart } from './sim/svg.js';
import { DEFAULT_TRACE_BLOCK_TOKENS, offeredQps, parseTrace } from './sim/trace.js';
import { compulsoryHitRate } from './sim/workloads.js';
import type { SimRequest } from './sim/workload-types.js';

export interface RoutingRow {
  policy: PolicyId;
  workload: Scenario['workload'];
  /** Offered load, requests/s (traces: what the time scale gives). */
  qps: number;
  /** Traces only: arrival = timestamp x timeScale. */
  timeScale?: number;
  ttftP50: number;
  ttftP90: number;
  ttftP99: number;
  tpotP50: number;
  outputTokensPerS: number;
  hitRate: number;
  oracleHitRate: number;
}

interface DetailRow extends RoutingRow {
  seeds: number;
  shortTtftP90: number | null;
  busyCv: number;
  preemptions: number;
  censored: number;
  measured: number;
  decisionUsP50: number;
  ttftP90Min: number;
  ttftP90Max: number;
}

function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

function listOf(args: string[], flag: string): string[] | undefined {
  const v = arg(args, flag);
  return v === undefined ? undefined : v.split(',').filter(Boolean);
}

const r3 = (v: number) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v);
const r1 = (v: number) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : v);

/** Fresh copies of the generated requests (outcome fields are written by a run). */
export function cloneRequests(rs: readonly SimRequest[]): SimRequest[] {
  return rs.map((r) => ({
    id: r.id,
    arrivalS: r.arrivalS,
    req: r.req,
    promptTokens: r.promptTokens,
    outputTokens: r.outputTokens,
    hashes: r.hashes,
    cacheHashes: r.cacheHashes,
    measured: r.measured,
    cls: r.cls,
  }));
}

/** Highest load with TTFT p90 <= SLO, interpolated between ladder points. */
export function knee(
  points: ReadonlyArray<{ qps: number; ttftP90: number }>,
  slo: number,
): { value: number; bound: '' | '<' | '>=' } {
  const ps = [...points].sort((a, b) => a.qps - b.qps);
  if (ps.length === 0) return { value: NaN, bound: '' };
  if (ps[0]!.ttftP90 > slo) return { value: ps[0]!.qps, bound: '<' };
  for (let i = 1; i < ps.length; i++) {
    const a = ps[i - 1]!;
    const b = ps[i]!;
    if (b.ttftP90 > slo) {
      const f = (slo - a.ttftP90) / (b.ttftP90 - a.ttftP90);
      return { value: a.qps + f * (b.qps - a.qps), bound: '' };
    }
  }
  return { value: ps[ps.length - 1]!.qps, bound: '>=' };
}

function kneeText(k: { value: number; bound: string }): string {
  return `${k.bound}${r1(k.value)}`;
}

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

async function runScenario(
  sc: Scenario,
  policies: PolicyId[],
  ladder: number[],
  windowS: number,
  seeds: number,
  log: (s: string) => void,
): Promise<DetailRow[]> {
  const perPoint = new Map<string, Array<RunMetrics & { oracleHitRate: number }>>();
  // Traces: the ladder holds time scales; the row's qps is the load a scale offers.
  const offered = new Map<number, number>();
  for (const qps of ladder) {
    for (let s = 0; s < seeds; s++) {
      const seed = 1000 * (s + 1) + Math.round(qps * 10);
      const gen = sc.generator.generate(seed, qps, windowS);
      if (sc.trace) offered.set(qps, r1(offeredQps(gen)));
      const oracleHitRate = compulsoryHitRate(gen.requests);
      for (const pid of policies) {
        const def = policy(pid);
        const cluster = def.mode === 'pd' ? sc.pd : sc.agg;
        if (!cluster) continue;
        const t0 = Date.now();
        const out = await simulate({
          policy: def,
          cluster,
          router: DEFAULT_ROUTER,
          run: { ...gen, requests: cloneRequests(gen.requests) },
          seed,
          maxDrainS: 300,
        });
        const m = summarise(out, gen.windowEndS - gen.windowStartS);
        const key = `${pid}|${qps}`;
        if (!perPoint.has(key)) perPoint.set(key, []);
        perPoint.get(key)!.push({ ...m, oracleHitRate });
        log(
          `  ${pad(sc.workload, 14, true)} ${pad(pid, 18, true)} qps ${pad(qps, 4)} seed ${seed}: ttft p90 ${r3(m.ttftP90)} s, out ${Math.round(m.outputTokensPerS)} tok/s, hit ${r3(m.hitRate)} (${Date.now() - t0} ms)`,
        );
      }
    }
  }
  const rows: DetailRow[] = [];
  for (const pid of policies) {
    for (const qps of ladder) {
      const ms = perPoint.get(`${pid}|${qps}`);
      if (!ms) continue;
      const med = (f: (m: RunMetrics & { oracleHitRate: number }) => number) => median(ms.map(f));
      const shorts = ms.map((m) => m.shortTtftP90).filter((v): v is number => v !== undefined);
      rows.push({
        policy: pid,
        workload: sc.workload,
        ...(sc.trace ? { qps: offered.get(qps)!, timeScale: qps } : { qps }),
        ttftP50: r3(med((m) => m.ttftP50)),
        ttftP90: r3(med((m) => m.ttftP90)),
        ttftP99: r3(med((m) => m.ttftP99)),
        tpotP50: r3(med((m) => m.tpotP50) * 1000) / 1000,
        outputTokensPerS: Math.round(med((m) => m.outputTokensPerS)),
        hitRate: r3(med((m) => m.hitRate)),
        oracleHitRate: r3(med((m) => m.oracleHitRate)),
        seeds: ms.length,
        shortTtftP90: shorts.length ? r3(median(shorts)) : null,
        busyCv: r3(med((m) => m.busyCv)),
        preemptions: Math.round(med((m) => m.preemptions)),
        censored: Math.round(med((m) => m.censored)),
        measured: Math.round(med((m) => m.measured)),
        decisionUsP50: r1(med((m) => m.decisionUsP50)),
        ttftP90Min: r3(Math.min(...ms.map((m) => m.ttftP90))),
        ttftP90Max: r3(Math.max(...ms.map((m) => m.ttftP90))),
      });
    }
  }
  return rows;
}

function tableFor(sc: Scenario, rows: DetailRow[]): string {
  const lines: string[] = [];
  lines.push(`### ${sc.workload}`);
  lines.push('');
  lines.push(sc.describe + '.');
  lines.push('');
  lines.push(
    '| policy | qps | TTFT p50 s | TTFT p90 s | TTFT p99 s | TPOT p50 ms | out tok/s | hit rate | hit / oracle | busy CV | preempt | short TTFT p90 s | decision us |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const share = r.oracleHitRate > 0 ? `${Math.round((r.hitRate / r.oracleHitRate) * 100)}%` : '-';
    lines.push(
      `| ${r.policy} | ${r.qps}${r.timeScale !== undefined ? ` (x${r.timeScale})` : ''} | ${r.ttftP50} | ${r.ttftP90} | ${r.ttftP99} | ${r1(r.tpotP50 * 1000)} | ${r.outputTokensPerS} | ${r.hitRate} | ${share} | ${r.busyCv} | ${r.preemptions} | ${r.shortTtftP90 ?? '-'} | ${r.decisionUsP50} |`,
    );
  }
  lines.push('');
  lines.push(`Knee (highest load with TTFT p90 <= ${sc.sloTtftS} s, interpolated):`);
  lines.push('');
  lines.push('| policy | knee qps | out tok/s at top load | hit rate at top load |');
  lines.push('|---|---|---|---|');
  for (const pid of [...new Set(rows.map((r) => r.policy))]) {
    const pr = rows.filter((r) => r.policy === pid);
    const top = pr[pr.length - 1]!;
    lines.push(`| ${pid} | ${kneeText(knee(pr, sc.sloTtftS))} | ${top.outputTokensPerS} | ${top.hitRate} |`);
  }
  lines.push('');
  return lines.join('\n');
}

/** Workload ids as file-name parts ("trace:x" -> "trace-x"). */
function fileSafe(workload: string): string {
  return workload.replace(/[^A-Za-z0-9._-]/g, '-');
}

function plots(sc: Scenario, rows: DetailRow[], base: string): void {
  const pids = [...new Set(rows.map((r) => r.policy))];
  const series = (f: (r: DetailRow) => number) =>
    pids.map((pid) => ({
      name: pid,
      points: rows.filter((r) => r.policy === pid).map((r) => [r.qps, f(r)] as [number, number]),
    }));
  writeFileSync(
    `bench-results/${base}-${fileSafe(sc.workload)}-ttft-p90.svg`,
    lineChart({
      title: `${sc.workload}: TTFT p90 vs load`,
      xLabel: 'offered load (requests/s)',
      yLabel: 'TTFT p90 (s, log)',
      series: series((r) => r.ttftP90),
      logY: true,
    }),
  );
  writeFileSync(
    `bench-results/${base}-${fileSafe(sc.workload)}-throughput.svg`,
    lineChart({
      title: `${sc.workload}: output tokens/s vs load`,
      xLabel: 'offered load (requests/s)',
      yLabel: 'output tokens/s',
      series: series((r) => r.outputTokensPerS),
    }),
  );
  if (rows.some((r) => r.shortTtftP90 !== null)) {
    writeFileSync(
      `bench-results/${base}-${fileSafe(sc.workload)}-short-ttft-p90.svg`,
      lineChart({
        title: `${sc.workload}: short-request TTFT p90 vs load`,
        xLabel: 'offered load (requests/s)',
        yLabel: 'short-request TTFT p90 (s, log)',
        series: series((r) => r.shortTtftP90 ?? NaN),
        logY: true,
      }),
    );
  }
}

/** Calibration against the public llm-d / GIE b2b runs (performance.md §5.2 gate). */
function calibration(rows: DetailRow[], sc: Scenario): string {
  const order: Array<[PolicyId, string]> = [
    ['random', 'random (cache-blind)'],
    ['least-queue', 'load-only (least waiting queue)'],
    ['gie-default', 'approximate prefix (GIE default)'],
    ['precise-3-2-2', 'exact prefix (KV events via cache-indexer, llm-d precise weights 3/2/2)'],
  ];
  const lines: string[] = [
    '| class | policy | knee qps | out tok/s at top load | TTFT p90 at top load s | hit rate at top load |',
    '|---|---|---|---|---|---|',
  ];
  const summary: Array<{ pid: PolicyId; knee: number; out: number; p90: number }> = [];
  for (const [pid, label] of order) {
    const pr = rows.filter((r) => r.policy === pid);
    if (pr.length === 0) continue;
    const top = pr[pr.length - 1]!;
    const k = knee(pr, sc.sloTtftS);
    summary.push({ pid, knee: k.value, out: top.outputTokensPerS, p90: top.ttftP90 });
    lines.push(
      `| ${label} | ${pid} | ${kneeText(k)} | ${top.outputTokensPerS} | ${top.ttftP90} | ${top.hitRate} |`,
    );
  }
  // Neighbours within 5% count as a tie (seed noise), as random ~ load-only in the public runs.
  const ordered = (f: (s: (typeof summary)[number]) => number, higherBetter: boolean) =>
    summary.every(
      (s, i) =>
        i === 0 || (higherBetter ? f(s) >= f(summary[i - 1]!) * 0.95 : f(s) <= f(summary[i - 1]!) * 1.05),
    );
  const rand = summary.find((s) => s.pid === 'random');
  lines.push('');
  lines.push(
    `- ordering random <= load-only <= approximate <= exact on out tok/s at top load (5% tolerance): ${ordered((s) => s.out, true) ? 'holds' : 'does NOT hold'}`,
  );
  lines.push(`- same ordering on knee: ${ordered((s) => s.knee, true) ? 'holds' : 'does NOT hold'}`);
  lines.push(
    `- same ordering on TTFT p90 at top load (lower is better): ${ordered((s) => s.p90, false) ? 'holds' : 'does NOT hold'}`,
  );
  if (rand) {
    const inRange = rand.knee >= 15 && rand.knee <= 23;
    lines.push(
      `- random's knee ${r1(rand.knee)} QPS vs the published 15-23 (k8s RR knee 18-20): ${inRange ? 'inside' : 'OUTSIDE'}`,
    );
  }
  return lines.join('\n') + '\n';
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const seeds = Number(arg(args, '--seeds') ?? (quick ? 1 : 3));
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error('--seeds needs a positive integer');
  const onlyW = listOf(args, '--workload');
  const onlyP = listOf(args, '--policy');
  const qpsList = listOf(args, '--qps')?.map(Number);
  if (qpsList?.some((v) => !(v > 0))) throw new Error('--qps needs positive numbers');
  const verbose = args.includes('--verbose');
  // --tag NAME: write bench-results/routing-NAME*.* instead (side runs keep the main results).
  const tag = arg(args, '--tag');
  const base = tag ? `routing-${tag}` : 'routing';
  const started = Date.now();
  const tracePath = arg(args, '--trace');
  let scenarios: readonly Scenario[];
  if (tracePath) {
    const blockTokens = Number(arg(args, '--block-tokens') ?? DEFAULT_TRACE_BLOCK_TOKENS);
    if (!Number.isInteger(blockTokens) || blockTokens < 1)
      throw new Error('--block-tokens needs a positive integer');
    const scales = (listOf(args, '--time-scale') ?? ['1']).map(Number);
    if (scales.some((v) => !(v > 0))) throw new Error('--time-scale needs numbers > 0');
    // Slowest first, so the ladder is in increasing load.
    scales.sort((a, b) => b - a);
    const records = parseTrace(readFileSync(tracePath, 'utf8'), tracePath, blockTokens);
    const name = basename(tracePath, extname(tracePath));
    scenarios = [traceScenario(name, records, blockTokens, scales)];
  } else {
    scenarios = SCENARIOS.filter((s) => !onlyW || onlyW.includes(s.workload));
  }
  if (scenarios.length === 0)
    throw new Error(`no workload among ${SCENARIOS.map((s) => s.workload).join(', ')}`);
  if (onlyP) {
    // A name no selected workload runs would be skipped without a word (a typo, or a new
    // bench policy not yet listed in a scenario): refuse it.
    const runnable = new Set(scenarios.flatMap((sc) => [...sc.policies, ...(sc.extraPolicies ?? [])]));
    const unknown = onlyP.filter((p) => !runnable.has(p as PolicyId));
    if (unknown.length > 0)
      throw new Error(
        `--policy: ${unknown.join(', ')} not run by the selected workloads (they run: ${[...runnable].join(', ')})`,
      );
  }
  mkdirSync('bench-results', { recursive: true });
  const all: DetailRow[] = [];
  const md: string[] = [];
  let calib = '';
  for (const sc of scenarios) {
    let policies = onlyP
      ? [...sc.policies, ...(sc.extraPolicies ?? [])].filter((p) => onlyP.includes(p))
      : sc.policies;
    if (policies.length === 0) continue;
    // --quick: the policies the goals compare, fewer loads, shorter windows, one seed.
    if (quick && !onlyP)
      policies = policies.filter(
        (p) => !['least-inflight', 'round-robin'].includes(p) || sc.workload === 'shared-prefix',
      );
    const ladder = sc.trace ? sc.ladder : (qpsList ?? (quick ? sc.quickLadder : sc.ladder));
    const windowS = quick ? sc.quickWindowS : sc.windowS;
    const t0 = Date.now();
    process.stdout.write(
      sc.trace
        ? `${sc.workload}: ${policies.length} policies x time scales ${ladder.join(', ')} x ${seeds} seed(s)\n`
        : `${sc.workload}: ${policies.length} policies x ${ladder.length} loads x ${seeds} seed(s), ${windowS} s windows\n`,
    );
    const rows = await runScenario(
      sc,
      policies,
      ladder,
      windowS,
      seeds,
      verbose ? (s) => process.stdout.write(s + '\n') : () => {},
    );
    all.push(...rows);
    const table = tableFor(sc, rows);
    md.push(table);
    process.stdout.write(table + `(${((Date.now() - t0) / 1000).toFixed(1)} s)\n\n`);
    plots(sc, rows, base);
    if (sc.workload === 'shared-prefix') {
      calib = calibration(rows, sc);
      process.stdout.write(`calibration (shared-prefix = llm-d/GIE b2b setup):\n${calib}\n`);
    }
  }
  const out: RoutingRow[] = all.map((r) => ({
    policy: r.policy,
    workload: r.workload,
    qps: r.qps,
    ...(r.timeScale !== undefined ? { timeScale: r.timeScale } : {}),
    ttftP50: r.ttftP50,
    ttftP90: r.ttftP90,
    ttftP99: r.ttftP99,
    tpotP50: r.tpotP50,
    outputTokensPerS: r.outputTokensPerS,
    hitRate: r.hitRate,
    oracleHitRate: r.oracleHitRate,
  }));
  writeFileSync(`bench-results/${base}.json`, JSON.stringify(out, null, 2) + '\n');
  writeFileSync(`bench-results/${base}-detail.json`, JSON.stringify(all, null, 2) + '\n');
  const header = [
    '# Routing benchmark results',
    '',
    `Command: \`npm run bench -- routing${args.length ? ' ' + args.join(' ') : ''}\`; ${seeds} seed(s) per point, medians; ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    'Router: metrics scraped every 50 ms (stale after 2 s), KV events to the cache-indexer after 5 ms, indexer answer 5 ms.',
    '',
  ];
  if (calib) header.push('## Calibration (shared-prefix)', '', calib);
  writeFileSync(`bench-results/${base}-tables.md`, [...header, '## Results', '', ...md].join('\n'));
  process.stdout.write(
    `wrote bench-results/${base}.json, ${base}-detail.json, ${base}-tables.md and SVG plots (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
  );
}
