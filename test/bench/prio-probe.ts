// `npm run bench -- prio-probe [--seed N] [--scales 0.3,0.075] [--sheddable-saturation X] [--policy P]`
//
// Where the priority-10 requests of issue 14's 20/80 mix spend their TTFT on
// the trace replay (flow control on, --policy, default gie-default): the EPP queue (dispatch -
// arrival), the server (first token - dispatch), and of the server's share
// their own prefill (uncached prompt tokens / the server's prefill rate)
// against the rest (the engine's queue and batch). Per request mix and per
// application mix; for the latter also per application.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { flowControlSettingsOf } from '../../src/config/flow-control.js';
import { mixPriorities, mixPrioritiesByApp } from './flow-control.js';
import { cloneRequests } from './routing.js';
import { simulate } from './sim/cluster.js';
import { SimFlow } from './sim/flow-control.js';
import { DEFAULT_ROUTER } from './sim/params.js';
import { policy, type PolicyId } from './sim/policies.js';
import { percentile } from './sim/rng.js';
import { traceScenario } from './sim/scenarios.js';
import { DEFAULT_TRACE_BLOCK_TOKENS, offeredQps, parseTrace } from './sim/trace.js';

const arg = (a: string[], f: string) => (a.indexOf(f) < 0 ? undefined : a[a.indexOf(f) + 1]);
const r3 = (v: number) => Math.round(v * 1000) / 1000;
const SETTINGS = flowControlSettingsOf({}, '(bench)', (p) => p.join('.'))!;

const p = (xs: number[], q: number) => (xs.length ? r3(percentile(xs, q)) : NaN);
const mean = (xs: number[]) => (xs.length ? r3(xs.reduce((a, b) => a + b, 0) / xs.length) : NaN);

export async function run(args: string[]): Promise<void> {
  const seed = Number(arg(args, '--seed') ?? 1000);
  const scales = (arg(args, '--scales') ?? '0.3,0.075').split(',').map(Number);
  const shed = arg(args, '--sheddable-saturation');
  const pid = (arg(args, '--policy') ?? 'gie-default') as PolicyId;
  const tracePath = 'test/bench/traces/agentic-chat-long.jsonl';
  const records = parseTrace(readFileSync(tracePath, 'utf8'), tracePath, DEFAULT_TRACE_BLOCK_TOKENS);
  const sc = traceScenario(
    basename(tracePath, extname(tracePath)),
    records,
    DEFAULT_TRACE_BLOCK_TOKENS,
    scales,
  );
  const prefillRate = sc.agg!.server.prefillTokensPerS;
  for (const [mixName, mixOf] of [
    ['per-request', mixPriorities],
    ['per-application', mixPrioritiesByApp],
  ] as const) {
    for (const x of scales) {
      const gen = sc.generator.generate(seed, x, 0);
      const pr = mixOf(gen.requests, seed);
      const sim = new SimFlow({
        settings: SETTINGS,
        priorityOf: (sr) => pr.get(sr.id) ?? 0,
        sheddableSaturation: shed !== undefined ? Number(shed) : undefined,
      });
      const out = await simulate({
        policy: policy(pid),
        cluster: sc.agg!,
        router: DEFAULT_ROUTER,
        run: { ...gen, requests: cloneRequests(gen.requests) },
        seed,
        maxDrainS: 300,
        flow: sim,
      });
      const high = out.requests.filter(
        (r) => r.measured && pr.get(r.id) === 10 && r.firstTokenS !== undefined,
      );
      const describe = (rs: typeof high, label: string) => {
        const ttft = rs.map((r) => r.firstTokenS! - r.arrivalS);
        const epp = rs.map((r) => (r.dispatchS ?? r.arrivalS) - r.arrivalS);
        const srv = rs.map((r) => r.firstTokenS! - (r.dispatchS ?? r.arrivalS));
        const uncached = rs.map((r) => r.promptTokens - (r.hitTokens ?? 0));
        const own = uncached.map((u) => u / prefillRate);
        const rest = srv.map((s, i) => s - own[i]!);
        const hit =
          rs.reduce((a, r) => a + (r.hitTokens ?? 0), 0) /
          Math.max(
            1,
            rs.reduce((a, r) => a + r.promptTokens, 0),
          );
        // The slowest decile: what its requests' TTFT is made of.
        const idx = ttft
          .map((t, i) => [t, i] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, Math.max(1, Math.floor(rs.length / 10)))
          .map(([, i]) => i);
        const pick = (xs: number[]) => idx.map((i) => xs[i]!);
        console.log(
          `  ${label}: n ${rs.length} TTFT p50/p90 ${p(ttft, 50)}/${p(ttft, 90)} | EPP wait p90 ${p(epp, 90)} | server p90 ${p(srv, 90)} | ` +
            `own prefill p50/p90 ${p(own, 50)}/${p(own, 90)} s (uncached tok mean ${Math.round(mean(uncached))}, hit ${r3(hit)}) | rest (engine queue/batch) p50/p90 ${p(rest, 50)}/${p(rest, 90)} | ` +
            `slowest 10%: mean TTFT ${mean(pick(ttft))} = EPP ${mean(pick(epp))} + own prefill ${mean(pick(own))} + rest ${mean(pick(rest))}`,
        );
      };
      const served = [...sim.outcomes.values()].filter((o) => o.kind === 'dispatched').length;
      console.log(
        `${mixName} x${x} (${r3(offeredQps(gen))} qps) seed ${seed}: dispatched ${served} of ${gen.requests.length}, preempt ${out.preemptions}`,
      );
      describe(high, 'priority 10');
      const low = out.requests.filter(
        (r) => r.measured && pr.get(r.id) === -1 && r.firstTokenS !== undefined,
      );
      console.log(`  priority -1 served ${low.length}`);
      if (mixName === 'per-application') {
        const byApp = new Map<string, typeof high>();
        for (const r of high) {
          const k = r.hashes[0] ?? '';
          byApp.set(k, [...(byApp.get(k) ?? []), r]);
        }
        let i = 0;
        for (const [k, rs] of [...byApp.entries()].sort((a, b) => b[1].length - a[1].length)) {
          const servers = new Map<string, number>();
          for (const r of rs) servers.set(r.server ?? '?', (servers.get(r.server ?? '?') ?? 0) + 1);
          describe(
            rs,
            `app ${i++} (${k.slice(0, 8)}, servers ${[...servers.values()].sort((a, b) => b - a).join('/')})`,
          );
        }
      }
    }
  }
}
