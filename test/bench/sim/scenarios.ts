// What each workload of the routing benchmark runs on: its cluster, its
// policies and its load ladder. Shapes follow the issue and
// performance.md §5.4; where a shape was scaled down to fit the time budget
// on 2 cores, the comment says so.
import type { ClusterSpec } from './cluster.js';
import { B8_H100, Q32_H100X2 } from './params.js';
import { KV_AWARE_TUNING, type PolicyId } from './policies.js';
import { traceRun, type TraceRecord } from './trace.js';
import {
  hotPrefix,
  longShortMix,
  multiTurn,
  noReuse,
  sharedPrefix,
  type WorkloadGenerator,
  type WorkloadId,
} from './workloads.js';

export interface Scenario {
  workload: WorkloadId | `trace:${string}`;
  /** A replayed trace: the ladder holds time scales, not loads. */
  trace?: true;
  describe: string;
  generator: WorkloadGenerator;
  agg?: ClusterSpec;
  pd?: ClusterSpec;
  policies: PolicyId[];
  /** Policies this workload can also run when named with --policy. */
  extraPolicies?: PolicyId[];
  /** Offered loads, requests/s. */
  ladder: number[];
  quickLadder: number[];
  /** Seconds of Poisson arrivals that are measured. */
  windowS: number;
  quickWindowS: number;
  /** TTFT p90 above this is past the knee. */
  sloTtftS: number;
}

const AGG_BASELINES: PolicyId[] = [
  'random',
  'round-robin',
  'least-queue',
  'least-inflight',
  'gie-default',
  'hermes-kv-aware',
  'hermes-kv-aware-v0',
  'oracle',
];
const PD_POLICIES: PolicyId[] = [
  'hermes-pd-kv-aware',
  'hermes-pd-bucket',
  'hermes-pd-bucket-v0',
  'hermes-pd-kv-aware-v0',
  'random-pd-bucket',
];

/** 8 x Qwen3-32B on 2 H100 each: the llm-d / GIE public setup. */
const Q32_X8: ClusterSpec = { server: Q32_H100X2, servers: 8 };
const Q32_X4: ClusterSpec = { server: Q32_H100X2, servers: 4 };
/** 8 GPUs as 2 PD groups of 2 prefill + 2 decode servers (8B model, 1 H100 each). */
const PD_8B: ClusterSpec = { server: B8_H100, pd: { groups: 2, prefillPerGroup: 2, decodePerGroup: 2 } };

/** The generator's measured requests only (its warm-up requests are dropped). */
function withoutWarmup(g: WorkloadGenerator): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const run = g.generate(seed, qps, windowS);
      return { ...run, requests: run.requests.filter((r) => r.measured) };
    },
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    workload: 'shared-prefix',
    describe:
      '150 groups x 5 prompts, 6000-token system prompt + 1200-token question, 1000 output tokens (GIE high-cache / llm-d b2b); 8 x Q32-H100x2',
    generator: sharedPrefix({
      groups: 150,
      promptsPerGroup: 5,
      systemTokens: 6000,
      questionTokens: 1200,
      outputTokens: 1000,
      warmupQps: 15,
    }),
    agg: Q32_X8,
    pd: { server: Q32_H100X2, pd: { groups: 2, prefillPerGroup: 2, decodePerGroup: 2 } },
    policies: [...AGG_BASELINES, 'precise-3-2-2', 'hermes-pd-kv-aware'],
    extraPolicies: KV_AWARE_TUNING,
    ladder: [5, 10, 15, 20, 30, 40, 50, 60],
    quickLadder: [10, 20, 40],
    windowS: 40,
    quickWindowS: 15,
    sloTtftS: 2,
  },
  {
    // The same prompts and measured arrivals as shared-prefix with the
    // warm-up left out: every group prefix is first seen inside the window,
    // so requests sharing a new prefix can arrive while its first prefill
    // runs (the cache-indexer does not know it yet). Runs only when a policy
    // is named with --policy (docs/benchmarks.md, Tuning, finding 3).
    workload: 'shared-prefix-cold',
    describe:
      'shared-prefix without the warm-up: every 6000-token group prefix is new when the window starts; 8 x Q32-H100x2',
    generator: withoutWarmup(
      sharedPrefix({
        groups: 150,
        promptsPerGroup: 5,
        systemTokens: 6000,
        questionTokens: 1200,
        outputTokens: 1000,
        warmupQps: 15,
      }),
    ),
    agg: Q32_X8,
    policies: [],
    extraPolicies: [...AGG_BASELINES, 'precise-3-2-2', ...KV_AWARE_TUNING],
    // 25-35 added in round three: the knee lies there for every prefix-aware
    // policy, and interpolating between 20 and 40 read it as 22 vs 29.5.
    ladder: [20, 25, 30, 35, 40, 60],
    quickLadder: [20, 40, 60],
    windowS: 40,
    quickWindowS: 15,
    sloTtftS: 2,
  },
  {
    workload: 'low-reuse',
    describe:
      '150 groups x 5 prompts, 1200-token system prompt + 6000-token question, 1000 output tokens (GIE low-cache); 8 x Q32-H100x2',
    generator: sharedPrefix({
      groups: 150,
      promptsPerGroup: 5,
      systemTokens: 1200,
      questionTokens: 6000,
      outputTokens: 1000,
      warmupQps: 15,
    }),
    agg: Q32_X8,
    policies: AGG_BASELINES,
    extraPolicies: KV_AWARE_TUNING,
    ladder: [2, 4, 6, 8, 10, 14],
    quickLadder: [4, 8, 14],
    windowS: 40,
    quickWindowS: 15,
    sloTtftS: 2,
  },
  {
    workload: 'multi-turn',
    describe:
      '6 system prompts (1000 tokens) x 50 users, questions 30+-9 tokens, answers 1000+-300 tokens, up to 8 turns per conversation (GIE multi-chat, users scaled 1000 -> 50 per group); 8 x Q32-H100x2',
    generator: multiTurn({
      groups: 6,
      usersPerGroup: 50,
      systemTokens: 1000,
      questionMean: 30,
      questionSd: 9,
      outputMean: 1000,
      outputSd: 300,
      maxTurns: 8,
    }),
    agg: Q32_X8,
    policies: AGG_BASELINES,
    extraPolicies: KV_AWARE_TUNING,
    ladder: [2, 4, 8, 12, 16, 20],
    quickLadder: [4, 12, 20],
    windowS: 40,
    quickWindowS: 15,
    sloTtftS: 2,
  },
  {
    workload: 'no-reuse',
    describe:
      'unique prompts, lognormal lengths (input mean 220, output mean 200 tokens, sigma 0.8; ShareGPT-like); 4 x Q32-H100x2 (4 servers to keep the request count down)',
    generator: noReuse({ inputMean: 220, outputMean: 200, sigma: 0.8, maxTokens: 4000 }),
    agg: Q32_X4,
    policies: AGG_BASELINES,
    extraPolicies: KV_AWARE_TUNING,
    ladder: [30, 60, 90, 120, 150, 180],
    quickLadder: [60, 120, 180],
    windowS: 30,
    quickWindowS: 10,
    sloTtftS: 1,
  },
  {
    workload: 'long-short-mix',
    describe:
      '80% short (32-512 input tokens), 20% long (8k-32k), output 64-512, unique prompts; PD: 2 groups x (2 prefill + 2 decode) 8B-H100',
    generator: longShortMix({ shortShare: 0.8, shortIn: [32, 512], longIn: [8192, 32768], out: [64, 512] }),
    pd: PD_8B,
    policies: PD_POLICIES,
    extraPolicies: [
      'hermes-pd-bucket-r2',
      'hermes-pd-bucket-sep1024',
      'pd-bucket-mean',
      'pd-bucket-mean-sep1024',
      // Decode pod by step phase (branch pdstep, bench-only; sim/pd-step-scorer.ts).
      'pd-step',
      'pd-step-e',
      'pd-step-x',
      'pd-step-xe',
      'pd-bucket-x',
      'pd-step-e-lag0.5',
      'pd-step-e-lag2.5',
      'pd-step-learn',
    ],
    ladder: [4, 8, 12, 16, 20, 24],
    quickLadder: [8, 16, 24],
    windowS: 40,
    quickWindowS: 15,
    sloTtftS: 2,
  },
  {
    workload: 'hot-prefix',
    describe:
      '2 hot 10k-token system prompts shared by every request, 200-token questions, 300 output tokens (llm-d-router #355 shape); 4 x Q32-H100x2',
    generator: hotPrefix({ prefixes: 2, prefixTokens: 10_000, questionTokens: 200, outputTokens: 300 }),
    agg: Q32_X4,
    policies: AGG_BASELINES,
    extraPolicies: KV_AWARE_TUNING,
    ladder: [10, 20, 40, 60, 80, 100],
    quickLadder: [20, 60, 100],
    windowS: 30,
    quickWindowS: 10,
    sloTtftS: 1,
  },
];

/**
 * A replayed trace on 8 x Q32-H100x2 (the shared-prefix cluster), every
 * aggregated policy; `scales` are the time scales (the trace is the same
 * for every seed, the seed varies the router's random choices).
 */
export function traceScenario(
  name: string,
  records: readonly TraceRecord[],
  blockTokens: number,
  scales: number[],
): Scenario {
  return {
    workload: `trace:${name}`,
    trace: true,
    describe: `trace ${name} (${records.length} requests, Mooncake format, ${blockTokens}-token blocks), arrivals x time scale; 8 x Q32-H100x2`,
    generator: { generate: (_seed, timeScale) => traceRun(records, { timeScale, blockTokens }) },
    agg: Q32_X8,
    policies: [...AGG_BASELINES, 'precise-3-2-2'],
    extraPolicies: KV_AWARE_TUNING,
    ladder: scales,
    quickLadder: scales,
    windowS: 0,
    quickWindowS: 0,
    sloTtftS: 2,
  };
}
