// `npm run bench -- fc-probe [--seed N] [--policy P] [--factors 2] [--knee QPS] [--mix p0|20/80]`
//
// One flow-controlled trace point per load factor (of --knee, the policy's
// knee without flow control from the flow-control bench), without the
// ladder: output tok/s in the arrival window, outcomes, the served
// requests' TTFT and prefix hit rate, the refused requests' share of first
// turns, the servers' busy share. For exploring flow-control rules quickly;
// the flow-control bench gives the figures that count.
import { FLOW_TRACE, SETTINGS, mixPriorities, readTraceRecords, traceFileScenario } from './flow-control.js';
import { cloneRequests } from './routing.js';
import { simulate } from './sim/cluster.js';
import { SimFlow } from './sim/flow-control.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { percentile } from './sim/rng.js';
import { offeredQps } from './sim/trace.js';

const arg = (a: string[], f: string) => (a.indexOf(f) < 0 ? undefined : a[a.indexOf(f) + 1]);
const r3 = (v: number) => Math.round(v * 1000) / 1000;

export async function run(args: string[]): Promise<void> {
  const seed = Number(arg(args, '--seed') ?? 1000);
  const pid = (arg(args, '--policy') ?? 'hermes-kv-aware') as PolicyId;
  const factors = (arg(args, '--factors') ?? '2').split(',').map(Number);
  const kneeQps = Number(arg(args, '--knee') ?? 69.4);
  const peak = Number(arg(args, '--peak') ?? 14860);
  const mix = arg(args, '--mix') ?? 'p0';
  const records = readTraceRecords(FLOW_TRACE);
  const sc = traceFileScenario(FLOW_TRACE, [0.25]);
  // As the flow-control bench: the time scale offering factor x knee, from x0.25's offered load.
  const ref = offeredQps(sc.generator.generate(seed, 0.25, 0));
  for (const f of factors) {
    const x = r3((0.25 * ref) / (kneeQps * f));
    const gen = sc.generator.generate(seed, x, 0);
    const pr = mix === '20/80' ? mixPriorities(gen.requests, seed) : undefined;
    const sim = new SimFlow({ settings: SETTINGS, priorityOf: (sr) => pr?.get(sr.id) ?? 0 });
    const out = await simulate({
      policy: policy(pid),
      cluster: sc.agg!,
      router: DEFAULT_ROUTER,
      run: { ...gen, requests: cloneRequests(gen.requests) },
      seed,
      maxDrainS: 300,
      flow: sim,
    });
    const windowS = gen.windowEndS - gen.windowStartS;
    const measured = out.requests.filter((r) => r.measured);
    const served = measured.filter((r) => r.firstTokenS !== undefined);
    const ttft = served.map((r) => r.firstTokenS! - r.arrivalS);
    const hit = served.reduce((a, r) => a + (r.hitTokens ?? 0), 0);
    const prompt = served.reduce((a, r) => a + r.promptTokens, 0);
    const uncached = prompt - hit;
    let r429 = 0;
    let r503 = 0;
    for (const o of sim.outcomes.values()) {
      if (o.kind !== 'refused') continue;
      if (o.status === 429) r429++;
      else r503++;
    }
    const high = pr ? served.filter((r) => pr.get(r.id) === 10).map((r) => r.firstTokenS! - r.arrivalS) : [];
    // Conversation structure: a turn extends an earlier request's blocks (all but its last, partial one).
    const sorted = [...records].sort((a, b) => a.timestamp - b.timestamp);
    const parent = new Map<number, number>();
    const byKey = new Map<string, number>();
    for (let i = 0; i < sorted.length; i++) {
      const ids = sorted[i]!.hash_ids;
      for (let k = ids.length - 1; k >= 3; k--) {
        const j = byKey.get(ids.slice(0, k).join(','));
        if (j !== undefined) {
          parent.set(i, j);
          break;
        }
      }
      if (ids.length > 1) byKey.set(ids.slice(0, ids.length - 1).join(','), i);
      byKey.set(ids.join(','), i);
    }
    const servedIds = new Set(served.map((r) => r.id));
    const cls = (id: number) =>
      !parent.has(id) ? 'first' : servedIds.has(parent.get(id)!) ? 'parent-served' : 'parent-refused';
    const stats = new Map<string, { n: number; served: number; hit: number; prompt: number }>();
    for (const r of measured) {
      const c = cls(r.id);
      const s = stats.get(c) ?? { n: 0, served: 0, hit: 0, prompt: 0 };
      s.n++;
      if (servedIds.has(r.id)) {
        s.served++;
        s.hit += r.hitTokens ?? 0;
        s.prompt += r.promptTokens;
      }
      stats.set(c, s);
    }
    for (const [c, s] of stats)
      console.log(
        `  ${c}: ${s.n} requests, served ${s.served}, hit ${r3(s.hit / Math.max(1, s.prompt))}, uncached/served ${Math.round((s.prompt - s.hit) / Math.max(1, s.served))}`,
      );
    // Served share by prompt length: who is refused.
    const buckets = [4096, 8192, 16384, Infinity];
    const byLen = buckets.map(() => ({ n: 0, served: 0 }));
    for (const r of measured) {
      const b = byLen[buckets.findIndex((t) => r.promptTokens <= t)]!;
      b.n++;
      if (servedIds.has(r.id)) b.served++;
    }
    console.log(
      `  served by prompt tokens (<=4k / <=8k / <=16k / more): ${byLen.map((b) => `${b.served}/${b.n}`).join(' / ')}`,
    );
    const busy = out.busyS.map((b) => b / out.endS);
    console.log(
      `${pid} seed ${seed} ${f}x (x${x}, ${r3(offeredQps(gen))} qps) ${mix}: tok/s ${Math.round(out.windowTokens / windowS)} ` +
        `= ${r3(out.windowTokens / windowS / peak)} x peak; served ${served.length} 429 ${r429} 503 ${r503} of ${measured.length}; ` +
        `TTFT p50/p90 ${r3(percentile(ttft, 50))}/${r3(percentile(ttft, 90))}; hit ${r3(hit / Math.max(1, prompt))}, ` +
        `uncached tok/served ${Math.round(uncached / Math.max(1, served.length))}; busy mean ${r3(busy.reduce((a, b) => a + b, 0) / busy.length)} (run ${r3(out.endS)} s, window ${r3(windowS)} s); preempt ${out.preemptions}` +
        (pr ? `; p10 TTFT p90 ${r3(percentile(high, 90))} (n ${high.length})` : ''),
    );
  }
}
