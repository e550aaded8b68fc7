// Prometheus metrics of the EPP (prom-client, one Registry per EPP so tests
// can build several in one process). GIE's names where GIE has the metric,
// `hermes_*` for the rest. Help strings of GIE metrics carry GIE's "[ALPHA] "
// prefix so dashboards built for GIE keep matching.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IndexerOutcome } from '../datalayer/cache-indexer-client.js';
import type { ErrorCode, ExtProcObserver, Usage } from './request-observer.js';
import type { StateStore } from '../state/store.js';
import { ModelLabels } from './model-labels.js';
import {
  BoundCounter,
  BoundGauge,
  BoundHistogram,
  type HistogramChild,
  type ValueChild,
} from './bound-metrics.js';
import { hasResilienceMetrics, registerStateMetrics } from './state-metrics.js';

const DURATION_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 120,
  180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
];
const REQUEST_SIZE_BUCKETS = Array.from({ length: 25 }, (_, i) => 64 * 2 ** i); // 64 B .. 1 GiB
const RESPONSE_SIZE_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536];
const TOKEN_BUCKETS = [
  1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536, 131072, 262144, 524288,
  1048576,
];
const SCHEDULER_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];
const NTPOT_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

export interface EppMetricsOptions {
  poolName: string;
  store: StateStore;
  stalenessMs: number;
  now?: () => number;
  version?: string;
  /** Model names that may be labels from the start (others must be served first; see model-labels.ts). */
  knownModels?: readonly string[];
  /** At most this many distinct model labels (default 100); the rest are `other`. */
  maxModelLabels?: number;
  /** Names served with a 2xx become labels (default true); false: only knownModels. */
  learnModelLabels?: boolean;
}

export class EppMetrics {
  readonly registry = new Registry();
  readonly modelLabels: ModelLabels;
  // The request path's metrics are bound families (bound-metrics.ts): the
  // observer resolves each label set once and keeps the child.
  private readonly requestTotal: BoundCounter;
  private readonly errorTotal: Counter<'model_name' | 'target_model_name' | 'error_code'>;
  private readonly duration: BoundHistogram;
  private readonly requestSizes: BoundHistogram;
  private readonly responseSizes: BoundHistogram;
  private readonly inputTokens: BoundHistogram;
  private readonly outputTokens: BoundHistogram;
  private readonly cachedTokens: BoundHistogram;
  private readonly ntpot: BoundHistogram;
  private readonly running: BoundGauge;
  private readonly schedulerE2e: BoundHistogram;
  private readonly schedulerAttempts: BoundCounter;
  private readonly picks: BoundCounter;
  private readonly shedTotal: Counter<'reason'>;
  private readonly rewriteDecisions: Counter<'model_rewrite_name' | 'model_name' | 'target_model'>;
  private readonly openStreams: BoundGauge;
  private readonly scrapeErrors: Counter<'endpoint'>;
  private readonly scrapeDuration: Histogram;
  private readonly indexerLatency: Histogram<'status'>;
  private readonly indexerFailures: Counter<'status'>;
  private readonly stateErrors: Counter<'op'>;
  private readonly scrapeLeases: Gauge;
  private readonly scrapeLeaseChanges: Counter<'change'>;
  private readonly discoveryLeader: Gauge;

  constructor(opts: EppMetricsOptions) {
    const r = this.registry;
    this.modelLabels = new ModelLabels(opts.knownModels, opts.maxModelLabels, opts.learnModelLabels);
    const m = ['model_name', 'target_model_name'] as const;
    this.requestTotal = new BoundCounter(
      'inference_objective_request_total',
      '[ALPHA] Counter of inference objective requests broken out for each model and target model.',
      [...m, 'priority'],
      r,
    );
    this.errorTotal = new Counter({
      name: 'inference_objective_request_error_total',
      help: '[ALPHA] Counter of inference objective requests errors broken out for each model and target model.',
      labelNames: [...m, 'error_code'],
      registers: [r],
    });
    this.duration = new BoundHistogram(
      'inference_objective_request_duration_seconds',
      '[ALPHA] Inference objective response latency distribution in seconds for each model and target model.',
      m,
      DURATION_BUCKETS,
      r,
    );
    this.requestSizes = new BoundHistogram(
      'inference_objective_request_sizes',
      '[ALPHA] Inference objective requests size distribution in bytes for each model and target model.',
      m,
      REQUEST_SIZE_BUCKETS,
      r,
    );
    this.responseSizes = new BoundHistogram(
      'inference_objective_response_sizes',
      '[ALPHA] Inference objective responses size distribution in bytes for each model and target model.',
      m,
      RESPONSE_SIZE_BUCKETS,
      r,
    );
    this.inputTokens = new BoundHistogram(
      'inference_objective_input_tokens',
      '[ALPHA] Inference objective input token count distribution for requests in each model.',
      m,
      TOKEN_BUCKETS,
      r,
    );
    this.outputTokens = new BoundHistogram(
      'inference_objective_output_tokens',
      '[ALPHA] Inference objective output token count distribution for requests in each model.',
      m,
      TOKEN_BUCKETS,
      r,
    );
    this.cachedTokens = new BoundHistogram(
      'inference_objective_prompt_cached_tokens',
      '[ALPHA] Inference objective prompt cached token count distribution for requests in each model.',
      m,
      TOKEN_BUCKETS,
      r,
    );
    this.ntpot = new BoundHistogram(
      'inference_objective_normalized_time_per_output_token_seconds',
      '[ALPHA] Inference objective latency divided by number of output tokens in seconds for each model and target model.',
      m,
      NTPOT_BUCKETS,
      r,
    );
    this.running = new BoundGauge(
      'inference_objective_running_requests',
      '[ALPHA] Inference objective number of running requests in each model.',
      ['model_name'],
      r,
    );
    this.schedulerE2e = new BoundHistogram(
      'inference_extension_scheduler_e2e_duration_seconds',
      '[ALPHA] End-to-end scheduling latency distribution in seconds.',
      [],
      SCHEDULER_BUCKETS,
      r,
    );
    this.schedulerAttempts = new BoundCounter(
      'inference_extension_scheduler_attempts_total',
      '[ALPHA] Total number of successful and failed scheduling attempts.',
      ['status'],
      r,
    );
    new Gauge({
      name: 'inference_extension_info',
      help: '[ALPHA] General information of the current build of Inference Extension.',
      labelNames: ['commit', 'build_ref'],
      registers: [r],
    }).set({ commit: 'hermes-router', build_ref: opts.version ?? 'dev' }, 1);

    // Pool gauges computed at scrape time from the state store (fresh signals only).
    const pool = opts.poolName;
    const now = opts.now ?? Date.now;
    const poolGauge = (name: string, help: string, fn: (v: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['name'],
        registers: [r],
        async collect() {
          this.set({ name: pool }, fn(await poolStats(opts.store, now(), opts.stalenessMs)));
        },
      });
    poolGauge(
      'inference_pool_ready_pods',
      '[ALPHA] The number of ready pods in the inference server pool.',
      (v) => v.ready,
    );
    poolGauge(
      'inference_pool_average_queue_size',
      '[ALPHA] The average number of requests pending in the model server queue.',
      (v) => v.avgQueue,
    );
    poolGauge(
      'inference_pool_average_running_requests',
      '[ALPHA] The average number of requests currently being processed by model servers.',
      (v) => v.avgRunning,
    );
    poolGauge(
      'inference_pool_average_kv_cache_utilization',
      '[ALPHA] The average kv cache utilization for an inference server pool.',
      (v) => v.avgKv,
    );

    this.shedTotal = new Counter({
      name: 'hermes_requests_shed_total',
      help: 'Requests answered 429 by admission before scheduling, by reason.',
      labelNames: ['reason'],
      registers: [r],
    });
    this.rewriteDecisions = new Counter({
      name: 'inference_extension_model_rewrite_decisions_total',
      help: '[ALPHA] Total number of model rewrite decisions.',
      labelNames: ['model_rewrite_name', 'model_name', 'target_model'],
      registers: [r],
    });
    this.picks = new BoundCounter(
      'hermes_endpoint_picks_total',
      'Requests routed to each endpoint (primary target).',
      ['endpoint', 'profile'],
      r,
    );
    this.openStreams = new BoundGauge('hermes_extproc_open_streams', 'Open ext_proc streams.', [], r);
    this.scrapeErrors = new Counter({
      name: 'hermes_metrics_scrape_errors_total',
      help: 'Failed model-server /metrics scrapes per endpoint.',
      labelNames: ['endpoint'],
      registers: [r],
    });
    this.scrapeDuration = new Histogram({
      name: 'hermes_metrics_scrape_duration_seconds',
      help: 'Duration of successful model-server /metrics scrapes.',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
      registers: [r],
    });
    this.indexerLatency = new Histogram({
      name: 'hermes_cache_indexer_request_duration_seconds',
      help: 'cache-indexer /match_sort latency by outcome (ok, timeout, error).',
      labelNames: ['status'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
      registers: [r],
    });
    this.indexerFailures = new Counter({
      name: 'hermes_cache_indexer_failures_total',
      help: 'cache-indexer calls that gave no answer (timeout, error, or skipped by the open breaker).',
      labelNames: ['status'],
      registers: [r],
    });
    this.stateErrors = new Counter({
      name: 'hermes_state_store_errors_total',
      help: 'Failed state-store operations (scheduling went on without them).',
      labelNames: ['op'],
      registers: [r],
    });
    if (hasResilienceMetrics(opts.store)) registerStateMetrics(r, opts.store);
    this.scrapeLeases = new Gauge({
      name: 'hermes_scrape_leases_held',
      help: 'Endpoints whose /metrics this replica scrapes (shared state: the scrape leases it holds; memory: all).',
      registers: [r],
    });
    this.scrapeLeaseChanges = new Counter({
      name: 'hermes_scrape_lease_changes_total',
      help: 'Scrape leases this replica acquired or lost (another replica scrapes the endpoint then).',
      labelNames: ['change'],
      registers: [r],
    });
    this.discoveryLeader = new Gauge({
      name: 'hermes_discovery_publisher_leader',
      help: '1 while this replica holds the discovery lease and publishes the endpoint set to the shared state.',
      registers: [r],
    });
  }

  /** Hooks for the ext_proc handler. */
  observer(): ExtProcObserver {
    const models = this.modelLabels;
    // Raw client strings never reach a label: unknown names are `other`.
    // Each label's series are resolved once (bounded: ModelLabels' max + other).
    const perModel = new Map<string, ModelSeries>();
    const series = (model: string): ModelSeries => {
      const name = models.of(model);
      let s = perModel.get(name);
      if (!s) {
        s = {
          requestTotal: new Map(),
          requestSizes: this.requestSizes.child(name, name),
          duration: this.duration.child(name, name),
          responseSizes: this.responseSizes.child(name, name),
          inputTokens: this.inputTokens.child(name, name),
          outputTokens: this.outputTokens.child(name, name),
          cachedTokens: this.cachedTokens.child(name, name),
          ntpot: this.ntpot.child(name, name),
        };
        perModel.set(name, s);
      }
      return s;
    };
    const running = new Map<string, ValueChild>();
    const runningOf = (label: string): ValueChild => {
      let c = running.get(label);
      if (!c) running.set(label, (c = this.running.child(label)));
      return c;
    };
    const streams = this.openStreams.child();
    const e2e = this.schedulerE2e.child();
    const attemptOk = this.schedulerAttempts.child('success');
    const attemptFailed = this.schedulerAttempts.child('failure');
    const picks = new Map<string, Map<string, ValueChild>>();
    const pickOf = (endpoint: string, profile: string): ValueChild => {
      let byEndpoint = picks.get(profile);
      if (!byEndpoint) picks.set(profile, (byEndpoint = new Map()));
      let c = byEndpoint.get(endpoint);
      if (!c) byEndpoint.set(endpoint, (c = this.picks.child(endpoint, profile)));
      return c;
    };
    return {
      streamOpened: () => streams.inc(),
      streamClosed: () => streams.dec(),
      requestReceived: (model, size, priority) => {
        const s = series(model);
        const p = priority ?? 0;
        let total = s.requestTotal.get(p);
        if (!total) {
          const name = models.of(model);
          s.requestTotal.set(p, (total = this.requestTotal.child(name, name, String(p))));
        }
        total.inc();
        if (size > 0) s.requestSizes.observe(size);
        runningOf(models.started(model)).inc();
      },
      shed: (_model, reason) => this.shedTotal.inc({ reason }),
      // Rewrite names and targets come from configured objects: bounded.
      modelRewritten: (name, model, target) =>
        this.rewriteDecisions.inc({
          model_rewrite_name: name,
          model_name: models.of(model),
          target_model: target,
        }),
      requestError: (model: string, code: ErrorCode) => {
        const name = models.of(model);
        this.errorTotal.inc({ model_name: name, target_model_name: name, error_code: code });
      },
      requestEnded: (model: string) => {
        const name = models.ended(model);
        if (name !== undefined) runningOf(name).dec();
      },
      scheduled: (_model, secs, endpoint, profile, ok) => {
        e2e.observe(secs);
        (ok ? attemptOk : attemptFailed).inc();
        if (ok) pickOf(endpoint, profile).inc();
      },
      responseComplete: (
        model: string,
        status: number,
        secs: number,
        bytes: number,
        usage: Usage | undefined,
      ) => {
        if (status >= 200 && status < 300) models.admit(model);
        const s = series(model);
        s.duration.observe(secs);
        s.responseSizes.observe(bytes);
        if (usage?.promptTokens !== undefined) s.inputTokens.observe(usage.promptTokens);
        if (usage?.completionTokens !== undefined) {
          s.outputTokens.observe(usage.completionTokens);
          if (usage.completionTokens > 0) s.ntpot.observe(secs / usage.completionTokens);
        }
        if (usage?.cachedTokens !== undefined) s.cachedTokens.observe(usage.cachedTokens);
      },
    };
  }

  onIndexer(o: IndexerOutcome): void {
    if (o.status !== 'open') this.indexerLatency.observe({ status: o.status }, o.latencyMs / 1000);
    if (o.status !== 'ok') this.indexerFailures.inc({ status: o.status });
  }

  onStateError(op: string): void {
    this.stateErrors.inc({ op });
  }

  onScrape(seconds: number): void {
    this.scrapeDuration.observe(seconds);
  }

  onScrapeError(endpoint: string): void {
    this.scrapeErrors.inc({ endpoint });
  }

  onScrapeLeases(held: number, change?: 'acquired' | 'lost'): void {
    this.scrapeLeases.set(held);
    if (change) this.scrapeLeaseChanges.inc({ change });
  }

  onDiscoveryLeader(leader: boolean): void {
    this.discoveryLeader.set(leader ? 1 : 0);
  }
}

/** One model label's request-path series. */
interface ModelSeries {
  /** By priority (the `priority` label). */
  requestTotal: Map<number, ValueChild>;
  requestSizes: HistogramChild;
  duration: HistogramChild;
  responseSizes: HistogramChild;
  inputTokens: HistogramChild;
  outputTokens: HistogramChild;
  cachedTokens: HistogramChild;
  ntpot: HistogramChild;
}

interface PoolStats {
  ready: number;
  avgQueue: number;
  avgRunning: number;
  avgKv: number;
}

async function poolStats(store: StateStore, nowMs: number, stalenessMs: number): Promise<PoolStats> {
  const snap = await store.readSnapshot({});
  let n = 0;
  let q = 0;
  let run = 0;
  let kv = 0;
  for (const e of snap.endpoints) {
    const s = snap.signals.get(e.id);
    if (!s || nowMs - s.updatedAtMs > stalenessMs) continue;
    n++;
    q += s.waitingQueueSize ?? 0;
    run += s.runningRequests ?? 0;
    kv += s.kvCacheUsage ?? 0;
  }
  return {
    ready: snap.endpoints.length,
    avgQueue: n ? q / n : 0,
    avgRunning: n ? run / n : 0,
    avgKv: n ? kv / n : 0,
  };
}
