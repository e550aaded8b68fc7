// mock-vllm's settings and their defaults (flags and env: options.ts).
import type { PayloadEncoding } from '../kvcache/events.js';

export type MockRole = 'prefill' | 'decode' | 'both';
/** off: current names only; both: also vllm:gpu_cache_usage_perc; only: the old name instead. */
export type LegacyMetrics = 'off' | 'both' | 'only';

export interface MockVllmConfig {
  host: string;
  port: number;
  model: string;
  role: MockRole;
  prefillTokensPerS: number;
  decodeMsPerToken: number;
  maxNumSeqs: number;
  kvCacheBlocks: number;
  blockSize: number;
  /** Simulated time runs this many times faster than real time. */
  timeScale: number;
  defaultMaxTokens: number;
  legacyMetrics: LegacyMetrics;
  /** ZMQ PUB port (0: do not bind). */
  kvEventsPort: number;
  kvEventsReplayPort: number;
  /** Consumers' bound SUB endpoints to connect to (llm-d convention). */
  kvEventsConnect: string[];
  /** Topic frame; default `kv@<host>:<port>@<model>`. */
  kvEventsTopic?: string;
  kvEventsEncoding: PayloadEncoding;
  kvEventsBufferSize: number;
  /** Address reported in kv_transfer_params.remote_host (defaults to host). */
  advertiseHost?: string;
  /** LoRA adapters served besides the base model (vLLM --lora-modules): requests may name them. */
  loraModules: string[];
  /** vLLM --max-loras, reported as max_lora (not enforced: adapters are free to load here). */
  maxLoras: number;
}

export const defaultMockVllmConfig: MockVllmConfig = {
  host: '127.0.0.1',
  port: 8000,
  model: 'mock-model',
  role: 'both',
  prefillTokensPerS: 20_000,
  decodeMsPerToken: 20,
  maxNumSeqs: 16,
  kvCacheBlocks: 4096,
  blockSize: 16,
  timeScale: 1,
  defaultMaxTokens: 16,
  legacyMetrics: 'off',
  kvEventsPort: 0,
  kvEventsReplayPort: 0,
  kvEventsConnect: [],
  kvEventsEncoding: 'map',
  kvEventsBufferSize: 10_000,
  loraModules: [],
  maxLoras: 1,
};
