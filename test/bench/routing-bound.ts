// `npm run bench -- routing-bound [--workload shared-prefix] [--qps 60] [--seeds 3] [--target 27850]`
// Upper bounds on the output tokens/s an aggregated workload can reach in
// the routing simulator's measurement window, for ANY placement (and any
// order of service inside a server), computed from the simulator's own
// server parameters (sim/params.ts) and the workload's generated arrivals
// (the same seeds as `routing`). Each bound is a relaxation of the engine
// model (sim/engine.ts), so what no relaxed schedule can exceed, no router
// can either:
//  1. per request: a request arriving at a produces at most
//     min(outputTokens, 1 + (windowEnd - max(a, windowStart)) / tau0)
//     tokens in the window, tau0 = stepOverhead + decodeBase (the shortest
//     step that decodes anything; one token per step per sequence);
//  2. decode ceiling: at time t at most D(t) = min(servers x maxNumSeqs,
//     requests arrived by t) sequences decode; a server decoding d of them
//     takes at least tau0 + decodePerSeq x d per step (KV usage >= 0, no
//     prefill), so the pool makes at most servers x d / (tau0 + decodePerSeq x d)
//     tokens/s with d = D / servers (the best split: the rate is concave in d);
// Two fluid schedules follow; they are NOT bounds (they admit oldest first,
// which need not be optimal), only what an idealised placement and engine
// could approach:
//  a. (2) with the KV capacity: the sequences running at t hold their own
//     output tokens plus the distinct prompt blocks they reference (shared
//     prefixes counted once in the whole pool: the most generous sharing any
//     placement can get); as many run, oldest first, as fit;
//  b. (a) with the step time the engine has at that KV usage, and every
//     block no earlier request computed prefilled once (the warm-up's count
//     as computed and nothing is ever evicted or preempted).
import { SCENARIOS } from './sim/scenarios.js';
import type { ServerParams } from './sim/params.js';
import type { SimRequest } from './sim/workload-types.js';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

interface Bounds {
  perRequest: number;
  decodeCeiling: number;
  /** Fluid schedule (a), and the largest pool KV share it used. */
  kvCeiling: number;
  kvPeak: number;
  /** Fluid schedule (b), not a bound. */
  estimate: number;
}

/** Tokens/s bounds for one generated run on `servers` servers with parameters `p`. */
export function windowBounds(
  requests: readonly SimRequest[],
  windowStartS: number,
  windowEndS: number,
  servers: number,
  p: ServerParams,
  dtS = 0.05,
): Bounds {
  const T = windowEndS - windowStartS;
  const tau0 = p.stepOverheadS + p.decodeBaseS;
  // Requests that can produce tokens in the window. Those that arrived before it
  // (warm-up) count with their per-request cap only, as a constant.
  const all = requests
    .filter((r) => r.arrivalS < windowEndS)
    .map((r) => ({ a: Math.max(0, r.arrivalS - windowStartS), r, early: r.arrivalS < windowStartS }));
  const rs = all.filter((x) => !x.early).sort((x, y) => x.a - y.a);
  // 1. per request.
  let perReq = 0;
  let earlyTokens = 0;
  for (const { a, r, early } of all) {
    const c = Math.min(r.outputTokens, 1 + Math.floor((T - a) / tau0));
    perReq += c;
    if (early) earlyTokens += c;
  }
  // A step that only completes prompts samples one token each without the decode time.
  const firstTokens = rs.length;
  // 2, (a) and (b) on a time grid.
  const cap = p.kvBlocks * p.blockSize * servers;
  const maxSeqs = p.maxNumSeqs * servers;
  const rate = (d: number) => (d <= 0 ? 0 : (servers * d) / (tau0 + p.decodePerSeqS * d));
  let w2 = earlyTokens + firstTokens;
  // (a): per-request progress; sequences run oldest first while they fit.
  const gen = new Float64Array(rs.length);
  const done = new Uint8Array(rs.length);
  // Block hashes as small integers, and a stamp per block: "counted in this slice".
  const ids = new Map<string, number>();
  const blockIds = rs.map(({ r }) =>
    Uint32Array.from(r.hashes, (h) => {
      let id = ids.get(h);
      if (id === undefined) ids.set(h, (id = ids.size));
      return id;
    }),
  );
  const stamp = new Uint32Array(ids.size);
  let slice = 0;
  let w3 = earlyTokens;
  let w4 = earlyTokens;
  let kvPeak = 0;
  const gen4 = new Float64Array(rs.length);
  const done4 = new Uint8Array(rs.length);
  let prefillDebt4 = 0;
  const started4 = new Uint8Array(rs.length);
  const computed4 = new Uint8Array(ids.size);
  for (const { r, early } of all)
    if (early) for (const h of r.hashes) if (ids.has(h)) computed4[ids.get(h)!] = 1;
  let arrived = 0;
  for (let t = 0; t < T; t += dtS) {
    while (arrived < rs.length && rs[arrived]!.a <= t) arrived++;
    // 2.
    w2 += rate(Math.min(maxSeqs, arrived)) * dtS;
    // (a) Admit arrived, unfinished requests oldest first while the KV holds them.
    const step = (genArr: Float64Array, doneArr: Uint8Array, withKvTime: boolean) => {
      slice++;
      let held = 0;
      const run: number[] = [];
      for (let i = 0; i < arrived && run.length < maxSeqs; i++) {
        if (doneArr[i]) continue;
        const bs = blockIds[i]!;
        let fresh = 0;
        for (const b of bs) if (stamp[b] !== slice) fresh++;
        const add = genArr[i]! + fresh * p.blockSize;
        if (held + add > cap) continue;
        held += add;
        for (const b of bs) stamp[b] = slice;
        run.push(i);
      }
      const d = run.length / servers;
      const usage = held / cap;
      const stepS = withKvTime
        ? tau0 + p.decodeKvS * usage + p.decodePerSeqS * d
        : tau0 + p.decodePerSeqS * d;
      return { run, perSeqTokens: dtS / stepS, usage, d };
    };
    const s3 = step(gen, done, false);
    if (s3.usage > kvPeak) kvPeak = s3.usage;
    for (const i of s3.run) {
      const r = rs[i]!.r;
      const g = Math.min(r.outputTokens - gen[i]!, s3.perSeqTokens);
      gen[i] = gen[i]! + g;
      w3 += g;
      if (gen[i]! >= r.outputTokens) done[i] = 1;
    }
    // (b) KV usage in the step time, and prefill of what is not cached yet.
    const s4 = step(gen4, done4, true);
    let admittedPrefill = 0;
    for (const i of s4.run) {
      if (started4[i]) continue;
      started4[i] = 1;
      // Blocks no earlier request computed (the warm-up's count as computed; nothing is evicted).
      for (const b of blockIds[i]!) {
        if (computed4[b]) continue;
        computed4[b] = 1;
        admittedPrefill += p.blockSize;
      }
    }
    prefillDebt4 += admittedPrefill / (p.prefillTokensPerS * servers);
    // Time spent on prefill comes out of this slice's decode time.
    const spend = Math.min(dtS, prefillDebt4);
    prefillDebt4 -= spend;
    const share = 1 - spend / dtS;
    for (const i of s4.run) {
      const r = rs[i]!.r;
      const g = Math.min(r.outputTokens - gen4[i]!, s4.perSeqTokens * share);
      gen4[i] = gen4[i]! + g;
      w4 += g;
      if (gen4[i]! >= r.outputTokens) done4[i] = 1;
    }
  }
  return {
    perRequest: perReq / T,
    decodeCeiling: Math.min(w2, perReq) / T,
    kvCeiling: w3 / T,
    kvPeak,
    estimate: w4 / T,
  };
}

export async function run(args: string[]): Promise<void> {
  const workload = arg(args, '--workload') ?? 'shared-prefix';
  const sc = SCENARIOS.find((s) => s.workload === workload);
  if (!sc || !sc.agg?.servers) throw new Error(`--workload needs an aggregated workload, got "${workload}"`);
  const qps = Number(arg(args, '--qps') ?? 60);
  if (!(qps > 0)) throw new Error('--qps needs a load > 0');
  const seeds = Number(arg(args, '--seeds') ?? 3);
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error('--seeds needs an integer >= 1');
  const target = arg(args, '--target') === undefined ? undefined : Number(arg(args, '--target'));
  const p = sc.agg.server;
  const n = sc.agg.servers;
  console.log(
    `${workload} at ${qps} QPS on ${n} x ${p.name}: ${p.kvBlocks * p.blockSize} KV tokens and max-num-seqs ${p.maxNumSeqs} per server, ` +
      `step >= ${(p.stepOverheadS + p.decodeBaseS) * 1000} ms + ${p.decodePerSeqS * 1e6} us x seqs (+ ${p.decodeKvS * 1000} ms x KV usage), ` +
      `prefill ${p.prefillTokensPerS} tok/s; window ${sc.windowS} s`,
  );
  for (let s = 0; s < seeds; s++) {
    const seed = 1000 * (s + 1) + Math.round(qps * 10);
    const gen = sc.generator.generate(seed, qps, sc.windowS);
    const b = windowBounds(gen.requests, gen.windowStartS, gen.windowEndS, n, p);
    const vs = (v: number) => (target ? ` (${(v / target).toFixed(2)}x the target ${target})` : '');
    console.log(`  seed ${seed}:`);
    console.log(
      `    bound 1, per request:                    ${Math.round(b.perRequest)} tok/s${vs(b.perRequest)}`,
    );
    console.log(
      `    bound 2, + arrivals and max-num-seqs:    ${Math.round(b.decodeCeiling)} tok/s${vs(b.decodeCeiling)}`,
    );
    console.log(
      `    fluid (a), + KV capacity (peak use ${b.kvPeak.toFixed(2)}): ${Math.round(b.kvCeiling)} tok/s${vs(b.kvCeiling)}`,
    );
    console.log(
      `    fluid (b), + KV step time and prefill:   ${Math.round(b.estimate)} tok/s${vs(b.estimate)}`,
    );
  }
}
