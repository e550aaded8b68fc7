// The routing policies compared by the benchmark. Every policy is an
// EndpointPickerConfig run by the product's real config loader, scheduler
// and Director. Product strategies use the shipped example profiles
// unchanged; the baselines no product plugin expresses (round-robin,
// least in-flight, the oracle) are small plugins defined here and
// registered next to the built-ins for the benchmark only.
import { z } from 'zod';
import type { LoadedConfig } from '../../../src/config/endpoint-picker-config.js';
import { builtinRegistry, type PluginRegistry } from '../../../src/plugins/index.js';
import { definePlugin } from '../../../src/plugins/plugin.js';
import type { Candidate, LLMRequest } from '../../../src/scheduling/types.js';
import { DEFAULT_KV_COST, type KvCostModel } from '../../../src/plugins/kv-cost.js';
import {
  aggregateKvCacheAwareScorer,
  scorerAggregateKvCacheAware,
} from '../../../src/plugins/scorer-aggregate-kv-cache-aware.js';
import { loadExampleProfile, loadProfileText } from './configs.js';
import type { OracleKind } from './oracle.js';
import { informedInputs, type ExactState } from './oracle-informed.js';
import { scorerAggregateKvCacheAwareV0 } from './v0/scorer-aggregate-kv-cache-aware-v0.js';
import { scorerPdBucketR2 } from './v0/scorer-pd-bucket-r2.js';
import { scorerPdBucketV0 } from './v0/scorer-pd-bucket-v0.js';
import { scorerPdKvCacheAwareV0 } from './v0/scorer-pd-kv-cache-aware-v0.js';
import { B8_H100 } from './params.js';
import { pdStepScorer } from './pd-step-scorer.js';
import type { StepClock } from './step-clock.js';
import { explores, type LandingFit } from './landing-fit.js';

export type PolicyId =
  | 'random'
  | 'round-robin'
  | 'least-queue'
  | 'least-inflight'
  | 'gie-default'
  | 'hermes-kv-aware'
  | 'hermes-pd-kv-aware'
  | 'hermes-pd-bucket'
  | 'random-pd-bucket'
  | 'oracle'
  | 'oracle-r2'
  | 'oracle-r4'
  | 'oracle-informed'
  | 'oracle-informed-hits'
  | 'oracle-informed-load'
  // Calibration and sensitivity variants.
  | 'precise-3-2-2'
  | 'hermes-pd-bucket-sep1024'
  // Tuning variants (docs/benchmarks.md "Tuning"): the product default
  // weights with one optional signal/normalisation parameter changed.
  | 'kv-aware-inflight'
  | 'kv-aware-floor4'
  | 'kv-aware-floor8'
  | 'kv-aware-inflight-floor4'
  | 'kv-aware-inflight-floor8'
  // Routing history (the approximate index fills in what the indexer does not know yet).
  | 'kv-aware-history'
  | 'kv-aware-inflight-floor4-history'
  | 'pd-bucket-mean'
  | 'pd-bucket-mean-sep1024'
  // The formulas before issue 12 (bench-only copies under test/bench/sim/v0/).
  | 'hermes-kv-aware-v0'
  | 'hermes-pd-bucket-v0'
  // scorer-pd-bucket after round two of issue 12 (before round three).
  | 'hermes-pd-bucket-r2'
  // scorer-pd-bucket choosing short requests' decode pods by step phase, landing time from the sim's constants.
  | 'pd-step'
  | 'pd-step-e'
  | 'pd-step-x'
  | 'pd-step-xe'
  | 'pd-bucket-x'
  | 'pd-step-e-lag0.5'
  | 'pd-step-e-lag2.5'
  | 'pd-step-learn'
  | 'hermes-pd-kv-aware-v0'
  | 'kv-history'
  | 'kv-w-1-1-0.25'
  | 'kv-no-history'
  | 'kv-history-256'
  | 'kv-history-64-0.25'
  | 'kv-history-64'
  | 'kv-history-64-4k'
  // A profile written before routing history: prefix-cache-scorer beside the KV-aware scorer, defaults.
  | 'kv-with-prefix-scorer'
  // The product profile with picker-min-random's pre-merge default of 3 targets (fallbacks).
  | 'kv-pick3'
  // Cost-model alternatives (issue 12): the product scorer's code with one knob changed.
  | CostVariantId;

/**
 * Round two's default cost model (no affinity bound). Every variant below
 * is defined against it, so each keeps the meaning it was measured with
 * (docs/benchmarks.md) when the product default moves.
 */
const R2_KV_COST: KvCostModel = {
  ...DEFAULT_KV_COST,
  relativeBound: 0,
  boundSlack: 0,
  boundGate: 'none',
  copyPrice: 0,
  copyUsagePower: 0,
  copyPriceThroughBound: false,
  copyPriceOwnRawHit: false,
  boundQueueAtRawHit: false,
  boundRoomUsage: 0,
  boundSpareFullUsage: 0,
  newPrefixQueue: 'waiting',
};

/** Round three's default (the affinity bound, no copy price); the round-four variants are defined against it. */
const R3_KV_COST: KvCostModel = {
  ...DEFAULT_KV_COST,
  copyPrice: 0,
  copyUsagePower: 0,
  copyPriceThroughBound: false,
  copyPriceOwnRawHit: false,
  boundQueueAtRawHit: false,
  boundRoomUsage: 0,
  boundSpareFullUsage: 0,
  newPrefixQueue: 'waiting',
};

/** Round four's default (affinity bound + copy price); the round-five variants are defined against it. */
const R4_KV_COST: KvCostModel = {
  ...R3_KV_COST,
  copyPrice: 30,
  copyUsagePower: 3,
  boundRoomUsage: 0,
  boundSpareFullUsage: 0,
};

/** Alternatives to the product's KV cost model, measured in docs/benchmarks.md. */
export const COST_VARIANTS = {
  // Round two's default (no affinity bound), kept to show round three's change.
  'kv-cost-r2': R2_KV_COST,
  'kv-cost-u1': { ...R2_KV_COST, usagePower: 1 },
  // The round-one default (usage squared), kept to show the change.
  'kv-cost-u2': { ...R2_KV_COST, usagePower: 2 },
  'kv-cost-u4': { ...R2_KV_COST, usagePower: 4 },
  'kv-cost-u0': { ...R2_KV_COST, usagePower: 0 },
  'kv-cost-fullq': { ...R2_KV_COST, queueAtFullLength: true },
  'kv-cost-qwait': { ...R2_KV_COST, queueFrom: 'waiting' },
  'kv-cost-um': { ...R2_KV_COST, usageOnMiss: true },
  'kv-cost-g32': { ...R2_KV_COST, imbalanceGuard: 32 },
  'kv-cost-g16': { ...R2_KV_COST, imbalanceGuard: 16 },
  'kv-cost-g64': { ...R2_KV_COST, imbalanceGuard: 64 },
  'kv-cost-um-u1': { ...R2_KV_COST, usageOnMiss: true, usagePower: 1 },
  'kv-cost-um-dup1': { ...R2_KV_COST, usageOnMiss: true, duplication: 1 },
  'kv-cost-um-pending': { ...R2_KV_COST, usageOnMiss: true, queueFrom: 'pending' },
  'kv-cost-qpending': { ...R2_KV_COST, queueFrom: 'pending' },
  'kv-cost-qwait-dup1': { ...R2_KV_COST, queueFrom: 'waiting', duplication: 1 },
  'kv-cost-qpending-dup1': { ...R2_KV_COST, queueFrom: 'pending', duplication: 1 },
  'kv-cost-qpending-dup3': { ...R2_KV_COST, queueFrom: 'pending', duplication: 3 },
  'kv-cost-qmax-dup3': { ...R2_KV_COST, queueFrom: 'max', duplication: 3 },
  'kv-cost-dup1': { ...R2_KV_COST, duplication: 1 },
  'kv-cost-dup3': { ...R2_KV_COST, duplication: 3 },
  'kv-cost-qmax': { ...R2_KV_COST, queueFrom: 'max' },
  'kv-cost-u1-qmax': { ...R2_KV_COST, usagePower: 1, queueFrom: 'max' },
  'kv-cost-u1-dup1': { ...R2_KV_COST, usagePower: 1, duplication: 1 },
  'kv-cost-u1-dup05': { ...R2_KV_COST, usagePower: 1, duplication: 0.5 },
  'kv-cost-u1-dup025': { ...R2_KV_COST, usagePower: 1, duplication: 0.25 },
  'kv-cost-u1-qmax-dup3': { ...R2_KV_COST, usagePower: 1, queueFrom: 'max', duplication: 3 },
  // Round three: relative bounded-load affinity (SGLang-style, relative to the mean in-flight count).
  'kv-rb25': { ...R2_KV_COST, relativeBound: 0.25, boundSlack: 8 },
  'kv-rb50': { ...R2_KV_COST, relativeBound: 0.5, boundSlack: 8 },
  'kv-rb50s32': { ...R2_KV_COST, relativeBound: 0.5, boundSlack: 32 },
  'kv-rb100': { ...R2_KV_COST, relativeBound: 1, boundSlack: 8 },
  'kv-rb15': { ...R2_KV_COST, relativeBound: 0.15, boundSlack: 8 },
  'kv-rb15-dup05': { ...R2_KV_COST, relativeBound: 0.15, boundSlack: 8, duplication: 0.5 },
  'kv-rb25-dup05': { ...R2_KV_COST, relativeBound: 0.25, boundSlack: 8, duplication: 0.5 },
  'kv-rb50-dup05': { ...R2_KV_COST, relativeBound: 0.5, boundSlack: 8, duplication: 0.5 },
  'kv-rb15-dup1': { ...R2_KV_COST, relativeBound: 0.15, boundSlack: 8, duplication: 1 },
  'kv-rb25-dup1': { ...R2_KV_COST, relativeBound: 0.25, boundSlack: 8, duplication: 1 },
  'kv-rb50-dup1': { ...R2_KV_COST, relativeBound: 0.5, boundSlack: 8, duplication: 1 },
  'kv-rb15s8-none': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'none',
    duplication: 0.5,
  },
  'kv-rb15s8-waiting': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'waiting',
    duplication: 0.5,
  },
  'kv-rb15s8-usage': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'usage',
    duplication: 0.5,
  },
  'kv-rb10s8-none': { ...R2_KV_COST, relativeBound: 0.1, boundSlack: 8, boundGate: 'none', duplication: 0.5 },
  'kv-rb10s8-waiting': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 8,
    boundGate: 'waiting',
    duplication: 0.5,
  },
  'kv-rb10s8-usage': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 8,
    boundGate: 'usage',
    duplication: 0.5,
  },
  'kv-rb10s4-none': { ...R2_KV_COST, relativeBound: 0.1, boundSlack: 4, boundGate: 'none', duplication: 0.5 },
  'kv-rb10s4-waiting': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 4,
    boundGate: 'waiting',
    duplication: 0.5,
  },
  'kv-rb10s4-usage': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 4,
    boundGate: 'usage',
    duplication: 0.5,
  },
  'kv-rb5s4-none': { ...R2_KV_COST, relativeBound: 0.05, boundSlack: 4, boundGate: 'none', duplication: 0.5 },
  'kv-rb5s4-waiting': {
    ...R2_KV_COST,
    relativeBound: 0.05,
    boundSlack: 4,
    boundGate: 'waiting',
    duplication: 0.5,
  },
  'kv-rb5s4-usage': {
    ...R2_KV_COST,
    relativeBound: 0.05,
    boundSlack: 4,
    boundGate: 'usage',
    duplication: 0.5,
  },
  'kv-rb15s8-scraped': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 0.5,
  },
  'kv-rb15s8-scraped4': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped4',
    duplication: 0.5,
  },
  'kv-rb10s8-scraped': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 0.5,
  },
  'kv-rb10s8-scraped4': {
    ...R2_KV_COST,
    relativeBound: 0.1,
    boundSlack: 8,
    boundGate: 'scraped4',
    duplication: 0.5,
  },
  'kv-rb25s8-scraped': {
    ...R2_KV_COST,
    relativeBound: 0.25,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 0.5,
  },
  'kv-rb25s8-scraped4': {
    ...R2_KV_COST,
    relativeBound: 0.25,
    boundSlack: 8,
    boundGate: 'scraped4',
    duplication: 0.5,
  },
  // = DEFAULT_KV_COST since round three (the name it was measured under).
  'kv-rb15s8-scraped-dup0': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 0,
  },
  'kv-rb15s8-scraped-dup1': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 1,
  },
  'kv-rb15s8-scraped-dup025': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    duplication: 0.25,
  },
  'kv-rb-qmax-ch': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    queueFrom: 'max',
    chargeExpectedHit: true,
  },
  'kv-rb-qmax': { ...R2_KV_COST, relativeBound: 0.15, boundSlack: 8, boundGate: 'scraped', queueFrom: 'max' },
  'kv-rb-qpend-ch': {
    ...R2_KV_COST,
    relativeBound: 0.15,
    boundSlack: 8,
    boundGate: 'scraped',
    queueFrom: 'pending',
    chargeExpectedHit: true,
  },
  // Round three's default (affinity bound, no copy price), kept to show round four's change.
  'kv-cost-r3': R3_KV_COST,
  // Round four (shared-prefix-cold): round three's model with copies priced higher.
  'kv-r4-um': { ...R3_KV_COST, usageOnMiss: true },
  'kv-r4-um-dup05': { ...R3_KV_COST, usageOnMiss: true, duplication: 0.5 },
  'kv-r4-um-dup1': { ...R3_KV_COST, usageOnMiss: true, duplication: 1 },
  'kv-r4-dup3': { ...R3_KV_COST, duplication: 3 },
  'kv-r4-dup10': { ...R3_KV_COST, duplication: 10 },
  'kv-r4-cp10u4': { ...R3_KV_COST, copyPrice: 10, copyUsagePower: 4 },
  'kv-r4-cp10u8': { ...R3_KV_COST, copyPrice: 10, copyUsagePower: 8 },
  'kv-r4-cp3u2': { ...R3_KV_COST, copyPrice: 3, copyUsagePower: 2 },
  'kv-r4-cp3u1': { ...R3_KV_COST, copyPrice: 3, copyUsagePower: 1 },
  'kv-r4-cp6u1': { ...R3_KV_COST, copyPrice: 6, copyUsagePower: 1 },
  'kv-r4-cp10u1': { ...R3_KV_COST, copyPrice: 10, copyUsagePower: 1 },
  'kv-r4-cp10u2': { ...R3_KV_COST, copyPrice: 10, copyUsagePower: 2 },
  'kv-r4-cp20u2': { ...R3_KV_COST, copyPrice: 20, copyUsagePower: 2 },
  'kv-r4-cp30u3': { ...R3_KV_COST, copyPrice: 30, copyUsagePower: 3 },
  'kv-r4-cp30u3-qmax-ch': {
    ...R3_KV_COST,
    copyPrice: 30,
    copyUsagePower: 3,
    queueFrom: 'max',
    chargeExpectedHit: true,
  },
  'kv-r4-cp30u3-qmax': { ...R3_KV_COST, copyPrice: 30, copyUsagePower: 3, queueFrom: 'max' },
  'kv-r4-cp30u3b': { ...R3_KV_COST, copyPrice: 30, copyUsagePower: 3, copyPriceThroughBound: true },
  // Round four's default (affinity bound + copy price), kept to show round five's change.
  'kv-cost-r4': R4_KV_COST,
  // Round five (top load): the bound fires only while some candidate has room.
  'kv-r5-room9': { ...R4_KV_COST, boundRoomUsage: 0.9 },
  'kv-r5-room95': { ...R4_KV_COST, boundRoomUsage: 0.95 },
  'kv-r5-room8': { ...R4_KV_COST, boundRoomUsage: 0.8 },
  'kv-r5-room7': { ...R4_KV_COST, boundRoomUsage: 0.7 },
  'kv-r5-room6': { ...R4_KV_COST, boundRoomUsage: 0.6 },
  'kv-r5-nobound': { ...R4_KV_COST, relativeBound: 0 },
  'kv-r5-nobound-cp1000': { ...R4_KV_COST, relativeBound: 0, copyPrice: 1000 },
  'kv-r5-sp8': { ...R4_KV_COST, boundSpareFullUsage: 0.8 },
  'kv-r5-sp8-cp1000': { ...R4_KV_COST, boundSpareFullUsage: 0.8, copyPrice: 1000 },
  'kv-r5-sp8-cp100u4': { ...R4_KV_COST, boundSpareFullUsage: 0.8, copyPrice: 100, copyUsagePower: 4 },
  'kv-r5-sp7': { ...R4_KV_COST, boundSpareFullUsage: 0.7 },
  'kv-r5-sp9': { ...R4_KV_COST, boundSpareFullUsage: 0.9 },
  'kv-r5-room8-sp8': { ...R4_KV_COST, boundRoomUsage: 0.8, boundSpareFullUsage: 0.8 },
  'kv-r5-sp8to1': { ...R4_KV_COST, boundSpareFullUsage: 0.8, boundSpareUpTo: 1 },
  'kv-r5-sp8to98-room9': {
    ...R4_KV_COST,
    boundSpareFullUsage: 0.8,
    boundSpareUpTo: 0.98,
    boundRoomUsage: 0.9,
  },
  // Round six (branch cold5): how a new prefix (no candidate holds any of it) is placed.
  'kv-r6-npinf': { ...R4_KV_COST, newPrefixQueue: 'inflight' },
  'kv-r6-nppend': { ...R4_KV_COST, newPrefixQueue: 'pending' },
  'kv-r6-npmax': { ...R4_KV_COST, newPrefixQueue: 'max' },
  'kv-r6-npscr': { ...R4_KV_COST, newPrefixQueue: 'scraped' },
  'kv-r6-cpb': { ...R4_KV_COST, copyPriceThroughBound: true, copyPriceOwnRawHit: true },
  'kv-r6-cpbq': {
    ...R4_KV_COST,
    copyPriceThroughBound: true,
    copyPriceOwnRawHit: true,
    boundQueueAtRawHit: true,
  },
  'kv-r6-bq': { ...R4_KV_COST, boundQueueAtRawHit: true },
} satisfies Record<string, KvCostModel>;
export type CostVariantId = keyof typeof COST_VARIANTS | `${keyof typeof COST_VARIANTS}-h`;

/** routingHistory parameters of the "-h" cost variants: 64-token blocks, the first 4,096 tokens. */
const HISTORY_64 =
  'routingHistory: true, blockSizeTokens: 64, maxPrefixBlocksToMatch: 64, lruCapacityPerServer: 8000';

export interface PolicyDef {
  id: PolicyId;
  mode: 'agg' | 'pd';
  /** Example profile file (without .yaml) or a config defined here. */
  example?: string;
  configText?: string;
  describe: string;
  /** The oracle's cost model (bench-oracle-scorer only; default r5). */
  oracle?: OracleKind;
}

const HEADER = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';

export const POLICIES: readonly PolicyDef[] = [
  {
    id: 'random',
    mode: 'agg',
    example: 'epp-random',
    describe: 'picker-min-random alone (examples/profiles/epp-random.yaml)',
  },
  {
    id: 'round-robin',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-round-robin-picker\n`,
    describe: 'bench-round-robin-picker (k8s Service stand-in)',
  },
  {
    id: 'least-queue',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: queue-scorer\n- type: picker-min-random\n`,
    describe: 'queue-scorer + picker-min-random: least waiting queue (scraped, 50 ms)',
  },
  {
    id: 'least-inflight',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-least-inflight-scorer\n- type: picker-min-random\n`,
    describe: 'bench-least-inflight-scorer + picker-min-random: fewest router-tracked in-flight requests',
  },
  {
    id: 'gie-default',
    mode: 'agg',
    example: 'epp-gie-default',
    describe:
      'queue 2, kv-cache-utilization 2, prefix-cache 3, max-score (examples/profiles/epp-gie-default.yaml)',
  },
  {
    id: 'hermes-kv-aware',
    mode: 'agg',
    example: 'epp-kv-cache-aware',
    describe:
      'scorer-aggregate-kv-cache-aware + picker-min-random (examples/profiles/epp-kv-cache-aware.yaml)',
  },
  {
    id: 'hermes-pd-kv-aware',
    mode: 'pd',
    example: 'epp-pd-kv-cache-aware',
    describe: 'examples/profiles/epp-pd-kv-cache-aware.yaml',
  },
  {
    id: 'hermes-pd-bucket',
    mode: 'pd',
    example: 'epp-pd-bucket',
    describe: 'examples/profiles/epp-pd-bucket.yaml',
  },
  {
    id: 'random-pd-bucket',
    mode: 'pd',
    example: 'epp-random-pd-bucket',
    describe: 'examples/profiles/epp-random-pd-bucket.yaml',
  },
  {
    id: 'oracle',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-oracle-scorer\n- type: picker-min-random\n`,
    describe:
      "bench-oracle-scorer (sim/oracle.ts): exact engine state (zero delay), the request's exact TTFT (engine step replay) + an amortised prefix-copy price gated by need and bounded load",
  },
  {
    id: 'oracle-r4',
    mode: 'agg',
    oracle: 'amortised',
    configText: `${HEADER}plugins:\n- type: bench-oracle-scorer\n- type: picker-min-random\n`,
    describe:
      'the round-four oracle: exact engine state, cost in tokens (queue proxy) with an amortised prefix-copy price',
  },
  {
    id: 'oracle-r2',
    mode: 'agg',
    oracle: 'r2',
    configText: `${HEADER}plugins:\n- type: bench-oracle-scorer\n- type: picker-min-random\n`,
    describe:
      'the round-two oracle: predicted TTFT + 4 x the uncached prefill time (fixed duplication price)',
  },
  {
    id: 'oracle-informed',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-oracle-informed-scorer\n- type: picker-min-random\n`,
    describe:
      'scorer-aggregate-kv-cache-aware (product cost model, default weights) fed exact engine state: cached prefix per server, waiting/running/KV usage now (sim/oracle-informed.ts)',
  },
  {
    id: 'oracle-informed-hits',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-oracle-informed-scorer\n  parameters: {informed: hits}\n- type: picker-min-random\n`,
    describe: 'oracle-informed with only the hits exact (scraped waiting/running/usage as hermes-kv-aware)',
  },
  {
    id: 'oracle-informed-load',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-oracle-informed-scorer\n  parameters: {informed: load}\n- type: picker-min-random\n`,
    describe:
      'oracle-informed with only waiting/running/usage exact (indexer hits + routing history as hermes-kv-aware)',
  },
  {
    // The calibration's "exact prefix" class: llm-d's precise profile weights
    // (prefix 3, kv 2, queue 2) expressed with the product's own scorer.
    id: 'precise-3-2-2',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {kvCacheHitNotRateWeight: 3.0, xpuCacheUsageWeight: 2.0, waitingRequestWeight: 2.0}\n- type: picker-min-random\n`,
    describe:
      'scorer-aggregate-kv-cache-aware weighted 3 (miss) / 2 (usage) / 2 (waiting): llm-d precise weights',
  },
  {
    id: 'hermes-pd-bucket-sep1024',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: scorer-pd-bucket\n  parameters: {bucketSeperateLength: 1024}\n- type: pd-header-handler\n`,
    describe: 'epp-pd-bucket with bucketSeperateLength 1024 instead of 200 (sensitivity)',
  },
  {
    id: 'kv-aware-inflight',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingFromInFlight: true}\n- type: picker-min-random\n`,
    describe:
      'scorer-aggregate-kv-cache-aware, default weights, waiting estimated as max(scraped waiting, inFlight - running)',
  },
  {
    id: 'kv-aware-floor4',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingNormFloor: 4}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware, default weights, waiting normalised by max(4, max waiting)',
  },
  {
    id: 'kv-aware-floor8',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingNormFloor: 8}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware, default weights, waiting normalised by max(8, max waiting)',
  },
  {
    id: 'kv-aware-inflight-floor4',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingFromInFlight: true, waitingNormFloor: 4}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware, default weights, in-flight waiting estimate + norm floor 4',
  },
  {
    id: 'kv-aware-inflight-floor8',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingFromInFlight: true, waitingNormFloor: 8}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware, default weights, in-flight waiting estimate + norm floor 8',
  },
  {
    id: 'kv-aware-history',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {routingHistory: true}\n- type: picker-min-random\n`,
    describe:
      'scorer-aggregate-kv-cache-aware, default weights, hit = max(indexer, routing-time approximate prefix index)',
  },
  {
    id: 'kv-aware-inflight-floor4-history',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n  parameters: {waitingFromInFlight: true, waitingNormFloor: 4, routingHistory: true}\n- type: picker-min-random\n`,
    describe: 'kv-aware-inflight-floor4 + routingHistory (hit = max(indexer, approximate prefix index))',
  },
  {
    id: 'pd-bucket-mean',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-bucket-v0\n  parameters: {loadNormalization: mean}\n- type: pd-header-handler\n`,
    describe: 'epp-pd-bucket with the load term normalised by the mean load instead of the max',
  },
  {
    id: 'pd-bucket-mean-sep1024',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-bucket-v0\n  parameters: {loadNormalization: mean, bucketSeperateLength: 1024}\n- type: pd-header-handler\n`,
    describe: 'epp-pd-bucket, mean load normalisation and bucketSeperateLength 1024',
  },
  {
    id: 'hermes-kv-aware-v0',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: bench-scorer-aggregate-kv-cache-aware-v0\n- type: picker-min-random\n`,
    describe:
      'the PLUGINS.md formula before issue 12 (miss + usage + waiting / max(1, max waiting)), product default weights',
  },
  {
    id: 'hermes-pd-kv-aware-v0',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-kv-cache-aware-v0\n- type: picker-pd-kv-cache-aware\n- type: pd-header-handler\n`,
    describe: 'the PLUGINS.md pd-kv-cache-aware formula before issue 12, product defaults',
  },
  {
    id: 'hermes-pd-bucket-v0',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-bucket-v0\n- type: pd-header-handler\n`,
    describe:
      'the PLUGINS.md pd-bucket formula before issue 12 (load / max load + bucket share), product defaults',
  },
  {
    id: 'pd-step',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step\n- type: pd-header-handler\n`,
    describe:
      "epp-pd-bucket, decode pod by step phase (sim/pd-step-scorer.ts): the one whose clock's next boundary follows the predicted KV landing soonest",
  },
  {
    id: 'pd-step-e',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-e\n- type: pd-header-handler\n`,
    describe: 'pd-step, the landing error (+-0.5 ms, the chunk jitter) priced as an expected missed step',
  },
  {
    id: 'pd-step-x',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-x\n- type: pd-header-handler\n`,
    describe:
      'pd-step, and a short prompt may use a prefill pod of the long share with nothing pending at no separation price',
  },
  {
    id: 'pd-step-xe',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-xe\n- type: pd-header-handler\n`,
    describe: 'pd-step-x with the landing error priced as in pd-step-e',
  },
  {
    id: 'pd-step-e-lag0.5',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-e-lag0.5\n- type: pd-header-handler\n`,
    describe:
      'pd-step-e with the chunk lag taken as 0.5 ms (1 ms short of the simulated mean): landing-model bias',
  },
  {
    id: 'pd-step-e-lag2.5',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-e-lag2.5\n- type: pd-header-handler\n`,
    describe:
      'pd-step-e with the chunk lag taken as 2.5 ms (1 ms over the simulated mean): landing-model bias',
  },
  {
    id: 'pd-step-learn',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-step-learn\n- type: pd-header-handler\n`,
    describe:
      "pd-step-e with the landing learned from the router's own observations (sim/landing-fit.ts): no server constants, no lag known",
  },
  {
    id: 'pd-bucket-x',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-bucket-x\n- type: pd-header-handler\n`,
    describe:
      "epp-pd-bucket's decode rule (no step clocks), and a short prompt may use a prefill pod of the long share with nothing pending at no separation price",
  },
  {
    id: 'hermes-pd-bucket-r2',
    mode: 'pd',
    configText: `${HEADER}plugins:\n- type: filter-by-pd-label\n- type: bench-scorer-pd-bucket-r2\n- type: pd-header-handler\n`,
    describe:
      'scorer-pd-bucket after round two of issue 12 (pending / mean pending + flat beta outside the share), product defaults',
  },
  {
    id: 'kv-no-history',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {routingHistory: false}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware, product weights, routing history off (indexer hits only)',
  },
  {
    id: 'kv-history-256',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {blockSizeTokens: 256, maxPrefixBlocksToMatch: 64, lruCapacityPerServer: 2000}\n- type: picker-min-random\n`,
    describe:
      'scorer-aggregate-kv-cache-aware, routing history on 256-token blocks (16k tokens, 512k per endpoint)',
  },
  {
    id: 'kv-w-1-1-0.25',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {waitingRequestWeight: 0.25}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware weighted 1 / 1 / 0.25 (probe: less weight on waiting)',
  },
  {
    id: 'kv-history-64-0.25',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {waitingRequestWeight: 0.25, routingHistory: true, blockSizeTokens: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 8000}\n- type: picker-min-random\n`,
    describe: 'probe: waiting weight 0.25 + routingHistory on 64-token blocks, 16k tokens',
  },
  {
    id: 'kv-history',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {routingHistory: true}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware with routingHistory (16-token blocks, 256 blocks matched)',
  },
  {
    id: 'kv-history-64',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {routingHistory: true, blockSizeTokens: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 8000}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware with routingHistory on 64-token blocks',
  },
  {
    id: 'kv-history-64-4k',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n  parameters: {routingHistory: true, blockSizeTokens: 64, maxPrefixBlocksToMatch: 64, lruCapacityPerServer: 8000}\n- type: picker-min-random\n`,
    describe: 'scorer-aggregate-kv-cache-aware with routingHistory on 64-token blocks, first 4,096 tokens',
  },
  {
    id: 'kv-pick3',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: scorer-aggregate-kv-cache-aware\n- type: picker-min-random\n  parameters: {maxNumOfEndpoints: 3}\n`,
    describe:
      'scorer-aggregate-kv-cache-aware + picker-min-random with 3 targets (the default before main moved it to 1)',
  },
  {
    id: 'kv-with-prefix-scorer',
    mode: 'agg',
    configText: `${HEADER}plugins:\n- type: prefix-cache-scorer\n- type: scorer-aggregate-kv-cache-aware\n- type: picker-min-random\n`,
    describe:
      'prefix-cache-scorer + scorer-aggregate-kv-cache-aware, defaults (history adopts GIE hashing: 16-token blocks, 4k tokens)',
  },
  ...Object.entries(COST_VARIANTS).flatMap(([id, m]): PolicyDef[] => [
    {
      id: id as CostVariantId,
      mode: 'agg',
      configText: `${HEADER}plugins:\n- type: bench-${id}\n- type: picker-min-random\n`,
      describe: `scorer-aggregate-kv-cache-aware's code, product weights, cost model ${JSON.stringify(m)}`,
    },
    {
      id: `${id}-h` as CostVariantId,
      mode: 'agg',
      configText: `${HEADER}plugins:\n- type: bench-${id}\n  parameters: {${HISTORY_64}}\n- type: picker-min-random\n`,
      describe: `bench-${id} with ${HISTORY_64}`,
    },
  ]),
];

/** The aggregated tuning variants, runnable on every aggregated workload with --policy. */
export const KV_AWARE_TUNING: PolicyId[] = [
  'oracle-r2',
  'oracle-r4',
  'oracle-informed',
  'oracle-informed-hits',
  'oracle-informed-load',
  'kv-no-history',
  'kv-history-256',
  'kv-history-64-0.25',
  'kv-w-1-1-0.25',
  'kv-history',
  'kv-history-64',
  'kv-history-64-4k',
  'kv-with-prefix-scorer',
  'kv-pick3',
  ...(Object.keys(COST_VARIANTS).flatMap((k) => [k, `${k}-h`]) as CostVariantId[]),
  'kv-aware-inflight',
  'kv-aware-floor4',
  'kv-aware-floor8',
  'kv-aware-inflight-floor4',
  'kv-aware-inflight-floor8',
  'kv-aware-history',
  'kv-aware-inflight-floor4-history',
];

export function policy(id: PolicyId): PolicyDef {
  const p = POLICIES.find((x) => x.id === id);
  if (!p) throw new Error(`unknown policy "${id}"`);
  return p;
}

/** What the oracle may see of the simulated cluster: the exact engine state. */
export interface OracleView {
  /** The oracle's cost (seconds, lower is better) of sending `req` to each endpoint; Infinity when unknown. */
  costs(endpointIds: readonly string[], req: LLMRequest): Float64Array;
  /** Each endpoint's exact state now (undefined for one the simulator does not serve). */
  exact(endpointIds: readonly string[], req: LLMRequest): (ExactState | undefined)[];
  /** Not the oracle: the decode step clocks a router sees in streamed chunks (sim/step-clock.ts). */
  stepClocks?(nowMs: number): ReadonlyMap<string, StepClock>;
  /** Not the oracle: the router's landing fit from its own observations (sim/landing-fit.ts). */
  landingFit?(): LandingFit;
}

/** Min-max normalised "lower is better" values to scores (all equal -> 1). */
function lowerIsBetter(values: Float64Array): Float64Array {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = max === min ? 1 : (max - values[i]!) / (max - min);
  return out;
}

function endpointIdOf(c: Candidate): string {
  return c.kind === 'endpoint' ? c.id : c.group.leader.endpoint.id;
}

/** The registry the benchmark uses: the built-ins plus the baseline plugins. */
export function benchRegistry(oracle: OracleView | undefined): PluginRegistry {
  const roundRobin = definePlugin({
    type: 'bench-round-robin-picker',
    parameters: z.strictObject({}),
    create: (name) => {
      let next = 0;
      return {
        type: 'bench-round-robin-picker',
        name,
        pick: (_ctx, scored) =>
          scored.length === 0 ? { targets: [] } : { targets: [scored[next++ % scored.length]!] },
      };
    },
  });
  const leastInflight = definePlugin({
    type: 'bench-least-inflight-scorer',
    parameters: z.strictObject({}),
    create: (name) => ({
      type: 'bench-least-inflight-scorer',
      name,
      score: (_ctx, candidates) => ({
        scores: lowerIsBetter(
          Float64Array.from(candidates, (c) =>
            c.kind === 'endpoint' ? c.endpoint.inFlight : c.group.leader.inFlight,
          ),
        ),
      }),
    }),
  });
  const oracleScorer = definePlugin({
    type: 'bench-oracle-scorer',
    parameters: z.strictObject({}),
    create: (name) => ({
      type: 'bench-oracle-scorer',
      name,
      score: (ctx, candidates) => {
        if (!oracle) throw new Error('bench-oracle-scorer needs the simulator');
        const costs = oracle.costs(candidates.map(endpointIdOf), ctx.request);
        return { scores: lowerIsBetter(costs) };
      },
    }),
  });
  // The product scorer's parameters (documented defaults) plus which signals
  // become exact (sim/oracle-informed.ts): 'all' and 'hits' turn routing
  // history and the indexer call off (the exact index replaces both); 'load'
  // keeps the router's hits, so its indexer call and history too.
  const informedScorer = definePlugin({
    type: 'bench-oracle-informed-scorer',
    parameters: scorerAggregateKvCacheAware.parameters.extend({
      informed: z.enum(['all', 'hits', 'load']).default('all'),
    }),
    create: (name, { informed, ...p }) => {
      const routerHits = informed === 'load';
      const inner = scorerAggregateKvCacheAware.create(
        name,
        routerHits ? p : { ...p, routingHistory: false },
      );
      return {
        type: 'bench-oracle-informed-scorer',
        name,
        ...(routerHits ? { dataNeeds: inner.dataNeeds, charges: inner.charges } : {}),
        score: (ctx, candidates) => {
          if (!oracle) throw new Error('bench-oracle-informed-scorer needs the simulator');
          const exact = informedInputs(
            ctx,
            candidates,
            oracle.exact(candidates.map(endpointIdOf), ctx.request),
            informed,
          );
          return inner.score!(exact.ctx, exact.candidates);
        },
      };
    },
  });
  // Step-phase variants: the 8B-H100 constants (long-short-mix's servers), the sim's mean chunk lag.
  const pdStep = (type: string, errMs: number, crossIdle: boolean, lagMs = 1.5, learned = false) =>
    pdStepScorer({
      type,
      server: B8_H100,
      clocks: (now) => oracle?.stepClocks?.(now) ?? new Map(),
      lagMs,
      errMs,
      crossIdle,
      learned: learned ? () => oracle?.landingFit?.() : undefined,
      explore: learned ? explores : undefined,
    });
  let reg = builtinRegistry();
  for (const [id, m] of Object.entries(COST_VARIANTS))
    reg = reg.register(aggregateKvCacheAwareScorer(`bench-${id}`, m));
  return reg
    .register(roundRobin)
    .register(leastInflight)
    .register(oracleScorer)
    .register(informedScorer)
    .register(scorerAggregateKvCacheAwareV0)
    .register(scorerPdBucketV0)
    .register(scorerPdBucketR2)
    .register(pdStep('bench-scorer-pd-step', 0, false))
    .register(pdStep('bench-scorer-pd-step-e', 0.5, false))
    .register(pdStep('bench-scorer-pd-step-x', 0, true))
    .register(pdStep('bench-scorer-pd-step-xe', 0.5, true))
    .register(pdStep('bench-scorer-pd-step-e-lag0.5', 0.5, false, 0.5))
    .register(pdStep('bench-scorer-pd-step-e-lag2.5', 0.5, false, 2.5))
    .register(pdStep('bench-scorer-pd-step-learn', 1, false, 0, true))
    .register(
      pdStepScorer({
        type: 'bench-scorer-pd-bucket-x',
        server: B8_H100,
        clocks: () => new Map(),
        lagMs: 0,
        errMs: 0,
        crossIdle: true,
      }),
    )
    .register(scorerPdKvCacheAwareV0);
}

export function loadPolicy(def: PolicyDef, registry: PluginRegistry): LoadedConfig {
  const out = def.example
    ? loadExampleProfile(def.example, registry)
    : loadProfileText(def.configText!, `policy ${def.id}`, registry);
  if (!out.ok) throw new Error(`policy ${def.id}: ${out.error}`);
  return out.loaded;
}
