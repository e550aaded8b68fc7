// `npm run bench -- routing-streams --workload W --policy a,b --qps Q [--seeds 3] [--streams 3] [--tok]`:
// TTFT p90 at one load for each workload seed (the arrivals `routing` uses)
// replayed with several router random streams (the picker's tie-breaks),
// to tell a routing result that holds from one a tie-break decided
// (docs/benchmarks.md, round three). Prints one row per policy and seed;
// --tok prints output tokens/s instead of TTFT p90 (round six).
import { simulate } from './sim/cluster.js';
import { summarise } from './sim/metrics.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { median } from './sim/rng.js';
import { SCENARIOS } from './sim/scenarios.js';

/** Offsets of the router seed from the workload seed; offset 0 is what `routing` runs. */
const STREAM_OFFSETS = [0, 17, 101, 257, 509];

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function positiveInt(v: string | undefined, dflt: number, what: string, max = Infinity): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${what} needs an integer 1..${max}`);
  return n;
}

export async function run(args: string[]): Promise<void> {
  const workload = arg(args, '--workload');
  const sc = SCENARIOS.find((s) => s.workload === workload);
  if (!sc || !sc.agg) throw new Error(`--workload needs an aggregated workload, got "${workload ?? ''}"`);
  const qps = Number(arg(args, '--qps'));
  if (!(qps > 0)) throw new Error('--qps needs one load > 0');
  const policies = (arg(args, '--policy') ?? '').split(',').filter(Boolean) as PolicyId[];
  if (policies.length === 0) throw new Error('--policy needs at least one policy');
  const seeds = positiveInt(arg(args, '--seeds'), 3, '--seeds');
  const streams = positiveInt(arg(args, '--streams'), 3, '--streams', STREAM_OFFSETS.length);
  const tok = args.includes('--tok');
  const what = tok ? 'output tokens/s' : 'TTFT p90 s';
  const fmt = (v: number) => (tok ? v.toFixed(0) : v.toFixed(3));
  console.log(`${sc.workload} at ${qps} QPS: ${what} per workload seed x router stream`);
  for (const pid of policies) {
    const def = policy(pid);
    const all: number[] = [];
    for (let s = 0; s < seeds; s++) {
      // The seed `routing` derives for this load and seed index.
      const seed = 1000 * (s + 1) + Math.round(qps * 10);
      const row: number[] = [];
      for (const off of STREAM_OFFSETS.slice(0, streams)) {
        const gen = sc.generator.generate(seed, qps, sc.windowS);
        const out = await simulate({
          policy: def,
          cluster: sc.agg,
          router: DEFAULT_ROUTER,
          run: gen,
          seed: seed + off,
          maxDrainS: 300,
        });
        const m = summarise(out, gen.windowEndS - gen.windowStartS);
        row.push(tok ? m.outputTokensPerS : m.ttftP90);
      }
      all.push(...row);
      console.log(`  ${pid.padEnd(24)} seed ${seed}: ${row.map(fmt).join(' / ')}`);
    }
    console.log(`  ${pid.padEnd(24)} median of ${all.length}: ${fmt(median(all))}`);
  }
}
