// Every option of `hermes-router epp`, once: flag, env variable, help,
// default and range (flag names follow GIE's EPP where GIE has one), and the
// EppConfig buildEpp runs on. Loads no server code, so `--help` and flag
// errors are instant.
import { hostname } from 'node:os';
import {
  bool,
  defineOptions,
  duration,
  integer,
  logLevelOption,
  oneOf,
  optionalString,
  optionDefaults,
  type OptionValues,
  port,
  required,
  secretFileOption,
  secretOption,
  size,
} from '../config/cli-options.js';
import { redactUrl } from '../common/redis-url.js';
import { resolveSecret } from '../common/secrets.js';
import { DESTINATION_HEADER, DESTINATION_METADATA_NAMESPACE } from '../common/wire-headers.js';
import type { BodySendMode } from '../extproc/messages.js';
import { EXTPROC_TRANSPORTS, type ExtProcTransport } from '../extproc/transports.js';
import type { LogFormat } from '../observability/logger.js';

const BODY_MODES = ['FULL_DUPLEX_STREAMED', 'BUFFERED'] as const;
const RESPONSE_BODY_MODES = ['FULL_DUPLEX_STREAMED', 'STREAMED', 'BUFFERED', 'NONE'] as const;
const LOOPBACK = '127.0.0.1';

export const EPP_SUMMARY =
  'the Endpoint Picker: Envoy ext_proc server that routes OpenAI requests to model servers';

export const eppOptions = defineOptions({
  configFile: {
    flag: '--config-file <file>',
    env: 'CONFIG_FILE',
    help: 'EndpointPickerConfig YAML, or a Helm values file embedding one (default: built-in profile)',
    schema: optionalString(),
  },
  configText: {
    flag: '--config-text <yaml>',
    env: 'CONFIG_TEXT',
    help: 'EndpointPickerConfig given inline',
    schema: optionalString(),
  },
  endpointsFile: {
    flag: '--endpoints-file <file>',
    env: 'ENDPOINTS_FILE',
    help: 'static discovery: YAML list of endpoints, re-read on change',
    schema: optionalString(),
  },
  objectivesFile: {
    flag: '--objectives-file <file>',
    env: 'OBJECTIVES_FILE',
    help: 'YAML list of InferenceObjective and InferenceModelRewrite objects (without Kubernetes), re-read on change',
    schema: optionalString(),
  },
  poolName: {
    flag: '--pool-name <name>',
    env: 'POOL_NAME',
    help: 'Kubernetes discovery: InferencePool name',
    schema: optionalString(),
  },
  poolNamespace: {
    flag: '--pool-namespace <ns>',
    env: 'POOL_NAMESPACE',
    help: 'Kubernetes discovery: InferencePool namespace (default $NAMESPACE)',
    schema: optionalString(),
  },
  kubeconfig: {
    flag: '--kubeconfig <file>',
    env: 'KUBECONFIG',
    help: 'kubeconfig for Kubernetes discovery (default: in-cluster or ~/.kube/config)',
    schema: optionalString(),
  },
  redisUrl: secretOption(
    '--redis-url <url>',
    'REDIS_URL',
    'shared state in Redis (absent: in-memory); or give the password in REDIS_PASSWORD(_FILE)',
  ),
  redisUrlFile: secretFileOption('--redis-url', 'REDIS_URL', 'the Redis URL'),
  redisTimeoutMs: {
    flag: '--redis-timeout <duration>',
    env: 'REDIS_TIMEOUT',
    help: 'per-command Redis timeout; a slower Redis puts the replica in degraded mode',
    default: '250ms',
    schema: required(duration(1)),
  },
  statePool: {
    flag: '--state-pool <name>',
    env: 'STATE_POOL',
    help: 'shared-state namespace (Redis keys hermes:{<name>}:) and pool metric label (default: --pool-name, else "default")',
    schema: optionalString().refine(
      (v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(v),
      "expected a name of letters, digits, '.', '_' or '-'",
    ),
  },
  replicaId: {
    flag: '--replica-id <id>',
    env: 'REPLICA_ID',
    help: "this replica's name in shared leases (default $POD_NAME, else host-pid)",
    schema: optionalString(),
  },
  scrapeLeaseTtlMs: {
    flag: '--scrape-lease-ttl <dur>',
    env: 'SCRAPE_LEASE_TTL',
    help: 'with Redis: per-endpoint scrape lease TTL (takeover time after a replica dies)',
    default: '2s',
    schema: required(duration(100)),
  },
  discoveryLeaseTtlMs: {
    flag: '--discovery-lease-ttl <dur>',
    env: 'DISCOVERY_LEASE_TTL',
    help: 'with Redis and --pool-name: TTL of the lease of the replica publishing discovery',
    default: '10s',
    schema: required(duration(300)),
  },
  modelLabels: {
    flag: '--model-labels <names>',
    env: 'MODEL_LABELS',
    help: 'comma-separated model names used as metric labels; set: only these (else names the pool served with a 2xx, up to --max-model-labels)',
    schema: optionalString().transform((v) =>
      v === undefined
        ? undefined
        : v
            .split(',')
            .map((m) => m.trim())
            .filter((m) => m !== ''),
    ),
  },
  maxModelLabels: {
    flag: '--max-model-labels <n>',
    env: 'MAX_MODEL_LABELS',
    help: 'at most this many distinct model_name label values; the rest are counted as "other"',
    default: '100',
    schema: required(integer(1, 10_000)),
  },
  disableSubsetFilter: {
    flag: '--disable-endpoint-subset-filter [bool]',
    env: 'DISABLE_ENDPOINT_SUBSET_FILTER',
    help: "ignore the gateway's subset hint (envoy.lb.subset_hint)",
    default: 'false',
    preset: 'true',
    schema: bool(),
  },
  grpcPort: {
    flag: '--grpc-port <n>',
    env: 'GRPC_PORT',
    help: 'ext_proc gRPC port',
    default: '9002',
    schema: required(port()),
  },
  grpcBind: {
    flag: '--grpc-bind <addr>',
    env: 'GRPC_BIND',
    help: 'address for the ext_proc and health gRPC servers',
    default: '0.0.0.0',
    schema: required(optionalString()),
  },
  grpcHealthPort: {
    flag: '--grpc-health-port <n>',
    env: 'GRPC_HEALTH_PORT',
    help: 'grpc.health.v1 port (-1: off)',
    default: '9003',
    schema: port({ off: true }),
  },
  metricsPort: {
    flag: '--metrics-port <n>',
    env: 'METRICS_PORT',
    help: 'Prometheus /metrics port (-1: off)',
    default: '9090',
    schema: port({ off: true }),
  },
  metricsBind: {
    flag: '--metrics-bind <addr>',
    env: 'METRICS_BIND',
    help: 'address for /metrics (loopback unless opted in, e.g. 0.0.0.0 for a Prometheus scrape)',
    default: LOOPBACK,
    schema: required(optionalString()),
  },
  adminPort: {
    flag: '--admin-port <n>',
    env: 'ADMIN_PORT',
    help: 'admin HTTP port: /healthz /readyz /state/* (-1: off)',
    default: '9091',
    schema: port({ off: true }),
  },
  adminBind: {
    flag: '--admin-bind <addr>',
    env: 'ADMIN_BIND',
    help: 'address for the admin HTTP API (loopback unless opted in; set --admin-token-file when not)',
    default: LOOPBACK,
    schema: required(optionalString()),
  },
  adminToken: secretOption('--admin-token <token>', 'ADMIN_TOKEN', 'bearer token required on /state/*'),
  adminTokenFile: secretFileOption('--admin-token', 'ADMIN_TOKEN', 'the admin bearer token'),
  secureServing: {
    flag: '--secure-serving [bool]',
    env: 'SECURE_SERVING',
    help: 'TLS on ext_proc (self-signed unless --cert-path)',
    default: 'false',
    preset: 'true',
    schema: bool(),
  },
  certPath: {
    flag: '--cert-path <dir>',
    env: 'CERT_PATH',
    help: 'directory holding tls.crt and tls.key',
    schema: optionalString(),
  },
  destinationHeader: {
    flag: '--destination-header <name>',
    env: 'DESTINATION_HEADER',
    help: 'request header and envoy.lb metadata key carrying the chosen endpoints',
    default: DESTINATION_HEADER,
    schema: required(optionalString()).transform((v) => v.toLowerCase()),
  },
  metadataNamespace: {
    flag: '--metadata-namespace <ns>',
    env: 'METADATA_NAMESPACE',
    help: 'dynamic metadata namespace for the destination',
    default: DESTINATION_METADATA_NAMESPACE,
    schema: required(optionalString()),
  },
  refreshMetricsIntervalMs: {
    flag: '--refresh-metrics-interval <dur>',
    env: 'REFRESH_METRICS_INTERVAL',
    help: 'model-server /metrics scrape period',
    default: '50ms',
    schema: required(duration(1)),
  },
  metricsStalenessMs: {
    flag: '--metrics-staleness-threshold <dur>',
    env: 'METRICS_STALENESS_THRESHOLD',
    help: 'signals older than this are unknown',
    default: '2s',
    schema: required(duration()),
  },
  maxRequestBodyBytes: {
    flag: '--max-request-body <size>',
    env: 'MAX_REQUEST_BODY',
    help: 'larger request bodies are answered 413 (e.g. 16Mi)',
    default: '16Mi',
    schema: required(size()),
  },
  requestBodyMode: {
    flag: '--request-body-mode <mode>',
    env: 'REQUEST_BODY_MODE',
    help: 'body mode assumed when the gateway sends no protocol_config',
    default: 'FULL_DUPLEX_STREAMED',
    choices: BODY_MODES,
    schema: required(oneOf(BODY_MODES)),
  },
  responseBodyMode: {
    flag: '--response-body-mode <mode>',
    env: 'RESPONSE_BODY_MODE',
    help: 'response body mode assumed without protocol_config',
    default: 'FULL_DUPLEX_STREAMED',
    choices: RESPONSE_BODY_MODES,
    schema: required(oneOf(RESPONSE_BODY_MODES)),
  },
  drainTimeoutMs: {
    flag: '--drain-timeout <dur>',
    env: 'DRAIN_TIMEOUT',
    help: 'on SIGTERM, how long open streams may finish',
    default: '30s',
    schema: required(duration()),
  },
  leaseMs: {
    flag: '--lease <dur>',
    env: 'LEASE',
    help: 'in-flight charge lease (renewed while a response streams)',
    default: '60s',
    schema: required(duration(1)),
  },
  grpcKeepaliveTimeMs: {
    flag: '--grpc-keepalive-time <dur>',
    env: 'GRPC_KEEPALIVE_TIME',
    help: 'ping an ext_proc connection after this long without a frame (0 = never)',
    default: '30s',
    schema: required(duration()),
  },
  grpcKeepaliveTimeoutMs: {
    flag: '--grpc-keepalive-timeout <dur>',
    env: 'GRPC_KEEPALIVE_TIMEOUT',
    help: 'close the connection (releasing its picks) when a ping is not answered within this',
    default: '10s',
    schema: required(duration()),
  },
  extprocTransport: {
    flag: '--extproc-transport <name>',
    env: 'EXTPROC_TRANSPORT',
    help: 'ext_proc server transport: grpc-js, or http2 (a lean gRPC server on node:http2, same protocol, less CPU per message)',
    default: 'grpc-js',
    choices: EXTPROC_TRANSPORTS,
    schema: required(oneOf(EXTPROC_TRANSPORTS)),
  },
  streamIdleTimeoutMs: {
    flag: '--stream-idle-timeout <dur>',
    env: 'STREAM_IDLE_TIMEOUT',
    help: 'end an ext_proc stream with no message from the gateway for this long (0 = never)',
    default: '10m',
    schema: required(duration()),
  },
  logLevel: logLevelOption('pino level: trace debug info warn error'),
  logFormat: {
    flag: '--log-format <fmt>',
    env: 'LOG_FORMAT',
    help: 'json or pretty',
    default: 'json',
    choices: ['json', 'pretty'],
    schema: required(oneOf(['json', 'pretty'] as const)),
  },
  // GIE EPP flags the GIE chart passes; accepted so the chart's args work unchanged.
  poolGroup: gie('--pool-group <group>', 'POOL_GROUP', 'InferencePool API group'),
  zapEncoder: gie('--zap-encoder <enc>', 'ZAP_ENCODER', 'json | console'),
  zapLogLevel: gie('--zap-log-level <level>', 'ZAP_LOG_LEVEL', ''),
  v: gie('--v <n>', 'V', 'verbosity'),
  tracing: gie('--tracing [bool]', 'TRACING', 'no tracing here'),
  metricsEndpointAuth: gie('--metrics-endpoint-auth [bool]', 'METRICS_ENDPOINT_AUTH', 'not enforced'),
  haEnableLeaderElection: gie(
    '--ha-enable-leader-election [bool]',
    'HA_ENABLE_LEADER_ELECTION',
    'replicas share state through Redis instead',
  ),
});

function gie(flag: string, env: string, what: string) {
  return {
    flag,
    env,
    help: `(GIE compatibility${what ? `; ${what}` : ''})`,
    hidden: true,
    schema: optionalString(),
  };
}

export type EppOptionValues = OptionValues<typeof eppOptions>;

export interface EppConfig {
  /** ext_proc gRPC; 0 = any free port. */
  grpcPort: number;
  grpcBind: string;
  /** grpc.health.v1; undefined = not served. */
  grpcHealthPort?: number;
  /** Prometheus /metrics; undefined = not served. */
  metricsPort?: number;
  metricsBind: string;
  /** Admin HTTP; undefined = not served. */
  adminPort?: number;
  adminBind: string;
  adminToken?: string;
  configFile?: string;
  configText?: string;
  endpointsFile?: string;
  /** InferenceObjective / InferenceModelRewrite objects from a file instead of Kubernetes. */
  objectivesFile?: string;
  poolName?: string;
  poolNamespace?: string;
  kubeconfig?: string;
  redisUrl?: string;
  /** Per-command Redis timeout (ms); slower commands count as failures (degraded mode). */
  redisTimeoutMs?: number;
  /**
   * Namespace of the shared state (Redis keys `hermes:{<pool>}:`) and the pool
   * label of the pool metrics. Default: --pool-name, else `default`.
   */
  statePool?: string;
  /** This replica's name in shared leases (default $POD_NAME, else host-pid). */
  replicaId?: string;
  /** Shared state: per-endpoint scrape lease TTL (takeover time when a scraping replica dies). */
  scrapeLeaseTtlMs: number;
  /** Shared state + Kubernetes: TTL of the lease of the replica that publishes discovery. */
  discoveryLeaseTtlMs: number;
  /** Metric label values for model names: only these when set (see observability/model-labels.ts). */
  modelLabels?: string[];
  maxModelLabels: number;
  /** Ignore the gateway's subset hint (GIE --disable-endpoint-subset-filter). */
  disableSubsetFilter: boolean;
  secureServing: boolean;
  certPath?: string;
  destinationHeader: string;
  metadataNamespace: string;
  refreshMetricsIntervalMs: number;
  metricsStalenessMs: number;
  maxRequestBodyBytes: number;
  requestBodyMode: BodySendMode;
  responseBodyMode: BodySendMode;
  drainTimeoutMs: number;
  /** In-flight charge lease; renewed every third of it while the response streams. */
  leaseMs: number;
  /** gRPC keepalive ping interval on ext_proc connections (0 = off): finds half-open connections. */
  grpcKeepaliveTimeMs: number;
  /** A keepalive ping unanswered this long closes the connection and releases its picks. */
  grpcKeepaliveTimeoutMs: number;
  /** A stream with no gateway message for this long is ended (0 = never). */
  streamIdleTimeoutMs: number;
  /** The ext_proc server transport: grpc-js or the lean node:http2 one. */
  extprocTransport: ExtProcTransport;
}

export interface EppRun {
  config: EppConfig;
  logLevel: string;
  logFormat: LogFormat;
}

/** The option values -> what buildEpp runs on; throws naming the flag(s) at fault. */
export function eppRunFrom(o: EppOptionValues, env: NodeJS.ProcessEnv = process.env): EppRun {
  if (o.configFile && o.configText) throw new Error('--config-file and --config-text are mutually exclusive');
  if (!o.endpointsFile && !o.poolName) {
    throw new Error(
      'no endpoint discovery: give --endpoints-file FILE or --pool-name NAME --pool-namespace NS',
    );
  }
  if (o.endpointsFile && o.poolName) throw new Error('use either --endpoints-file or --pool-name, not both');
  // An instant ping deadline would close every healthy connection at its first ping.
  if (o.grpcKeepaliveTimeMs > 0 && o.grpcKeepaliveTimeoutMs < 100)
    throw new Error('--grpc-keepalive-timeout must be at least 100ms (or --grpc-keepalive-time 0)');
  // GIE's --zap-encoder console is our pretty format.
  const logFormat: LogFormat = o.logFormat === 'json' && o.zapEncoder === 'console' ? 'pretty' : o.logFormat;
  return { config: eppConfigOf(o, env), logLevel: o.logLevel, logFormat };
}

function eppConfigOf(o: EppOptionValues, env: NodeJS.ProcessEnv): EppConfig {
  return {
    grpcPort: o.grpcPort,
    grpcBind: o.grpcBind,
    grpcHealthPort: o.grpcHealthPort,
    metricsPort: o.metricsPort,
    metricsBind: o.metricsBind,
    adminPort: o.adminPort,
    adminBind: o.adminBind,
    adminToken: resolveSecret({ flag: '--admin-token', value: o.adminToken, file: o.adminTokenFile }),
    configFile: o.configFile,
    configText: o.configText,
    endpointsFile: o.endpointsFile,
    objectivesFile: o.objectivesFile,
    poolName: o.poolName,
    poolNamespace: o.poolNamespace || env.NAMESPACE || (o.poolName ? 'default' : undefined),
    kubeconfig: o.kubeconfig,
    redisUrl: resolveSecret({ flag: '--redis-url', value: o.redisUrl, file: o.redisUrlFile }),
    redisTimeoutMs: o.redisTimeoutMs,
    statePool: o.statePool,
    replicaId: o.replicaId,
    scrapeLeaseTtlMs: o.scrapeLeaseTtlMs,
    discoveryLeaseTtlMs: o.discoveryLeaseTtlMs,
    modelLabels: o.modelLabels,
    maxModelLabels: o.maxModelLabels,
    disableSubsetFilter: o.disableSubsetFilter,
    secureServing: o.secureServing,
    certPath: o.certPath,
    destinationHeader: o.destinationHeader,
    metadataNamespace: o.metadataNamespace,
    refreshMetricsIntervalMs: o.refreshMetricsIntervalMs,
    metricsStalenessMs: o.metricsStalenessMs,
    maxRequestBodyBytes: o.maxRequestBodyBytes,
    requestBodyMode: o.requestBodyMode,
    responseBodyMode: o.responseBodyMode,
    drainTimeoutMs: o.drainTimeoutMs,
    leaseMs: o.leaseMs,
    grpcKeepaliveTimeMs: o.grpcKeepaliveTimeMs,
    grpcKeepaliveTimeoutMs: o.grpcKeepaliveTimeoutMs,
    streamIdleTimeoutMs: o.streamIdleTimeoutMs,
    extprocTransport: o.extprocTransport,
  };
}

/** Every EppConfig field at its default, from the one schema (tests and benches build on them). */
export const EPP_DEFAULTS: EppConfig = eppConfigOf(optionDefaults(eppOptions), {});

/** Redis key namespace and pool metric label (see EppConfig.statePool). */
export function statePoolOf(config: Pick<EppConfig, 'statePool' | 'poolName'>): string {
  return config.statePool ?? config.poolName ?? 'default';
}

/** This replica's lease identity: unique per process on one host, stable per pod. */
export function replicaIdOf(
  config: Pick<EppConfig, 'replicaId'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return config.replicaId ?? env.POD_NAME ?? `${hostname()}-${process.pid}`;
}

/** The configuration as logged: secrets (Redis password, admin token) never appear. */
export function loggableConfig(config: EppConfig): Record<string, unknown> {
  return {
    ...config,
    configText: config.configText === undefined ? undefined : `(${config.configText.length} chars)`,
    redisUrl: config.redisUrl === undefined ? undefined : redactUrl(config.redisUrl),
    adminToken: config.adminToken === undefined ? undefined : '***',
  };
}
