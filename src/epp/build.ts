// buildEpp(config, deps): the whole Endpoint Picker as one object that tests
// and benchmarks can start in-process and the CLI starts for real. Wiring
// only; each part lives in its own module:
//   config (EndpointPickerConfig) -> Director over the StateStore
//   discovery (endpoints file | Kubernetes) -> store.replaceEndpoints + scraper
//   MetricsScraper -> store.writeSignals
//   ext_proc gRPC (ExtProcService) + grpc.health.v1 + Prometheus + admin HTTP
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { buildAdminApp } from '../admin/app.js';
import {
  DEFAULT_CONFIG_TEXT,
  loadConfigFile,
  loadConfigText,
  type LoadedConfig,
} from '../config/endpoint-picker-config.js';
import { CacheIndexerClient } from '../datalayer/cache-indexer-client.js';
import { MetricsScraper } from '../datalayer/metrics-scraper.js';
import { Director } from '../director/director.js';
import { hostPort, isLoopback } from '../common/net.js';
import { EndpointsFileSource } from '../discovery/endpoints-file.js';
import { DiscoveredSet } from '../discovery/discovered-set.js';
import { LeasedPublisher } from '../discovery/k8s-publisher.js';
import type { EndpointSource } from '../discovery/types.js';
import { HealthService } from '../observability/health.js';
import { EppMetrics } from '../observability/metrics.js';
import { builtinRegistry, type PluginRegistry } from '../plugins/index.js';
import type { Endpoint } from '../scheduling/types.js';
import { createStateStore } from '../state/create-store.js';
import type { StateStore } from '../state/store.js';
import { createExtProcServer, drainServer, ExtProcService, type ExtProcServer } from '../extproc/server.js';
import { loadTlsMaterial } from '../extproc/tls.js';
import { replicaIdOf, statePoolOf, type EppConfig } from './options.js';
import { closeHttp, listenHttp, listeningPort } from '../common/http-server.js';
import { bindGrpc, serveMetrics } from './servers.js';
import { ObjectiveTable, type InferenceModelRewrite } from '../flow/objectives.js';
import { chooseRewrite, rewritesByAge } from '../flow/model-rewrite.js';
import { objectivesSource } from './objectives.js';
import type { ObjectivesSource } from '../flow/objectives-file.js';
import { FlowController } from '../flow/flow-controller.js';
import { registerFlowMetrics, withLocalAdmissionLog } from '../observability/flow-metrics.js';

export interface EppDeps {
  logger: Logger;
  registry?: PluginRegistry;
  /** A ready store (tests); else one is created from redisUrl. */
  store?: StateStore;
  /** A ready endpoint source (tests); else from endpointsFile / poolName. */
  source?: EndpointSource;
  version?: string;
}

export interface EppAddresses {
  grpc: number;
  health?: number;
  metrics?: number;
  admin?: number;
}

export interface Epp {
  readonly config: EppConfig;
  readonly loaded: LoadedConfig;
  readonly store: StateStore;
  readonly director: Director;
  readonly metrics: EppMetrics;
  readonly service: ExtProcService;
  readonly scraper: MetricsScraper;
  /** This replica's name in shared leases. */
  readonly replicaId: string;
  /** Kubernetes + Redis: the discovery publisher (one replica at a time writes the set). */
  readonly publisher: LeasedPublisher | undefined;
  /** InferenceObjectives in force (priority per objective name). */
  readonly objectives: ObjectiveTable;
  /** The flowControl section's queue, when configured. */
  readonly flow: FlowController | undefined;
  /** Empty when ready to serve. */
  notReadyReasons(): string[];
  start(): Promise<EppAddresses>;
  /** Graceful: stop accepting, let open streams finish up to drainTimeoutMs, close everything. */
  stop(): Promise<void>;
}

/**
 * The Kubernetes client is loaded only for Kubernetes discovery: it is ~27 MB
 * of heap, which every full collection marks again (at 220 KB bodies the
 * off-heap churn of the gRPC buffers runs one every few hundred requests).
 */
async function endpointSource(config: EppConfig, logger: Logger): Promise<EndpointSource> {
  if (config.endpointsFile && config.poolName) {
    throw new Error('use either --endpoints-file or --pool-name, not both');
  }
  if (config.endpointsFile) {
    return new EndpointsFileSource(config.endpointsFile, {
      onError: (e) =>
        logger.warn({ err: e.message }, 'endpoints file re-read failed; keeping the last good endpoints'),
    });
  }
  if (config.poolName) {
    if (!config.poolNamespace) throw new Error('--pool-name needs --pool-namespace (or NAMESPACE)');
    const { KubernetesSource } = await import('../discovery/kubernetes.js');
    return new KubernetesSource({
      poolName: config.poolName,
      poolNamespace: config.poolNamespace,
      kubeconfigPath: config.kubeconfig,
      onError: (e: Error) => logger.warn({ err: e.message }, 'kubernetes discovery'),
      log: (msg: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, msg),
    });
  }
  throw new Error(
    'no endpoint discovery: give --endpoints-file FILE or --pool-name NAME --pool-namespace NS',
  );
}

export async function buildEpp(config: EppConfig, deps: EppDeps): Promise<Epp> {
  const logger = deps.logger;
  const registry = deps.registry ?? builtinRegistry();
  const loaded = config.configFile
    ? loadConfigFile(config.configFile, registry)
    : loadConfigText(
        config.configText ?? DEFAULT_CONFIG_TEXT,
        config.configText ? '--config-text' : '(built-in default)',
        registry,
      );
  const pool = statePoolOf(config);
  const replicaId = replicaIdOf(config);
  const store =
    deps.store ??
    (await createStateStore({
      redisUrl: config.redisUrl,
      pool,
      logger,
      commandTimeoutMs: config.redisTimeoutMs,
    }));
  // Shared state: replicas coordinate background work through leases.
  const shared = store.health().shared;
  const metrics = new EppMetrics({
    poolName: pool,
    store,
    stalenessMs: config.metricsStalenessMs,
    version: deps.version,
    knownModels: config.modelLabels,
    maxModelLabels: config.maxModelLabels,
    learnModelLabels: config.modelLabels === undefined,
  });
  const discoveredSet = new DiscoveredSet();
  let flow: FlowController | undefined;
  const director = new Director({
    admitEndpoints: (shared) => discoveredSet.admit(shared),
    store,
    profile: loaded.profile,
    indexer: new CacheIndexerClient(),
    stalenessMs: config.metricsStalenessMs,
    leaseMs: config.leaseMs,
    saturationDetector: loaded.saturationDetector,
    hooks: {
      onIndexer: (o) => metrics.onIndexer(o),
      onStateError: (op, err) => {
        metrics.onStateError(op);
        logger.warn({ op, err: err.message }, 'state store call failed');
      },
      // A response ended here: a queued request may go.
      onReleased: () => flow?.kick(),
      // A first token freed prefill tokens (tokens-mode concurrency-detector).
      onPrefillReleased: () => flow?.kick(),
    },
    // A response ended on a replica whose queue is empty while others queue: they may take the room now.
    wakeOthersOnRelease: () => flow?.othersWaiting() ?? false,
  });
  if (loaded.flowControl) {
    flow = new FlowController({
      settings: loaded.flowControl,
      director,
      saturation: (views) => loaded.saturationDetector.saturation(views),
      // Other replicas' releases and fresh signals are seen at the scrape period.
      pollMs: config.refreshMetricsIntervalMs,
      // Replicas sharing the store dispatch fairly across their queues (src/flow/fair-share.ts).
      fairShare: shared ? { clearHeads: () => director.clearQueueHeads() } : undefined,
      hooks: withLocalAdmissionLog(
        registerFlowMetrics(metrics.registry, () => flow?.state()),
        logger,
      ),
    });
  }
  if (flow && shared) {
    const f = flow;
    // Another replica left the pool's room to an older request: maybe one of ours.
    store.onWake((from) => {
      if (from !== director.owner) f.kick();
    });
  }
  const scraper = new MetricsScraper({
    store,
    logger,
    intervalMs: config.refreshMetricsIntervalMs,
    hooks: {
      onScrape: (_id, s) => metrics.onScrape(s),
      onScrapeError: (id) => metrics.onScrapeError(id),
      onStateError: (op) => metrics.onStateError(op),
      onLeases: (held, change) => metrics.onScrapeLeases(held, change),
    },
    leases: shared ? { store, holder: replicaId, ttlMs: config.scrapeLeaseTtlMs } : undefined,
  });
  let objectives = new ObjectiveTable();
  let rewritesInOrder: InferenceModelRewrite[] = [];
  let objectiveSource: ObjectivesSource | undefined;
  const service = new ExtProcService({
    priorityOf: (name) => objectives.priorityOf(name),
    admission: flow,
    rewriteOf: (model) =>
      rewritesInOrder.length ? chooseRewrite(model, rewritesInOrder, Math.random) : undefined,
    director,
    logger,
    destinationHeader: config.destinationHeader.toLowerCase(),
    metadataNamespace: config.metadataNamespace,
    maxBodyBytes: config.maxRequestBodyBytes,
    defaultRequestBodyMode: config.requestBodyMode,
    defaultResponseBodyMode: config.responseBodyMode,
    observer: metrics.observer(),
    renewIntervalMs: Math.max(100, Math.floor(config.leaseMs / 3)),
    streamIdleTimeoutMs: config.streamIdleTimeoutMs,
    ignoreSubsetHint: config.disableSubsetFilter,
  });
  const health = new HealthService();

  let source: EndpointSource | undefined = deps.source;
  let publisher: LeasedPublisher | undefined;
  /** The set this replica's own source delivered last. */
  let localSet: Endpoint[] | undefined;
  let discovered = false;
  let listening = false;
  let stopping = false;
  let grpcServer: ExtProcServer | undefined;
  let healthServer: grpc.Server | undefined;
  let metricsServer: HttpServer | undefined;
  let adminServer: HttpServer | undefined;

  const notReadyReasons = (): string[] => {
    const r: string[] = [];
    if (stopping) r.push('shutting down');
    if (!discovered) r.push('endpoint discovery has not delivered yet');
    if (!listening) r.push('ext_proc server not listening');
    return r;
  };
  const updateHealth = () => health.setReady(notReadyReasons().length === 0);

  const storeLocally = (eps: Endpoint[]) => {
    // Degraded: the write stays in this replica (its fallback set and what it re-publishes on resync).
    store
      .replaceEndpoints(eps)
      .catch((e: Error) => logger.warn({ err: e.message }, 'could not keep the endpoints locally'));
  };

  const onEndpoints = (eps: Endpoint[]) => {
    localSet = eps;
    discoveredSet.update(eps);
    scraper.setEndpoints(eps);
    metrics.onScrapeLeases(scraper.scraping);
    if (publisher) {
      // Every replica uses its own set locally; only the lease holder writes it to Redis.
      if (!discovered) logger.info({ endpoints: eps.length }, 'endpoints discovered');
      else logger.info({ endpoints: eps.map((e) => e.id) }, 'endpoints changed');
      discovered = true;
      updateHealth();
      if (store.health().degraded) storeLocally(eps);
      publisher.update(eps);
      return;
    }
    store.replaceEndpoints(eps).then(
      () => {
        if (!discovered) logger.info({ endpoints: eps.length }, 'endpoints discovered');
        else logger.info({ endpoints: eps.map((e) => e.id) }, 'endpoints changed');
        discovered = true;
        updateHealth();
      },
      (e: Error) => {
        metrics.onStateError('replaceEndpoints');
        logger.error({ err: e.message }, 'could not store the discovered endpoints');
      },
    );
  };

  const epp: Epp = {
    config,
    loaded,
    store,
    director,
    metrics,
    service,
    scraper,
    replicaId,
    get publisher() {
      return publisher;
    },
    get objectives() {
      return objectives;
    },
    flow,
    notReadyReasons,

    async start() {
      const addrs: EppAddresses = { grpc: 0 };
      // Probes and metrics first, so an EPP waiting on discovery is visible.
      if (config.grpcHealthPort !== undefined) {
        healthServer = new grpc.Server();
        health.addTo(healthServer);
        addrs.health = await bindGrpc(
          healthServer,
          hostPort(config.grpcBind, config.grpcHealthPort),
          grpc.ServerCredentials.createInsecure(),
        );
      }
      if (config.metricsPort !== undefined) {
        metricsServer = serveMetrics(metrics.registry);
        addrs.metrics = await listenHttp(metricsServer, config.metricsPort, config.metricsBind);
      }
      if (config.adminPort !== undefined) {
        const app = buildAdminApp({
          store,
          notReadyReasons,
          flow: () => flow?.state(),
          objectives: () =>
            objectives.objectives.map((o) => ({ name: o.metadata.name, priority: o.spec.priority ?? 0 })),
          stalenessMs: config.metricsStalenessMs,
          token: config.adminToken,
          details: () => ({
            openStreams: service.openStreams,
            stateBackend: store.health().backend,
            // Degraded is reported, not a reason to stop serving: scheduling goes on from local state.
            state: {
              backend: store.health().backend,
              pool,
              replica: replicaId,
              degraded: store.health().degraded,
              ...(store.health().counters ? { counters: { ...store.health().counters } } : {}),
              scraping: scraper.scraping,
              ...(publisher ? { discoveryPublisher: publisher.isLeader } : {}),
            },
          }),
        });
        adminServer = serve({
          fetch: app.fetch,
          port: config.adminPort,
          hostname: config.adminBind,
        }) as HttpServer;
        addrs.admin = await listeningPort(adminServer);
        if (!config.adminToken && !isLoopback(config.adminBind)) {
          logger.warn(
            { adminBind: config.adminBind },
            'admin API on a non-loopback address without --admin-token(-file): /state/* is open to whoever reaches it',
          );
        }
      }

      source ??= await endpointSource(config, logger);
      if (shared) {
        publisher = new LeasedPublisher({
          store,
          holder: replicaId,
          ttlMs: config.discoveryLeaseTtlMs,
          onError: (e) => {
            metrics.onStateError('publishEndpoints');
            logger.warn({ err: e.message }, 'discovery publisher');
          },
          onLeader: (leader) => {
            metrics.onDiscoveryLeader(leader);
            logger.info(
              { replica: replicaId, leader },
              leader ? 'publishing discovery to the shared state' : 'another replica publishes discovery',
            );
          },
        });
      }
      store.onHealthChange(({ degraded }) => {
        // The store logs the change itself; here a replica that does not publish
        // discovery keeps its own set as the fallback for the outage.
        if (degraded && publisher && localSet) storeLocally(localSet);
      });
      // Kubernetes objectives only beside Kubernetes discovery this process runs itself.
      objectiveSource = await objectivesSource(config, logger, { kubernetes: deps.source === undefined });
      await Promise.all([
        objectiveSource?.start((table) => {
          objectives = table;
          rewritesInOrder = rewritesByAge(table.rewrites);
          logger.info(
            { objectives: table.objectives.length, rewrites: table.rewrites.length },
            'inference objectives loaded',
          );
        }),
        source.start(onEndpoints),
      ]);
      publisher?.start();
      scraper.start();

      const tls = config.secureServing ? await loadTlsMaterial(config.certPath) : undefined;
      if (tls?.selfSigned) logger.info('ext_proc TLS with a self-signed certificate');
      grpcServer = createExtProcServer(service, {
        transport: config.extprocTransport,
        // BUFFERED bodies arrive as one message: leave room above the body limit so
        // an oversized body still gets a 413 answer rather than a gRPC error.
        maxReceiveMessageBytes: 2 * config.maxRequestBodyBytes + 1024 * 1024,
        keepalive: {
          keepaliveTimeMs: config.grpcKeepaliveTimeMs,
          keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs,
        },
        tls,
      });
      addrs.grpc = await grpcServer.listen(config.grpcBind, config.grpcPort);
      service.startRenewal();
      listening = true;
      updateHealth();
      logger.info(
        {
          grpc: addrs.grpc,
          health: addrs.health,
          metrics: addrs.metrics,
          admin: addrs.admin,
          profile: loaded.profile.name,
          config: loaded.file,
          state: store.health().backend,
          statePool: pool,
          replica: replicaId,
          tls: Boolean(tls),
          transport: config.extprocTransport,
        },
        'endpoint picker ready',
      );
      return addrs;
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      updateHealth();
      let cut = 0;
      // Queued requests are answered (429) first: their streams can then end and the drain finish.
      const refused = flow?.close() ?? 0;
      if (refused > 0) logger.info({ requests: refused }, 'queued requests refused at shutdown');
      if (grpcServer) cut = await drainServer(grpcServer, service, config.drainTimeoutMs);
      if (cut > 0) logger.warn({ streams: cut }, 'drain deadline reached; open streams were cut');
      service.stopRenewal();
      // The cut streams' releases (and any pick still open) reach the store before it closes.
      await director.releaseAll();
      await source?.stop();
      await objectiveSource?.stop();
      await publisher?.stop();
      await scraper.stop();
      healthServer?.forceShutdown();
      await Promise.all([closeHttp(metricsServer), closeHttp(adminServer)]);
      await store.close();
      logger.info('endpoint picker stopped');
    },
  };
  return epp;
}
