// Section 1: decision time of the real Director per example profile, using
// the scheduler benchmark's cell (test/bench/scheduler.ts benchCell): body
// parsed before the clock, snapshot + prefix hashing/matching + profile +
// commit inside it. KV-aware profiles run with the cache-indexer answer
// computed before the clock ("cached"): the EPP's own CPU; the network round
// trip to the indexer is section 5, and the indexer's own work its process.
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Director } from '../../../src/director/director.js';
import { benchCell, type CellResult } from '../scheduler.js';
import { exampleProfileNames, loadExampleProfile } from '../sim/configs.js';
import { formatTable, noiseSummary, pct, runs, say, spread } from './report.js';

export const DECISION_GOAL = { p50Us: 200, p99Us: 1000, perCore: 2000, maxGoalTokens: 32_768 };

export interface DecisionOptions {
  endpoints: number[];
  tokens: number[];
  profiles?: string[];
  /** Warm-up and timed decisions per cell; fewer for long prompts keeps a full run in budget. */
  counts: (promptTokens: number) => { warmup: number; timed: number };
  repeats: number;
}

export interface DecisionRow {
  profile: string;
  endpoints: number;
  promptTokens: number;
  timedDecisions: number;
  /** One entry per repeat. */
  p50Us: number[];
  p99Us: number[];
  decisionsPerSecPerCore: number[];
  /** Scheduling alone (filters, scorers, picker), p50 per repeat. */
  scheduleP50Us: number[];
  /** GC pauses of 1 ms or more while the cell ran (in or out of the clock), and the longest, per repeat. */
  gcPausesOver1ms: number[];
  gcMaxPauseMs: number[];
  /** Timed decisions a GC pause overlapped, per repeat. */
  gcHitDecisions: number[];
  /** p99 of the timed decisions no GC pause overlapped (us), per repeat. */
  p99NoGcUs: number[];
  /** Share of the cell's wall time the main thread waited for a CPU (other processes), per repeat; null off Linux. */
  cpuWaitShare: Array<number | null>;
  /** Goal verdict (prompts up to 32k): met in every repeat, in some, or in none; null above 32k. */
  goal: 'met' | 'met in some runs' | 'missed' | null;
}

export interface DecisionSection {
  repeats: number;
  indexerAnswer: 'cached';
  rows: DecisionRow[];
  skipped: Array<{ profile: string; error: string }>;
  noise: { p50: ReturnType<typeof noiseSummary>; p99: ReturnType<typeof noiseSummary> };
}

function meets(r: CellResult): boolean {
  return (
    r.p50Us <= DECISION_GOAL.p50Us &&
    r.p99Us <= DECISION_GOAL.p99Us &&
    r.decisionsPerSecPerCore >= DECISION_GOAL.perCore
  );
}

interface Span {
  start: number;
  end: number;
}

/**
 * Runs `fn` while recording this process's GC pauses and the span of every
 * Director.pick call (the same span benchCell times), so a slow decision can
 * be told apart from one a GC pause landed in.
 */
async function withGc<T>(fn: () => Promise<T>): Promise<{ value: T; pauses: Span[]; picks: Span[] }> {
  const pauses: Span[] = [];
  const picks: Span[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  obs.observe({ entryTypes: ['gc'] });
  const original = Director.prototype.pick;
  Director.prototype.pick = async function (this: Director, ...args: Parameters<Director['pick']>) {
    const start = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      picks.push({ start, end: performance.now() });
    }
  };
  try {
    const value = await fn();
    // GC entries are delivered asynchronously.
    await new Promise((r) => setTimeout(r, 5));
    return { value, pauses, picks };
  } finally {
    Director.prototype.pick = original;
    obs.disconnect();
  }
}

/** Of the last `timed` picks: how many a GC pause overlapped, and the p99 of the others (us). */
function attribute(picks: Span[], pauses: Span[], timed: number): { hit: number; p99NoGcUs: number } {
  const mine = picks.slice(-timed);
  const clean: number[] = [];
  let hit = 0;
  for (const p of mine) {
    if (pauses.some((g) => g.start < p.end && g.end > p.start)) hit++;
    else clean.push((p.end - p.start) * 1000);
  }
  clean.sort((a, b) => a - b);
  return { hit, p99NoGcUs: Math.round(pct(clean, 99) * 10) / 10 };
}

/**
 * The main thread's time on a CPU and waiting for one (ns), from
 * /proc/<pid>/task/<pid>/schedstat (Linux). Read at cell boundaries only: a
 * thread that waited for a CPU for a share of the cell had that share of its
 * decisions delayed by other processes, which the p99 then shows.
 */
function schedstat(): { runNs: number; waitNs: number } | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8')
      .trim()
      .split(' ')
      .map(Number);
    return run !== undefined && wait !== undefined ? { runNs: run, waitNs: wait } : undefined;
  } catch {
    return undefined;
  }
}

export async function decisionSection(o: DecisionOptions): Promise<DecisionSection> {
  const names = exampleProfileNames().filter((n) => !o.profiles || o.profiles.includes(n));
  const skipped: DecisionSection['skipped'] = [];
  const rows: DecisionRow[] = [];
  say(
    `\n## 1. Decision time (Director + MemoryStateStore, indexer answer cached), ${o.repeats} run(s) per cell`,
  );
  let seed = 1;
  for (const name of names) {
    const outcome = loadExampleProfile(name);
    if (!outcome.ok) {
      skipped.push({ profile: name, error: outcome.error });
      say(`${name}: skipped (${outcome.error})`);
      continue;
    }
    for (const n of o.endpoints) {
      for (const t of o.tokens) {
        const { warmup, timed } = o.counts(t);
        const results: CellResult[] = [];
        const gc: number[][] = [];
        const attribution: Array<ReturnType<typeof attribute>> = [];
        const waitShare: Array<number | null> = [];
        // Repeats of one cell run back to back with different seeds (same workload shape).
        for (let k = 0; k < o.repeats; k++) {
          const s = seed++;
          const st0 = schedstat();
          const w0 = performance.now();
          const r = await withGc(() => benchCell(name, outcome.loaded, n, t, warmup, timed, s, 'cached'));
          const st1 = schedstat();
          const wallNs = (performance.now() - w0) * 1e6;
          waitShare.push(st0 && st1 ? Math.round(((st1.waitNs - st0.waitNs) / wallNs) * 1000) / 1000 : null);
          results.push(r.value);
          gc.push(r.pauses.map((p) => p.end - p.start));
          attribution.push(attribute(r.picks, r.pauses, timed));
        }
        const ok = results.filter(meets).length;
        rows.push({
          profile: name,
          endpoints: n,
          promptTokens: t,
          timedDecisions: timed,
          p50Us: results.map((r) => r.p50Us),
          p99Us: results.map((r) => r.p99Us),
          decisionsPerSecPerCore: results.map((r) => r.decisionsPerSecPerCore),
          scheduleP50Us: results.map((r) => r.scheduleP50Us),
          gcPausesOver1ms: gc.map((p) => p.filter((d) => d >= 1).length),
          gcMaxPauseMs: gc.map((p) => Math.round(Math.max(0, ...p) * 10) / 10),
          gcHitDecisions: attribution.map((a) => a.hit),
          p99NoGcUs: attribution.map((a) => a.p99NoGcUs),
          cpuWaitShare: waitShare,
          goal:
            t > DECISION_GOAL.maxGoalTokens
              ? null
              : ok === results.length
                ? 'met'
                : ok > 0
                  ? 'met in some runs'
                  : 'missed',
        });
        const r = rows[rows.length - 1]!;
        say(
          `  ${name.padEnd(22)} ${String(n).padStart(3)} eps ${String(t).padStart(6)} tok  p50 ${runs(r.p50Us).padEnd(15)} p99 ${runs(r.p99Us).padEnd(17)} us  ${runs(r.decisionsPerSecPerCore, 0)} dec/s/core  GC in ${runs(r.gcHitDecisions, 0)} decisions, p99 without them ${runs(r.p99NoGcUs)} us, waited for CPU ${r.cpuWaitShare.map((v) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`)).join(' / ')} (max GC ${runs(r.gcMaxPauseMs)} ms)  ${r.goal ?? '(>32k)'}`,
        );
      }
    }
  }
  return {
    repeats: o.repeats,
    indexerAnswer: 'cached',
    rows,
    skipped,
    noise: {
      p50: noiseSummary(rows.map((r) => spread(r.p50Us))),
      p99: noiseSummary(rows.map((r) => spread(r.p99Us))),
    },
  };
}

/** The decision table for the summary: one line per cell, runs side by side. */
export function decisionTable(s: DecisionSection): string {
  return formatTable({
    header: [
      'profile',
      'endpoints',
      'tokens',
      'p50 us (runs)',
      'p99 us (runs)',
      'decisions/s/core',
      'decisions hit by GC',
      'p99 us without them',
      'longest GC ms',
      'waited for CPU',
      'goal',
    ],
    rows: s.rows.map((r) => [
      r.profile,
      r.endpoints,
      r.promptTokens,
      runs(r.p50Us),
      runs(r.p99Us),
      runs(r.decisionsPerSecPerCore, 0),
      runs(r.gcHitDecisions, 0),
      runs(r.p99NoGcUs),
      runs(r.gcMaxPauseMs),
      r.cpuWaitShare.map((v) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`)).join(' / '),
      r.goal ?? 'n/a (> 32k)',
    ]),
  });
}
