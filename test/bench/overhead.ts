// `npm run bench -- overhead [--quick] [--repeats N] [--only decision,extproc,memory,redis,indexer]`
//
// What the router itself costs (issue 7, "Router overhead"), one command:
//   1. decision time per example profile, 8/32/128 endpoints, 1k-100k tokens
//      (test/bench/scheduler.ts cells);
//   2. the ext_proc path over real gRPC streams against a spawned EPP,
//      bodies 2 KB-400 KB, closed loop (saturation) and open loop (fixed
//      arrival rate), EPP CPU per request from /proc (test/bench/extproc.ts);
//   3. memory per endpoint, per tracked prefix block, per indexed block;
//   4. the Redis cost per decision (test/bench/state.ts + whole decisions);
//   5. the cache-indexer /match_sort round trip.
// Every measurement runs `--repeats` times (default 2) and both runs are
// reported, with the spread between them: the machine is shared. Prints
// tables and writes bench-results/overhead.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DECISION_GOAL, decisionSection, decisionTable, type DecisionSection } from './overhead/decision.js';
import { extprocSection, extprocTables, type ExtProcSection } from './overhead/extproc-path.js';
import { indexerRttSection, indexerRttTable, type IndexerRttSection } from './overhead/indexer-rtt.js';
import { memorySection, memoryTable, type MemorySection } from './overhead/memory.js';
import { redisSection, redisTables, type RedisSection } from './overhead/redis-cost.js';
import { say } from './overhead/report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SECTIONS = ['decision', 'extproc', 'memory', 'redis', 'indexer'] as const;
type SectionName = (typeof SECTIONS)[number];

interface Plan {
  decision: Parameters<typeof decisionSection>[0];
  extproc: Omit<Parameters<typeof extprocSection>[0], 'root' | 'repeats'>;
  memory: Omit<Parameters<typeof memorySection>[0], 'repeats'>;
  redis: Omit<Parameters<typeof redisSection>[0], 'repeats'>;
  indexer: Omit<Parameters<typeof indexerRttSection>[0], 'root' | 'repeats'>;
}

function plan(quick: boolean, repeats: number): Plan {
  return {
    decision: quick
      ? { endpoints: [32], tokens: [1024, 8192, 32768], counts: () => ({ warmup: 30, timed: 150 }), repeats }
      : {
          endpoints: [8, 32, 128],
          tokens: [1024, 8192, 32768, 102400],
          // Long prompts cost up to ~25 ms of out-of-clock work per decision (body, index upkeep):
          // fewer of them keeps a full run within ~6 minutes.
          counts: (t) =>
            t <= 8192
              ? { warmup: 100, timed: 500 }
              : t <= 32768
                ? { warmup: 40, timed: 250 }
                : { warmup: 20, timed: 100 },
          repeats,
        },
    extproc: {
      bodies: [2_048, 32_768, 220_000, 400_000],
      concurrency: quick ? [1, 64] : [1, 16, 64],
      openLoopRates: [500, 1_000],
      closedDurationMs: quick ? 500 : 1_500,
      openDurationMs: quick ? 1_000 : 3_000,
    },
    memory: quick
      ? { endpoints: 2_000, prefixBlocks: 30_000, indexerBlocks: 20_000 }
      : { endpoints: 5_000, prefixBlocks: 100_000, indexerBlocks: 50_000 },
    redis: quick
      ? {
          stateDecisions: 500,
          profiles: ['epp-gie-default'],
          endpoints: [32],
          promptTokens: 8192,
          warmup: 30,
          timed: 150,
        }
      : {
          stateDecisions: 2_000,
          profiles: ['epp-gie-default', 'epp-kv-cache-aware', 'epp-pd-bucket'],
          endpoints: [8, 32],
          promptTokens: 8192,
          warmup: 50,
          timed: 300,
        },
    indexer: quick
      ? { tokens: [1024, 32768], candidates: [8, 32], warmup: 20, timed: 100 }
      : { tokens: [1024, 8192, 32768], candidates: [8, 32], warmup: 30, timed: 200 },
  };
}

function parseArgs(args: string[]): { quick: boolean; repeats: number; only: Set<SectionName> } {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const repeats = Number(value('--repeats') ?? 2);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 5)
    throw new Error(`--repeats: expected an integer 1..5, got "${value('--repeats')}"`);
  const onlyRaw = value('--only');
  const only = new Set<SectionName>();
  for (const s of onlyRaw ? onlyRaw.split(',') : SECTIONS) {
    if (!(SECTIONS as readonly string[]).includes(s))
      throw new Error(`--only: unknown section "${s}" (expected ${SECTIONS.join(', ')})`);
    only.add(s as SectionName);
  }
  return { quick: args.includes('--quick'), repeats, only };
}

/** Plain-language verdicts against the overhead goals. */
function goalLines(d: DecisionSection): string[] {
  const lines: string[] = [];
  const inScope = d.rows.filter((r) => r.goal !== null);
  const byProfile = new Map<string, typeof inScope>();
  for (const r of inScope) byProfile.set(r.profile, [...(byProfile.get(r.profile) ?? []), r]);
  lines.push(
    `goal: decision p50 <= ${DECISION_GOAL.p50Us} us, p99 <= ${DECISION_GOAL.p99Us} us, >= ${DECISION_GOAL.perCore} decisions/s/core, prompts up to 32k tokens (every run of a cell must meet all three)`,
  );
  for (const [profile, rows] of byProfile) {
    const met = rows.filter((r) => r.goal === 'met').length;
    const p50Miss = rows.filter((r) => r.p50Us.some((v) => v > DECISION_GOAL.p50Us));
    const p99Miss = rows.filter((r) => r.p99Us.some((v) => v > DECISION_GOAL.p99Us));
    const rateMiss = rows.filter((r) => r.decisionsPerSecPerCore.some((v) => v < DECISION_GOAL.perCore));
    // p99 misses that go away when the decisions a GC pause landed in are left out.
    const gcOnly = p99Miss.filter((r) => r.p99NoGcUs.every((v) => v <= DECISION_GOAL.p99Us));
    const cells = (rs: typeof rows) => rs.map((r) => `${r.endpoints}x${r.promptTokens / 1024}k`).join(' ');
    lines.push(
      `  ${profile.padEnd(22)} ${met}/${rows.length} cells met` +
        (p50Miss.length ? `; p50 over in ${cells(p50Miss)}` : '') +
        (p99Miss.length
          ? `; p99 over in ${cells(p99Miss)} (${gcOnly.length} of them under ${DECISION_GOAL.p99Us} us without the decisions a GC pause hit)`
          : '') +
        (rateMiss.length ? `; < ${DECISION_GOAL.perCore}/s in ${cells(rateMiss)}` : ''),
    );
  }
  return lines;
}

export async function run(args: string[]): Promise<void> {
  const { quick, repeats, only } = parseArgs(args);
  const p = plan(quick, repeats);
  const started = performance.now();
  const load0 = loadavg();
  say(
    `router overhead benchmark${quick ? ' (--quick)' : ''}: ${repeats} run(s) per measurement; ${cpus().length} cores, load average ${load0.map((v) => v.toFixed(2)).join(' ')}`,
  );
  const out: {
    decision?: DecisionSection;
    extproc?: ExtProcSection;
    memory?: MemorySection;
    redis?: RedisSection;
    indexer?: IndexerRttSection;
  } = {};
  const seconds: Partial<Record<SectionName, number>> = {};
  const timed = async <T>(name: SectionName, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      seconds[name] = Math.round((performance.now() - t0) / 100) / 10;
    }
  };
  if (only.has('decision')) out.decision = await timed('decision', () => decisionSection(p.decision));
  if (only.has('extproc'))
    out.extproc = await timed('extproc', () => extprocSection({ ...p.extproc, root: ROOT, repeats }));
  if (only.has('memory')) out.memory = await timed('memory', () => memorySection({ ...p.memory, repeats }));
  if (only.has('redis')) out.redis = await timed('redis', () => redisSection({ ...p.redis, repeats }));
  if (only.has('indexer'))
    out.indexer = await timed('indexer', () => indexerRttSection({ ...p.indexer, root: ROOT, repeats }));

  say('\n# Summary');
  if (out.decision)
    say(`\nDecision time (indexer answer cached; runs side by side):\n\n${decisionTable(out.decision)}`);
  if (out.extproc) say(`\next_proc path:\n\n${extprocTables(out.extproc)}`);
  if (out.memory) say(`\nMemory:\n\n${memoryTable(out.memory)}`);
  if (out.redis) say(`\nRedis:\n\n${redisTables(out.redis)}`);
  if (out.indexer) say(`\ncache-indexer round trip:\n\n${indexerRttTable(out.indexer)}`);
  if (out.decision) say('\n' + goalLines(out.decision).join('\n'));
  const noise: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(out)) noise[k] = (v as { noise: unknown }).noise;
  say(
    `\nrun-to-run spread ((max - min) / min of the ${repeats} runs; median and worst over the cells): ${JSON.stringify(noise)}`,
  );
  const load1 = loadavg();
  const doc = {
    benchmark: 'overhead',
    quick,
    repeats,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? null, node: process.version },
    loadAverageStart: load0,
    loadAverageEnd: load1,
    secondsPerSection: seconds,
    totalSeconds: Math.round((performance.now() - started) / 1000),
    goals: DECISION_GOAL,
    ...out,
  };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results/overhead.json'), JSON.stringify(doc, null, 2) + '\n');
  say(`\nsections took ${JSON.stringify(seconds)} s; wrote bench-results/overhead.json`);
}
