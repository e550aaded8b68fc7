// `npm run bench -- routing-probe --workload W --policy a,b --qps 30,35 [--seeds 3] [--first-seed 1] [--every 5] [--copies]`
// Per-server diagnostics of one aggregated workload (docs/benchmarks.md,
// issue 12 round four): for each load, seed and policy, a time series of
// every server's requests in flight (waiting + running), waiting, KV usage
// and preemptions, then per server: requests routed, distinct group
// prefixes (first prompt block) routed there, in flight at the window's
// end, preemptions, first-admission prefix-cache misses, re-prefilled
// tokens (prefilled beyond those misses: preemption recompute), output
// inside the window and TTFT p90. --copies logs every request sent to a
// server that did not yet hold its group; --summary prints one line per
// run. Same seeds as `routing`, so the figures explain its rows.
import { simulate } from './sim/cluster.js';
import type { Engine } from './sim/engine.js';
import { summarise } from './sim/metrics.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { SCENARIOS } from './sim/scenarios.js';
import { cloneRequests } from './routing.js';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function numbers(v: string | undefined, what: string): number[] {
  const out = (v ?? '').split(',').filter(Boolean).map(Number);
  if (out.length === 0 || out.some((n) => !(n > 0))) throw new Error(`${what} needs numbers > 0`);
  return out;
}

const f0 = (v: number) => String(Math.round(v));
const f2 = (v: number) => v.toFixed(2);

export async function run(args: string[]): Promise<void> {
  const workload = arg(args, '--workload');
  const sc = SCENARIOS.find((s) => s.workload === workload);
  if (!sc || !sc.agg) throw new Error(`--workload needs an aggregated workload, got "${workload ?? ''}"`);
  const loads = numbers(arg(args, '--qps'), '--qps');
  const policies = (arg(args, '--policy') ?? '').split(',').filter(Boolean) as PolicyId[];
  if (policies.length === 0) throw new Error('--policy needs at least one policy');
  const seeds = Number(arg(args, '--seeds') ?? 1);
  const everyS = Number(arg(args, '--every') ?? 5);
  // 1 = the first seed `routing` runs (1000 + 10 x QPS), 2 = the second, ...
  const firstSeed = Number(arg(args, '--first-seed') ?? 1);
  if (!Number.isInteger(firstSeed) || firstSeed < 1) throw new Error('--first-seed needs an integer >= 1');
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error('--seeds needs an integer >= 1');
  if (!(everyS > 0)) throw new Error('--every needs seconds > 0');
  for (const qps of loads) {
    for (let s = firstSeed - 1; s < firstSeed - 1 + seeds; s++) {
      const seed = 1000 * (s + 1) + Math.round(qps * 10);
      const gen = sc.generator.generate(seed, qps, sc.windowS);
      for (const pid of policies) {
        const run = { ...gen, requests: cloneRequests(gen.requests) };
        const series: string[] = [];
        // Fine-grained state for the copy log: [t, waiting..., KV usage...] every 50 ms.
        const fine: number[][] = [];
        let nextPrint = -Infinity;
        const genAtStart = new Map<string, number>();
        const genAtEnd = new Map<string, number>();
        const inFlightAtEnd = new Map<string, number>();
        const summaryOnly = args.includes('--summary');
        const sample = (t: number, engines: readonly Engine[]) => {
          fine.push([t, ...engines.map((e) => e.waiting.length), ...engines.map((e) => e.kvUsage)]);
          if (t <= run.windowStartS) for (const e of engines) genAtStart.set(e.id, e.generatedTokens);
          if (t <= run.windowEndS) {
            for (const e of engines) {
              genAtEnd.set(e.id, e.generatedTokens);
              inFlightAtEnd.set(e.id, e.waiting.length + e.running.length);
            }
          }
          if (t < nextPrint) return;
          nextPrint = t + everyS - 1e-9;
          const rel = t - run.windowStartS;
          if (rel < -everyS || t > run.windowEndS + everyS) return;
          const cell = (e: Engine) =>
            `${f0(e.waiting.length + e.running.length)}/${f0(e.waiting.length)}/${f2(e.kvUsage)}/${e.preemptions}`;
          series.push(`    t=${rel.toFixed(0).padStart(3)}s ${engines.map(cell).join('  ')}`);
        };
        const out = await simulate({
          policy: policy(pid),
          cluster: sc.agg,
          router: DEFAULT_ROUTER,
          run,
          seed,
          maxDrainS: 300,
          probe: { everyS: 0.05, sample },
        });
        const m = summarise(out, run.windowEndS - run.windowStartS);
        const head =
          `${sc.workload} ${qps} QPS seed ${seed} ${pid}: TTFT p90 ${m.ttftP90.toFixed(2)} s, ` +
          `${f0(m.outputTokensPerS)} tok/s, hit ${m.hitRate.toFixed(3)}, preemptions ${m.preemptions}, busy CV ${m.busyCv.toFixed(3)}`;
        if (!summaryOnly) {
          console.log(head);
          console.log('    in flight / waiting / KV usage / preemptions, per server');
          for (const line of series) console.log(line);
        }
        // Per server: what was routed there, and what it computed.
        const groupsOf = new Map<string, Set<string>>();
        const routed = new Map<string, number>();
        const ttfts = new Map<string, number[]>();
        const holders = new Map<string, Set<string>>();
        for (const r of run.requests) {
          if (!r.server) continue;
          routed.set(r.server, (routed.get(r.server) ?? 0) + 1);
          const g = r.hashes[0] ?? '';
          let gs = groupsOf.get(r.server);
          if (!gs) groupsOf.set(r.server, (gs = new Set()));
          gs.add(g);
          let hs = holders.get(g);
          if (!hs) holders.set(g, (hs = new Set()));
          hs.add(r.server);
          if (r.measured) {
            let ts = ttfts.get(r.server);
            if (!ts) ttfts.set(r.server, (ts = []));
            ts.push((r.firstTokenS ?? out.endS) - r.arrivalS);
          }
        }
        let copies = 0;
        for (const hs of holders.values()) copies += hs.size - 1;
        let earlyCopies = 0;
        {
          // Every request sent to a server that was not yet a holder of its group.
          const seen = new Map<string, Set<string>>();
          const ids = out.engines.map((e) => e.id);
          const n = ids.length;
          let k = 0;
          for (const r of [...run.requests].sort((a, b) => a.arrivalS - b.arrivalS)) {
            if (!r.server) continue;
            const g = r.hashes[0] ?? '';
            const hs = seen.get(g);
            if (!hs) {
              seen.set(g, new Set([r.server]));
              continue;
            }
            if (hs.has(r.server)) continue;
            while (k + 1 < fine.length && fine[k + 1]![0]! <= r.arrivalS) k++;
            const row = fine[k]!;
            const w = (id: string) => row[1 + ids.indexOf(id)]!;
            const u = (id: string) => row[1 + n + ids.indexOf(id)]!;
            const from = [...hs].map((h) => `${h.split(':')[0]} w${w(h)} u${u(h).toFixed(2)}`).join(', ');
            if (r.arrivalS - run.windowStartS < 20) earlyCopies++;
            if (args.includes('--copies') && !summaryOnly)
              console.log(
                `    copy t=${(r.arrivalS - run.windowStartS).toFixed(2)} to ${r.server.split(':')[0]} w${w(r.server)} u${u(r.server).toFixed(2)} from ${from}; min waiting ${Math.min(...row.slice(1, 1 + n))}`,
              );
            hs.add(r.server);
          }
        }
        // Re-prefilled = prompt tokens computed beyond each request's first-admission miss
        // (preemption recompute, and prefixes evicted before a preempted request came back).
        const rows = out.engines.map((e) => {
          const ts = (ttfts.get(e.id) ?? []).sort((a, b) => a - b);
          return {
            id: e.id,
            routed: routed.get(e.id) ?? 0,
            groups: groupsOf.get(e.id)?.size ?? 0,
            inFlight: inFlightAtEnd.get(e.id) ?? 0,
            preemptions: e.preemptions,
            firstMiss: e.promptTokensSeen - e.hitTokensSeen,
            reprefilled: e.prefilledTokens - (e.promptTokensSeen - e.hitTokensSeen),
            windowOut: (genAtEnd.get(e.id) ?? 0) - (genAtStart.get(e.id) ?? 0),
            p90: ts.length ? ts[Math.min(ts.length - 1, Math.floor(0.9 * ts.length))]! : NaN,
          };
        });
        const range = (k: 'groups' | 'inFlight' | 'routed') =>
          `${Math.min(...rows.map((r) => r[k]))}-${Math.max(...rows.map((r) => r[k]))}`;
        const reTotal = rows.reduce((a, r) => a + r.reprefilled, 0);
        if (summaryOnly) {
          console.log(
            `${head}; copies ${copies} (${earlyCopies} in the first 20 s); groups/server ${range('groups')}; ` +
              `routed ${range('routed')}; in flight at window end ${range('inFlight')}; re-prefilled ${f0(reTotal / 1000)}k tokens`,
          );
          continue;
        }
        console.log(
          `    per server: routed / groups / in flight at window end / preemptions / first-admission miss k tokens / re-prefilled k / window output k / TTFT p90 s; ` +
            `${holders.size} groups, ${copies} extra copies (${earlyCopies} in the first 20 s), re-prefilled ${f0(reTotal / 1000)}k tokens`,
        );
        for (const r of rows) {
          console.log(
            `    ${r.id.padEnd(14)} ${String(r.routed).padStart(5)} ${String(r.groups).padStart(4)} ${String(r.inFlight).padStart(5)} ` +
              `${String(r.preemptions).padStart(5)} ${f0(r.firstMiss / 1000).padStart(6)} ${f0(r.reprefilled / 1000).padStart(6)} ` +
              `${f0(r.windowOut / 1000).padStart(6)} ${r.p90.toFixed(2)}`,
          );
        }
      }
    }
  }
}
