// `npm run bench -- pd-step [--policy a,b] [--qps 4] [--seeds N] [--from S] [--stream-share X]`
//
// The step-phase decode choice (docs/benchmarks.md, round five, branch
// pdstep) on long-short-mix, same seeds and arrivals as `routing`: per
// policy and seed the short requests' TTFT p90, and the median over seeds.
// --from S counts only requests arriving at or after S seconds (the
// learned landing fit warms up in the first seconds of a run);
// --stream-share X makes only that share of the requests streamed (the
// others give the router no chunks, so no step clock), chosen by request
// id, the same requests for every policy.
import { simulate } from './sim/cluster.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy } from './sim/policies.js';
import { percentile } from './sim/rng.js';
import { flagNumber, longShortMix, mixSeed, policiesArg } from './sim/pd-mix-args.js';

const median = (xs: number[]) => percentile(xs, 50);

export async function run(args: string[]): Promise<void> {
  const sc = longShortMix();
  const policies = policiesArg(args, 'hermes-pd-bucket,random-pd-bucket,pd-step-e,pd-step-learn');
  const qps = flagNumber(args, '--qps', 4);
  const seeds = flagNumber(args, '--seeds', 3);
  const from = flagNumber(args, '--from', 0);
  const share = flagNumber(args, '--stream-share', 1);
  console.log(`long-short-mix ${qps} QPS, ${seeds} seeds, arrivals from ${from} s, stream share ${share}`);
  for (const pid of policies) {
    const p90s: number[] = [];
    for (let s = 0; s < seeds; s++) {
      const seed = mixSeed(s, qps);
      const gen = sc.generator.generate(seed, qps, sc.windowS);
      // Golden-ratio spread over ids: the same requests stream for every policy.
      if (share < 1) for (const r of gen.requests) r.req.stream = (r.id * 0.6180339887) % 1 < share;
      await simulate({
        policy: policy(pid),
        cluster: sc.pd!,
        router: DEFAULT_ROUTER,
        run: gen,
        seed,
        maxDrainS: 300,
      });
      const ttft = gen.requests
        .filter((r) => r.measured && r.cls === 'short' && r.firstTokenS !== undefined && r.arrivalS >= from)
        .map((r) => r.firstTokenS! - r.arrivalS);
      p90s.push(percentile(ttft, 90) * 1000);
    }
    console.log(
      `${pid.padEnd(18)} short TTFT p90 ms: median ${median(p90s).toFixed(2)} | ${p90s.map((v) => v.toFixed(2)).join(' ')}`,
    );
  }
}
