// buildCacheIndexer(config, deps): the cache-indexer's composition, built
// then started: store (memory or Redis) -> indexer -> KV event subscriptions
// (discovered pods and/or a bound socket) -> HTTP /match_sort. Wiring only;
// the entry (functions/cache-indexer/main.ts) parses flags and handles signals.
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { EndpointsFileSource } from '../discovery/endpoints-file.js';
import { KubernetesSource } from '../discovery/kubernetes.js';
import type { EndpointSource } from '../discovery/types.js';
import type { BlockIndexStore } from './index-store.js';
import { CacheIndexer } from './indexer.js';
import { MemoryIndexStore } from './memory-store.js';
import { IndexerMetrics } from './metrics.js';
import type { CacheIndexerConfig } from './options.js';
import { loadHuggingFaceTokenizer, simpleTokenizer, type PromptTokenizer } from './prompt-tokenizer.js';
import { RedisIndexStore } from './redis-store.js';
import { fetchReplay } from './replay.js';
import { buildIndexerApp } from './server.js';
import { KvEventSubscribers } from './subscribers.js';

/** Replay answers larger than this are refused (vLLM buffers 10,000 batches by default). */
const MAX_REPLAY_BATCHES = 200_000;

export interface CacheIndexerApp {
  readonly indexer: CacheIndexer;
  readonly store: BlockIndexStore;
  /** Binds, subscribes, discovers and listens; resolves with the HTTP port. */
  start(): Promise<{ port: number; kvEventsBind?: string }>;
  /** Stops following pods, lets pending writes settle, closes the store and the server. */
  stop(): Promise<void>;
}

/** A start-up failure, with the flag it concerns in its message. */
export class IndexerStartError extends Error {
  override name = 'IndexerStartError';
}

export function buildCacheIndexer(f: CacheIndexerConfig, deps: { logger: Logger }): CacheIndexerApp {
  const log = deps.logger;
  let tokenizer: PromptTokenizer = simpleTokenizer;
  if (f.tokenizer) {
    try {
      tokenizer = loadHuggingFaceTokenizer(f.tokenizer, f.tokenizerConfig);
    } catch (e) {
      throw new IndexerStartError(`--tokenizer: ${(e as Error).message}`);
    }
  }
  // The store's reconnect hook and the metrics read the indexer built after them.
  const late: { indexer?: CacheIndexer; subs?: KvEventSubscribers } = {};
  const redis = f.redisUrl
    ? new RedisIndexStore({
        url: f.redisUrl,
        prefix: f.redisPrefix,
        ttlSeconds: f.redisTtlSeconds,
        onReconnect: () => {
          log.warn('Redis is back: resyncing the index');
          void late.indexer?.resync();
        },
        onError: (err) => log.warn({ err: err.message }, 'Redis error'),
      })
    : undefined;
  const store: BlockIndexStore = redis ?? new MemoryIndexStore();
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

  let source: EndpointSource | undefined;
  let server: ServerType | undefined;
  const onEndpoints = (eps: Parameters<Parameters<EndpointSource['start']>[0]>[0]) => {
    const left = subs.setEndpoints(eps);
    for (const pod of left) indexer.dropPod(pod);
    log.info({ pods: eps.map((e) => e.id), left }, 'model servers to follow');
  };

  const app: CacheIndexerApp = {
    indexer,
    store,
    async start() {
      if (redis) {
        try {
          await redis.connect();
        } catch (e) {
          // Start anyway: lookups answer 503 (the EPP scores without hit rates) until Redis is up.
          log.error({ err: (e as Error).message }, 'Redis unreachable at start; retrying in the background');
        }
      }
      let boundEvents: string | undefined;
      if (f.kvEventsBind) {
        try {
          boundEvents = await subs.bind(f.kvEventsBind);
        } catch (e) {
          throw new IndexerStartError(`--kv-events-bind ${f.kvEventsBind}: ${(e as Error).message}`);
        }
      }
      if (f.endpointsFile) {
        source = new EndpointsFileSource(f.endpointsFile, {
          onError: (e) =>
            log.error({ err: e.message }, 'endpoints file re-read failed; keeping the previous pods'),
        });
      } else if (f.poolName) {
        source = new KubernetesSource({
          poolName: f.poolName,
          poolNamespace: f.poolNamespace!,
          kubeconfigPath: f.kubeconfig,
          onError: (e) => log.warn({ err: e.message }, 'kubernetes discovery'),
          log: (msg, fields) => log.info(fields ?? {}, msg),
        });
      }
      await source?.start(onEndpoints);

      const http = buildIndexerApp({
        indexer,
        metrics,
        tokenizer,
        health: () => ({ subscriptions: subs.connectedPods().length, kvEventsBind: boundEvents ?? null }),
      });
      server = await new Promise<ServerType>((resolve, reject) => {
        const s = serve({ fetch: http.fetch, port: f.port, hostname: f.host }, () => resolve(s));
        s.once('error', reject);
      }).catch((e: Error) => {
        throw new IndexerStartError(`cannot listen on ${f.host}:${f.port}: ${e.message}`);
      });
      const port = (server.address() as AddressInfo).port;
      log.info(
        {
          port,
          store: store.kind,
          kvEventsBind: boundEvents,
          blockSize: f.blockSize,
          tokenizer: f.tokenizer ?? 'simple',
        },
        'cache-indexer listening',
      );
      return { port, ...(boundEvents ? { kvEventsBind: boundEvents } : {}) };
    },
    async stop() {
      await source?.stop();
      subs.close();
      await indexer.settled();
      await store.close();
      const s = server;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        (s as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
  return app;
}
