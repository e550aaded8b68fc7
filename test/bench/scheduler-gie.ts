// `npm run bench -- scheduler --gie [--quick] [--endpoints 32] [--tokens 8192] [--repeats 3] [--cpu N]`
//
// The GIE default profile side by side with GIE v1.5.0's own scheduler, in
// one run on one core: ours is the scheduler benchmark's cell (real Director
// + MemoryStateStore, examples/profiles/epp-gie-default.yaml), GIE's is the
// Go driver in test/bench/gie-scheduler (its director's steps: endpoint
// snapshot, approx-prefix PrepareRequestData, Schedule, PreRequest). Both
// get the same request bodies (written to a file for the driver) and new
// random signals on every endpoint before each decision; both parse the
// body before the clock. This process and the driver are pinned to the same
// CPU (taskset; GOMAXPROCS=1) and run alternately, `--repeats` times each.
// decisions/s/core is timed decisions per second of process CPU on both
// sides (getrusage: time the CPU was taken by other processes is not
// counted; GC included): ours sums the CPU of each Director.pick (snapshot,
// hashing, matching, scheduling, the commit that records the pick), GIE's is
// its whole timed loop (PreRequest's asynchronous record included).
//
// The driver is built with the Go toolchain from the Go module proxy
// (go.mod pins sigs.k8s.io/gateway-api-inference-extension v1.5.0) into
// ~/.cache/hermes-router-tools (HERMES_TOOLS_CACHE), once per source
// version. CI never builds it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchCell, listArg, SharedPrefixBodies, stringArg } from './scheduler.js';
import { loadExampleProfile } from './sim/configs.js';
import { Rng } from './sim/rng.js';

const GIE_VERSION = 'v1.5.0';
const DRIVER_DIR = resolve(process.cwd(), 'test/bench/gie-scheduler');

interface GieResult {
  endpoints: number;
  decisions: number;
  p50Us: number;
  p99Us: number;
  scheduleP50Us: number;
  decisionsPerSecPerCore: number;
  gomaxprocs: number;
  goVersion: string;
}

/** Builds the driver once per source version; returns its path. */
export function gieDriver(): string {
  const files = ['main.go', 'go.mod', 'go.sum'];
  const digest = createHash('sha256');
  for (const f of files) digest.update(readFileSync(join(DRIVER_DIR, f)));
  const cache = process.env.HERMES_TOOLS_CACHE ?? join(homedir(), '.cache', 'hermes-router-tools');
  const dir = join(cache, `gie-scheduler-${GIE_VERSION}-${digest.digest('hex').slice(0, 12)}`);
  const bin = join(dir, 'gie-scheduler');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  process.stdout.write(
    `building the GIE ${GIE_VERSION} scheduler driver into ${dir} (a few minutes the first time)\n`,
  );
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: DRIVER_DIR,
    stdio: 'inherit',
    env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
  });
  return bin;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(xs: number[], digits = 1): string {
  return xs.map((x) => x.toFixed(digits)).join(' / ');
}

export async function runSideBySide(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const endpointsList = listArg(args, '--endpoints', [32]);
  const tokensList = listArg(args, '--tokens', [8192]);
  const repeats = listArg(args, '--repeats', [quick ? 2 : 3])[0]!;
  const cpu = Number(stringArg(args, '--cpu') ?? String(cpus().length - 1));
  const warmup = quick ? 100 : 200;
  const timed = quick ? 400 : 1000;
  const outcome = loadExampleProfile('epp-gie-default');
  if (!outcome.ok) throw new Error(`epp-gie-default does not load: ${outcome.error}`);
  const driver = gieDriver();
  // Every thread of this process (V8's GC and compiler threads too) on the driver's CPU.
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
  const load = loadavg().map((l) => l.toFixed(2));
  process.stdout.write(
    `GIE default profile, Hermes-router vs GIE ${GIE_VERSION}'s scheduler, both pinned to CPU ${cpu}, ` +
      `${warmup} warm-up + ${timed} timed decisions, ${repeats} alternating runs each; load average ${load.join(' ')}\n\n`,
  );
  const rows: unknown[] = [];
  let seed = 1;
  for (const n of endpointsList) {
    for (const t of tokensList) {
      const ours = {
        p50: [] as number[],
        p99: [] as number[],
        perCore: [] as number[],
        sched: [] as number[],
      };
      const gie = {
        p50: [] as number[],
        p99: [] as number[],
        perCore: [] as number[],
        sched: [] as number[],
      };
      for (let r = 0; r < repeats; r++) {
        const cellSeed = seed++;
        const gen = new SharedPrefixBodies(new Rng(cellSeed * 7919), t);
        const bodies = Array.from({ length: warmup + timed }, (_, i) => gen.body(i));
        const file = join(tmpdir(), `hermes-gie-bodies-${process.pid}-${cellSeed}.jsonl`);
        writeFileSync(file, bodies.join('\n') + '\n');
        const mine = await benchCell(
          'epp-gie-default',
          outcome.loaded,
          n,
          t,
          warmup,
          timed,
          cellSeed,
          'cached',
          undefined,
          { bodies },
        );
        ours.p50.push(mine.p50Us);
        ours.p99.push(mine.p99Us);
        ours.perCore.push(mine.decisionsPerCpuSecond);
        ours.sched.push(mine.scheduleP50Us);
        const raw = execFileSync(
          'taskset',
          [
            '-c',
            String(cpu),
            driver,
            '-bodies',
            file,
            '-endpoints',
            String(n),
            '-warmup',
            String(warmup),
            '-seed',
            String(cellSeed),
          ],
          { env: { ...process.env, GOMAXPROCS: '1' }, maxBuffer: 1 << 20 },
        ).toString();
        const g = JSON.parse(raw) as GieResult;
        gie.p50.push(g.p50Us);
        gie.p99.push(g.p99Us);
        gie.perCore.push(g.decisionsPerSecPerCore);
        gie.sched.push(g.scheduleP50Us);
      }
      const p50Ratio = median(gie.p50) / median(ours.p50);
      const perCoreRatio = median(ours.perCore) / median(gie.perCore);
      process.stdout.write(
        `${n} endpoints, ${t} tokens\n` +
          `  hermes  decide p50 ${fmt(ours.p50)} us  p99 ${fmt(ours.p99)} us  schedule p50 ${fmt(ours.sched)} us  decisions/s/core ${fmt(ours.perCore, 0)}\n` +
          `  gie     decide p50 ${fmt(gie.p50)} us  p99 ${fmt(gie.p99)} us  Schedule() p50 ${fmt(gie.sched)} us  decisions/s/core ${fmt(gie.perCore, 0)}\n` +
          `  ratio (medians): decide p50 ${p50Ratio.toFixed(2)}x faster, decisions/s/core ${perCoreRatio.toFixed(2)}x ` +
          `(target >= 5x: ${p50Ratio >= 5 && perCoreRatio >= 5 ? 'met' : 'MISSED'})\n\n`,
      );
      rows.push({ endpoints: n, promptTokens: t, hermes: ours, gie, p50Ratio, perCoreRatio });
    }
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(
    'bench-results/scheduler-gie.json',
    JSON.stringify({ gieVersion: GIE_VERSION, cpu, loadAverage: load, rows }, null, 2) + '\n',
  );
  process.stdout.write('wrote bench-results/scheduler-gie.json\n');
}
