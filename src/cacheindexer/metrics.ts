// The cache-indexer's own Prometheus metrics.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class IndexerMetrics {
  readonly registry = new Registry();
  private readonly reg = [this.registry];
  readonly batches = new Counter({
    name: 'cache_indexer_event_batches_total',
    help: 'KV event batches received.',
    registers: this.reg,
  });
  readonly events = new Counter({
    name: 'cache_indexer_events_total',
    help: 'KV events applied, by type.',
    labelNames: ['type'],
    registers: this.reg,
  });
  readonly decodeErrors = new Counter({
    name: 'cache_indexer_decode_errors_total',
    help: 'Messages that could not be decoded or attributed to a pod, by reason.',
    labelNames: ['reason'],
    registers: this.reg,
  });
  readonly gaps = new Counter({
    name: 'cache_indexer_sequence_gaps_total',
    help: 'Gaps in a producer stream sequence (events lost).',
    registers: this.reg,
  });
  readonly missedBatches = new Counter({
    name: 'cache_indexer_missed_batches_total',
    help: 'Event batches lost in sequence gaps.',
    registers: this.reg,
  });
  readonly replays = new Counter({
    name: 'cache_indexer_replays_total',
    help: 'Replays of missed KV event batches, by result (ok, partial: the producer no longer buffers the start, failed: error or timeout, unavailable: the pod has no replay endpoint).',
    labelNames: ['result'],
    registers: this.reg,
  });
  readonly replayedBatches = new Counter({
    name: 'cache_indexer_replayed_batches_total',
    help: 'Event batches received through replays.',
    registers: this.reg,
  });
  readonly producerRestarts = new Counter({
    name: 'cache_indexer_producer_restarts_total',
    help: 'Sequence numbers going backwards (producer restarted): the pod index was cleared.',
    registers: this.reg,
  });
  readonly anomalies = new Counter({
    name: 'cache_indexer_block_anomalies_total',
    help: 'Blocks not indexable or removals of unknown blocks, by kind (orphan, unknown_removal, malformed).',
    labelNames: ['kind'],
    registers: this.reg,
  });
  readonly storeErrors = new Counter({
    name: 'cache_indexer_store_errors_total',
    help: 'Index store operations that failed, by operation.',
    labelNames: ['op'],
    registers: this.reg,
  });
  readonly lookups = new Counter({
    name: 'cache_indexer_lookups_total',
    help: '/match_sort requests by outcome (ok, bad_request, error).',
    labelNames: ['status'],
    registers: this.reg,
  });
  readonly lookupSeconds = new Histogram({
    name: 'cache_indexer_lookup_duration_seconds',
    help: '/match_sort latency (tokenize, hash, index lookup).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: this.reg,
  });
  readonly pods: Gauge;
  readonly blocks: Gauge;

  constructor(stats: () => { pods: number; blocks: number }) {
    this.pods = new Gauge({
      name: 'cache_indexer_pods',
      help: 'Pods with an index.',
      registers: this.reg,
      collect() {
        this.set(stats().pods);
      },
    });
    this.blocks = new Gauge({
      name: 'cache_indexer_indexed_blocks',
      help: 'Blocks indexed, summed over pods.',
      registers: this.reg,
      collect() {
        this.set(stats().blocks);
      },
    });
  }
}
