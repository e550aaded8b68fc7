// Parameter profiles of the simulated model servers, with where each number
// comes from (shared/design/reference/performance.md §3.2 and §5.2; the
// primary sources are named there). "derived" = arithmetic on cited inputs.
/**
 * KV block size of the simulated servers, tokens. vLLM's default is 16; the
 * simulator uses 64 (llm-d's precise-routing guide and the Dynamo mocker
 * use 64) so a 7,200-token prompt is 113 blocks, not 450: four times fewer
 * block operations, at the cost of up to 63 uncacheable tokens per prompt.
 */
export const SIM_BLOCK_TOKENS = 64;

export interface ServerParams {
  name: string;
  /** KV block size in tokens (SIM_BLOCK_TOKENS). */
  blockSize: number;
  /** KV capacity per server, in blocks. */
  kvBlocks: number;
  /** max-num-batched-tokens: token budget of one engine step. */
  maxBatchedTokens: number;
  /** max-num-seqs: running sequences at most. */
  maxNumSeqs: number;
  /** Fixed overhead of every step, seconds. */
  stepOverheadS: number;
  /** Peak prefill rate, tokens/s (prefill time = tokens / rate). */
  prefillTokensPerS: number;
  /** Decode part of a step with decodes: d0 + d1 * kvUsage + d2 * decodingSeqs, seconds. */
  decodeBaseS: number;
  decodeKvS: number;
  decodePerSeqS: number;
  /** PD: KV transfer = setup + per-token time. */
  kvTransferSetupS: number;
  kvTransferPerTokenS: number;
}

/**
 * Qwen3-32B on 2x H100 (TP2), vLLM: the llm-d / GIE public benchmark setup.
 * - KV 307,328 tokens per pod (llm-d 73-capacity report) = 4,802 blocks of 64.
 * - prefill 15,928 tok/s (llm-d calibration matrix, median TTFT recipe).
 * - budget 8,192 tokens/step, max-num-seqs 256 (vLLM defaults in llm-d runs; Dynamo mocker).
 * - step = 8 ms + prefill/R + decode; decode 12 ms idle + 15 ms at full KV +
 *   ~3 ms at 256 seqs, so ITL is ~20-38 ms (public ITL mean 24-29 ms, §5.2).
 * - KV transfer 1 ms + 3 us/token (IB NDR class, §3.2).
 */
export const Q32_H100X2: ServerParams = {
  name: 'Q32-H100x2',
  blockSize: SIM_BLOCK_TOKENS,
  kvBlocks: Math.floor(307_328 / SIM_BLOCK_TOKENS),
  maxBatchedTokens: 8192,
  maxNumSeqs: 256,
  stepOverheadS: 0.008,
  prefillTokensPerS: 15_928,
  decodeBaseS: 0.012,
  decodeKvS: 0.015,
  decodePerSeqS: 0.000012,
  kvTransferSetupS: 0.001,
  kvTransferPerTokenS: 0.000003,
};

/**
 * An 8B model (Llama-3-8B class) on one H100.
 * - KV ~427k tokens (derived: 80 GB x 0.9 - 16 GB weights at 128 KB/token) = 6,671 blocks of 64.
 * - prefill 40,000 tok/s (derived from the Dynamo mocker polynomial and a roofline; sensitivity 30-48k).
 * - decode 6 ms idle -> ~30 ms at full KV (mocker: 5.7 ms idle, 34 ms full KV), step overhead 4 ms.
 */
export const B8_H100: ServerParams = {
  name: '8B-H100',
  blockSize: SIM_BLOCK_TOKENS,
  kvBlocks: Math.floor(427_000 / SIM_BLOCK_TOKENS),
  maxBatchedTokens: 8192,
  maxNumSeqs: 256,
  stepOverheadS: 0.004,
  prefillTokensPerS: 40_000,
  decodeBaseS: 0.006,
  decodeKvS: 0.024,
  decodePerSeqS: 0.00001,
  kvTransferSetupS: 0.001,
  kvTransferPerTokenS: 0.000003,
};

/** Router-side timing (GIE defaults and performance.md §5.2). */
export interface RouterParams {
  /** Metrics scrape interval, seconds (GIE refresh-metrics-interval 50 ms). */
  scrapeIntervalS: number;
  /** Signals older than this are unknown (GIE metrics-staleness-threshold 2 s). */
  stalenessS: number;
  /** Delay of KV events from a model server to the cache-indexer, seconds (5 ms). */
  kvEventDelayS: number;
  /** Time the cache-indexer takes to answer /match_sort, seconds (5 ms). */
  indexerLatencyS: number;
}

export const DEFAULT_ROUTER: RouterParams = {
  scrapeIntervalS: 0.05,
  stalenessS: 2,
  kvEventDelayS: 0.005,
  indexerLatencyS: 0.005,
};
