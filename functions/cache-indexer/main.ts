// hermes-router cache-indexer: flags -> store (memory or Redis) -> indexer
// -> KV event subscriptions (discovered pods and/or a bound socket) -> HTTP
// /match_sort. SIGINT/SIGTERM close it. All logic is in src/cacheindexer.
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { EndpointSource } from '../../src/discovery/types.js';
import { EndpointsFileSource } from '../../src/discovery/endpoints-file.js';
import { CacheIndexer } from '../../src/cacheindexer/indexer.js';
import { IndexerMetrics } from '../../src/cacheindexer/metrics.js';
import { MemoryIndexStore } from '../../src/cacheindexer/memory-store.js';
import { RedisIndexStore } from '../../src/cacheindexer/redis-store.js';
import type { BlockIndexStore } from '../../src/cacheindexer/index-store.js';
import { buildIndexerApp } from '../../src/cacheindexer/server.js';
import {
  loadHuggingFaceTokenizer,
  simpleTokenizer,
  type PromptTokenizer,
} from '../../src/cacheindexer/prompt-tokenizer.js';
import { KvEventSubscribers } from '../../src/cacheindexer/subscribers.js';
import { fetchReplay } from '../../src/cacheindexer/replay.js';

/** Replay answers larger than this are refused (vLLM buffers 10,000 batches by default). */
const MAX_REPLAY_BATCHES = 200_000;

export interface CacheIndexerFlags {
  port: number;
  host: string;
  endpointsFile?: string;
  poolName?: string;
  poolNamespace?: string;
  kubeconfig?: string;
  kvEventsBind?: string;
  redisUrl?: string;
  redisPrefix: string;
  redisTtlSeconds: number;
  blockSize: number;
  maxLookupBlocks: number;
  /** A model's tokenizer.json for text prompts (default: the simple tokenizer). */
  tokenizer?: string;
  tokenizerConfig?: string;
  /** How long a replay of missed KV event batches may take (0: never replay). */
  replayTimeoutMs: number;
  logLevel: string;
}

export async function runCacheIndexer(f: CacheIndexerFlags): Promise<number | void> {
  const log = pino({ name: 'cache-indexer', level: f.logLevel });
  if (!f.endpointsFile && !f.poolName && !f.kvEventsBind) {
    process.stderr.write(
      'cache-indexer: nothing to follow: give --endpoints-file, --pool-name/--pool-namespace or --kv-events-bind\n',
    );
    return 2;
  }
  if (f.poolName && !f.poolNamespace) {
    process.stderr.write('cache-indexer: --pool-name needs --pool-namespace\n');
    return 2;
  }
  let tokenizer: PromptTokenizer = simpleTokenizer;
  if (f.tokenizer) {
    try {
      tokenizer = loadHuggingFaceTokenizer(f.tokenizer, f.tokenizerConfig);
    } catch (e) {
      process.stderr.write(`cache-indexer: --tokenizer: ${(e as Error).message}\n`);
      return 2;
    }
  }
  // The store's reconnect hook and the metrics read the indexer built after them.
  const late: { indexer?: CacheIndexer; subs?: KvEventSubscribers } = {};
  let store: BlockIndexStore;
  if (f.redisUrl) {
    const redis = new RedisIndexStore({
      url: f.redisUrl,
      prefix: f.redisPrefix,
      ttlSeconds: f.redisTtlSeconds,
      onReconnect: () => {
        log.warn('Redis is back: resyncing the index');
        void late.indexer?.resync();
      },
      onError: (err) => log.warn({ err: err.message }, 'Redis error'),
    });
    try {
      await redis.connect();
    } catch (e) {
      // Start anyway: lookups answer 503 (the EPP scores without hit rates) until Redis is up.
      log.error({ err: (e as Error).message }, 'Redis unreachable at start; retrying in the background');
    }
    store = redis;
  } else {
    store = new MemoryIndexStore();
  }
  const metrics: IndexerMetrics = new IndexerMetrics(() => late.indexer?.totals() ?? { pods: 0, blocks: 0 });
  const indexer = new CacheIndexer(store, {
    blockSize: f.blockSize,
    maxLookupBlocks: f.maxLookupBlocks,
    log,
    metrics,
    replay:
      f.replayTimeoutMs > 0
        ? (pod, from) => {
            const url = late.subs?.replayUrlOf(pod);
            return url
              ? fetchReplay(url, from, { timeoutMs: f.replayTimeoutMs, maxBatches: MAX_REPLAY_BATCHES })
              : undefined;
          }
        : undefined,
  });
  late.indexer = indexer;
  const subs = new KvEventSubscribers(
    (pod, stream, seq, payload) => indexer.onMessage(pod, stream, seq, payload),
    log,
    metrics,
    { discovery: Boolean(f.endpointsFile || f.poolName), onPodGone: (pod) => indexer.dropPod(pod) },
  );
  late.subs = subs;

  let boundEvents: string | undefined;
  if (f.kvEventsBind) {
    try {
      boundEvents = await subs.bind(f.kvEventsBind);
    } catch (e) {
      process.stderr.write(`cache-indexer: --kv-events-bind ${f.kvEventsBind}: ${(e as Error).message}\n`);
      subs.close();
      await store.close();
      return 1;
    }
  }

  let source: EndpointSource | undefined;
  const onEndpoints = (eps: Parameters<Parameters<EndpointSource['start']>[0]>[0]) => {
    const left = subs.setEndpoints(eps);
    for (const pod of left) indexer.dropPod(pod);
    log.info({ pods: eps.map((e) => e.id), left }, 'model servers to follow');
  };
  try {
    if (f.endpointsFile) {
      source = new EndpointsFileSource(f.endpointsFile, {
        onError: (e) =>
          log.error({ err: e.message }, 'endpoints file re-read failed; keeping the previous pods'),
      });
    } else if (f.poolName) {
      const { KubernetesSource } = await import('../../src/discovery/kubernetes.js');
      source = new KubernetesSource({
        poolName: f.poolName,
        poolNamespace: f.poolNamespace!,
        kubeconfigPath: f.kubeconfig,
        onError: (e) => log.warn({ err: e.message }, 'kubernetes discovery'),
        log: (msg, fields) => log.info(fields ?? {}, msg),
      });
    }
    await source?.start(onEndpoints);
  } catch (e) {
    process.stderr.write(`cache-indexer: ${(e as Error).message}\n`);
    subs.close();
    await store.close();
    return 1;
  }

  const app = buildIndexerApp({
    indexer,
    metrics,
    tokenizer,
    health: () => ({ subscriptions: subs.connectedPods().length, kvEventsBind: boundEvents ?? null }),
  });
  const server: ServerType | undefined = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: f.port, hostname: f.host }, () => resolve(s));
    s.once('error', reject);
  }).catch((e: Error) => {
    process.stderr.write(`cache-indexer: cannot listen on ${f.host}:${f.port}: ${e.message}\n`);
    return undefined;
  });
  if (!server) {
    await source?.stop();
    subs.close();
    await store.close();
    return 1;
  }
  log.info(
    {
      port: (server.address() as AddressInfo).port,
      store: store.kind,
      kvEventsBind: boundEvents,
      blockSize: f.blockSize,
      tokenizer: f.tokenizer ?? 'simple',
    },
    'cache-indexer listening',
  );

  await new Promise<void>((resolve) => {
    const stop = async () => {
      log.info('cache-indexer stopping');
      await source?.stop();
      subs.close();
      await indexer.settled();
      await store.close();
      server.close(() => resolve());
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
  });
}
