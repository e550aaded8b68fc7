import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';

export const command: SubcommandModule['command'] = {
  name: 'epp',
  summary: 'the Endpoint Picker: Envoy ext_proc server that routes OpenAI requests to model servers',
  async run(args) {
    const opt = (flags: string, help: string, env: string, def?: string) => {
      const o = new Option(flags, help).env(env);
      return def === undefined ? o : o.default(def);
    };
    const cmd = new Command('hermes-router epp')
      .description(this.summary)
      .addOption(
        opt(
          '--config-file <file>',
          'EndpointPickerConfig YAML, or a Helm values file embedding one (default: built-in profile)',
          'CONFIG_FILE',
        ),
      )
      .addOption(opt('--config-text <yaml>', 'EndpointPickerConfig given inline', 'CONFIG_TEXT'))
      .addOption(
        opt(
          '--endpoints-file <file>',
          'static discovery: YAML list of endpoints, re-read on change',
          'ENDPOINTS_FILE',
        ),
      )
      .addOption(opt('--pool-name <name>', 'Kubernetes discovery: InferencePool name', 'POOL_NAME'))
      .addOption(
        opt(
          '--pool-namespace <ns>',
          'Kubernetes discovery: InferencePool namespace (default $NAMESPACE)',
          'POOL_NAMESPACE',
        ),
      )
      .addOption(
        opt(
          '--kubeconfig <file>',
          'kubeconfig for Kubernetes discovery (default: in-cluster or ~/.kube/config)',
          'KUBECONFIG',
        ),
      )
      .addOption(opt('--redis-url <url>', 'shared state in Redis (absent: in-memory)', 'REDIS_URL'))
      .addOption(
        opt(
          '--redis-timeout <duration>',
          'per-command Redis timeout; a slower Redis puts the replica in degraded mode (default 250ms)',
          'REDIS_TIMEOUT',
        ),
      )
      .addOption(
        opt(
          '--state-pool <name>',
          'shared-state namespace (Redis keys hermes:{<name>}:) and pool metric label (default: --pool-name, else "default")',
          'STATE_POOL',
        ),
      )
      .addOption(
        opt(
          '--replica-id <id>',
          "this replica's name in shared leases (default $POD_NAME, else host-pid)",
          'REPLICA_ID',
        ),
      )
      .addOption(
        opt(
          '--scrape-lease-ttl <dur>',
          'with Redis: per-endpoint scrape lease TTL (takeover time after a replica dies)',
          'SCRAPE_LEASE_TTL',
          '2s',
        ),
      )
      .addOption(
        opt(
          '--discovery-lease-ttl <dur>',
          'with Redis and --pool-name: TTL of the lease of the replica publishing discovery',
          'DISCOVERY_LEASE_TTL',
          '10s',
        ),
      )
      .addOption(
        opt(
          '--disable-endpoint-subset-filter [bool]',
          "ignore the gateway's subset hint (envoy.lb.subset_hint)",
          'DISABLE_ENDPOINT_SUBSET_FILTER',
          'false',
        ).preset('true'),
      )
      .addOption(opt('--grpc-port <n>', 'ext_proc gRPC port', 'GRPC_PORT', '9002'))
      .addOption(
        opt('--grpc-bind <addr>', 'address for the ext_proc and health gRPC servers', 'GRPC_BIND', '0.0.0.0'),
      )
      .addOption(opt('--grpc-health-port <n>', 'grpc.health.v1 port (-1: off)', 'GRPC_HEALTH_PORT', '9003'))
      .addOption(opt('--metrics-port <n>', 'Prometheus /metrics port (-1: off)', 'METRICS_PORT', '9090'))
      .addOption(opt('--metrics-bind <addr>', 'address for /metrics', 'METRICS_BIND', '0.0.0.0'))
      .addOption(
        opt('--admin-port <n>', 'admin HTTP port: /healthz /readyz /state/* (-1: off)', 'ADMIN_PORT', '9091'),
      )
      .addOption(opt('--admin-bind <addr>', 'address for the admin HTTP API', 'ADMIN_BIND', '127.0.0.1'))
      .addOption(opt('--admin-token <token>', 'bearer token required on /state/*', 'ADMIN_TOKEN'))
      .addOption(
        opt(
          '--secure-serving [bool]',
          'TLS on ext_proc (self-signed unless --cert-path)',
          'SECURE_SERVING',
          'false',
        ).preset('true'),
      )
      .addOption(opt('--cert-path <dir>', 'directory holding tls.crt and tls.key', 'CERT_PATH'))
      .addOption(
        opt(
          '--destination-header <name>',
          'request header and envoy.lb metadata key carrying the chosen endpoints',
          'DESTINATION_HEADER',
          'x-gateway-destination-endpoint',
        ),
      )
      .addOption(
        opt(
          '--metadata-namespace <ns>',
          'dynamic metadata namespace for the destination',
          'METADATA_NAMESPACE',
          'envoy.lb',
        ),
      )
      .addOption(
        opt(
          '--refresh-metrics-interval <dur>',
          'model-server /metrics scrape period',
          'REFRESH_METRICS_INTERVAL',
          '50ms',
        ),
      )
      .addOption(
        opt(
          '--metrics-staleness-threshold <dur>',
          'signals older than this are unknown',
          'METRICS_STALENESS_THRESHOLD',
          '2s',
        ),
      )
      .addOption(
        opt(
          '--max-request-body <size>',
          'larger request bodies are answered 413 (e.g. 16Mi)',
          'MAX_REQUEST_BODY',
          '16Mi',
        ),
      )
      .addOption(
        opt(
          '--request-body-mode <mode>',
          'body mode assumed when the gateway sends no protocol_config',
          'REQUEST_BODY_MODE',
          'FULL_DUPLEX_STREAMED',
        ).choices(['FULL_DUPLEX_STREAMED', 'BUFFERED']),
      )
      .addOption(
        opt(
          '--response-body-mode <mode>',
          'response body mode assumed without protocol_config',
          'RESPONSE_BODY_MODE',
          'FULL_DUPLEX_STREAMED',
        ).choices(['FULL_DUPLEX_STREAMED', 'STREAMED', 'BUFFERED', 'NONE']),
      )
      .addOption(
        opt('--drain-timeout <dur>', 'on SIGTERM, how long open streams may finish', 'DRAIN_TIMEOUT', '30s'),
      )
      .addOption(
        opt('--lease <dur>', 'in-flight charge lease (renewed while a response streams)', 'LEASE', '60s'),
      )
      .addOption(
        opt(
          '--grpc-keepalive-time <dur>',
          'ping an ext_proc connection after this long without a frame (0 = never)',
          'GRPC_KEEPALIVE_TIME',
          '30s',
        ),
      )
      .addOption(
        opt(
          '--grpc-keepalive-timeout <dur>',
          'close the connection (releasing its picks) when a ping is not answered within this',
          'GRPC_KEEPALIVE_TIMEOUT',
          '10s',
        ),
      )
      .addOption(
        opt(
          '--stream-idle-timeout <dur>',
          'end an ext_proc stream with no message from the gateway for this long (0 = never)',
          'STREAM_IDLE_TIMEOUT',
          '10m',
        ),
      )
      .addOption(opt('--log-level <level>', 'pino level: trace debug info warn error', 'LOG_LEVEL', 'info'))
      .addOption(
        opt('--log-format <fmt>', 'json or pretty', 'LOG_FORMAT', 'json').choices(['json', 'pretty']),
      )
      // GIE EPP flags the GIE chart passes; accepted so the chart's args work unchanged.
      .addOption(
        opt('--pool-group <group>', '(GIE compatibility) InferencePool API group', 'POOL_GROUP').hideHelp(),
      )
      .addOption(opt('--zap-encoder <enc>', '(GIE compatibility) json | console', 'ZAP_ENCODER').hideHelp())
      .addOption(opt('--zap-log-level <level>', '(GIE compatibility)', 'ZAP_LOG_LEVEL').hideHelp())
      .addOption(opt('--v <n>', '(GIE compatibility) verbosity', 'V').hideHelp())
      .addOption(opt('--tracing [bool]', '(GIE compatibility; no tracing here)', 'TRACING').hideHelp())
      .addOption(
        opt(
          '--metrics-endpoint-auth [bool]',
          '(GIE compatibility; not enforced)',
          'METRICS_ENDPOINT_AUTH',
        ).hideHelp(),
      )
      .addOption(
        opt(
          '--ha-enable-leader-election [bool]',
          '(GIE compatibility; replicas share state through Redis instead)',
          'HA_ENABLE_LEADER_ELECTION',
        ).hideHelp(),
      )
      .parse(args, { from: 'user' });
    const flags = cmd.opts<Record<string, string | undefined>>();
    const { eppConfigFromFlags, runEpp } = await import('../../epp/main.js');
    let parsed;
    try {
      parsed = eppConfigFromFlags(flags, process.env);
    } catch (e) {
      process.stderr.write(`epp: ${(e as Error).message}\n`);
      return 2;
    }
    return runEpp(parsed);
  },
};
