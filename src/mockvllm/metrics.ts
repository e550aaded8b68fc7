// mock-vllm's /metrics with vLLM's metric names (reference/vllm-pd-kv.md §5),
// labelled model_name and engine. Latencies are recorded in simulated
// seconds (real seconds x time scale), so a fast test run still reports
// the figures the configured model would have.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MockVllmConfig } from './config.js';
import type { Engine } from './engine.js';

const LATENCY_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

export class MockMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string; engine: string };
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly prefixQueries: Counter;
  readonly prefixHits: Counter;
  readonly requestSuccess: Counter;
  readonly ttft: Histogram;
  readonly itl: Histogram;
  readonly e2e: Histogram;
  readonly promptHist: Histogram;
  readonly genHist: Histogram;
  /** mock-vllm's own: requests by P/D kind (prefill | decode | aggregate). */
  readonly pdRequests: Counter;

  constructor(cfg: MockVllmConfig, engine: Engine) {
    this.labels = { model_name: cfg.model, engine: '0' };
    const labelNames = ['model_name', 'engine'] as const;
    const reg = [this.registry];
    const usage = () => engine.kv.usedBlocks / engine.kv.totalBlocks;
    const labels = this.labels;
    new Gauge({
      name: 'vllm:num_requests_running',
      help: 'Number of requests in model execution batches.',
      labelNames,
      registers: reg,
      collect() {
        this.set(labels, engine.running);
      },
    });
    new Gauge({
      name: 'vllm:num_requests_waiting',
      help: 'Number of requests waiting to be processed.',
      labelNames,
      registers: reg,
      collect() {
        this.set(labels, engine.waiting);
      },
    });
    if (cfg.legacyMetrics !== 'only') {
      new Gauge({
        name: 'vllm:kv_cache_usage_perc',
        help: 'KV-cache usage. 1 means 100 percent usage.',
        labelNames,
        registers: reg,
        collect() {
          this.set(labels, usage());
        },
      });
    }
    if (cfg.legacyMetrics !== 'off') {
      new Gauge({
        name: 'vllm:gpu_cache_usage_perc',
        help: 'GPU KV-cache usage. 1 means 100 percent usage (older name).',
        labelNames,
        registers: reg,
        collect() {
          this.set(labels, usage());
        },
      });
    }
    const info = new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig.',
      labelNames: ['model_name', 'engine', 'block_size', 'num_gpu_blocks', 'enable_prefix_caching'],
      registers: reg,
    });
    info.set(
      {
        ...labels,
        block_size: String(cfg.blockSize),
        num_gpu_blocks: String(cfg.kvCacheBlocks),
        enable_prefix_caching: 'True',
      },
      1,
    );
    // vLLM's shape: the adapters in labels, the value the time of the reading.
    // Without --lora-modules: one empty series valued 0, as before.
    new Gauge({
      name: 'vllm:lora_requests_info',
      help: 'Running stats on LoRA requests.',
      labelNames: ['running_lora_adapters', 'waiting_lora_adapters', 'max_lora'],
      registers: reg,
      collect() {
        this.reset();
        if (cfg.loraModules.length === 0) {
          this.set({ running_lora_adapters: '', waiting_lora_adapters: '', max_lora: '0' }, 0);
          return;
        }
        const a = engine.loraAdapters();
        this.set(
          {
            running_lora_adapters: a.running.join(','),
            waiting_lora_adapters: a.waiting.join(','),
            max_lora: String(cfg.maxLoras),
          },
          Date.now() / 1000,
        );
      },
    });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers: reg });
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.prefixQueries = counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
    );
    this.prefixHits = counter(
      'vllm:prefix_cache_hits_total',
      'Prefix cache hits, in terms of number of cached tokens.',
    );
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['model_name', 'engine', 'finished_reason'],
      registers: reg,
    });
    const hist = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers: reg });
    this.ttft = hist(
      'vllm:time_to_first_token_seconds',
      'Histogram of time to first token in seconds.',
      LATENCY_BUCKETS,
    );
    this.itl = hist(
      'vllm:inter_token_latency_seconds',
      'Histogram of inter-token latency in seconds.',
      LATENCY_BUCKETS,
    );
    this.e2e = hist(
      'vllm:e2e_request_latency_seconds',
      'Histogram of end to end request latency in seconds.',
      LATENCY_BUCKETS,
    );
    this.promptHist = hist(
      'vllm:request_prompt_tokens',
      'Number of prefill tokens processed.',
      TOKEN_BUCKETS,
    );
    this.genHist = hist(
      'vllm:request_generation_tokens',
      'Number of generation tokens processed.',
      TOKEN_BUCKETS,
    );
    this.pdRequests = new Counter({
      name: 'mock_vllm_requests_total',
      help: 'Requests served by this mock, by P/D kind (prefill: do_remote_decode; decode: do_remote_prefill; aggregate: neither).',
      labelNames: ['model_name', 'kind'],
      registers: reg,
    });
  }

  get l(): { model_name: string; engine: string } {
    return this.labels;
  }
}
