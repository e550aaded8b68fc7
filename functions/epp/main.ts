// `hermes-router epp`: flags -> EppConfig, build, start, stop on signals.
// Everything else is in src/ (buildEpp in src/epp/build.ts).
import { ConfigError } from '../../src/config/errors.js';
import { buildEpp, EPP_DEFAULTS, loggableConfig, type EppConfig } from '../../src/epp/build.js';
import type { BodySendMode } from '../../src/extproc/messages.js';
import { createLogger, type LogFormat } from '../../src/observability/logger.js';

export interface EppRun {
  config: EppConfig;
  logLevel: string;
  logFormat: LogFormat;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  ki: 1024,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
};

/** "50ms", "2s", "1.5m", or a bare number of milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new Error(`${flag}: expected a duration like 50ms, 2s or 1m, got "${v}"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!);
}

/** "16Mi", "1MB", "65536". */
export function parseSize(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${flag}: expected a size like 16Mi or 1048576, got "${v}"`);
  return Math.round(Number(m[1]) * unit);
}

function parsePort(flag: string, v: string | undefined, optional: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (optional && n === -1) return undefined;
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${flag}: expected a port 0-65535${optional ? ' or -1 (off)' : ''}, got "${v}"`);
  return n;
}

function parseBool(flag: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  const s = String(v).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off', ''].includes(s)) return false;
  throw new Error(`${flag}: expected true or false, got "${v}"`);
}

export function eppConfigFromFlags(f: Record<string, string | undefined>, env: NodeJS.ProcessEnv): EppRun {
  if (f.configFile && f.configText) throw new Error('--config-file and --config-text are mutually exclusive');
  const config: EppConfig = {
    ...EPP_DEFAULTS,
    grpcPort: parsePort('--grpc-port', f.grpcPort, false)!,
    grpcBind: f.grpcBind ?? EPP_DEFAULTS.grpcBind,
    grpcHealthPort: parsePort('--grpc-health-port', f.grpcHealthPort, true),
    metricsPort: parsePort('--metrics-port', f.metricsPort, true),
    metricsBind: f.metricsBind ?? EPP_DEFAULTS.metricsBind,
    adminPort: parsePort('--admin-port', f.adminPort, true),
    adminBind: f.adminBind ?? EPP_DEFAULTS.adminBind,
    adminToken: f.adminToken || undefined,
    configFile: f.configFile || undefined,
    configText: f.configText || undefined,
    endpointsFile: f.endpointsFile || undefined,
    poolName: f.poolName || undefined,
    poolNamespace: f.poolNamespace || env.NAMESPACE || (f.poolName ? 'default' : undefined),
    kubeconfig: f.kubeconfig || undefined,
    redisUrl: f.redisUrl || undefined,
    redisTimeoutMs: parseDuration('--redis-timeout', f.redisTimeout ?? '250ms'),
    statePool: f.statePool || undefined,
    replicaId: f.replicaId || undefined,
    scrapeLeaseTtlMs: parseDuration('--scrape-lease-ttl', f.scrapeLeaseTtl ?? '2s'),
    discoveryLeaseTtlMs: parseDuration('--discovery-lease-ttl', f.discoveryLeaseTtl ?? '10s'),
    disableSubsetFilter: parseBool('--disable-endpoint-subset-filter', f.disableEndpointSubsetFilter),
    secureServing: parseBool('--secure-serving', f.secureServing),
    certPath: f.certPath || undefined,
    destinationHeader: (f.destinationHeader ?? EPP_DEFAULTS.destinationHeader).toLowerCase(),
    metadataNamespace: f.metadataNamespace ?? EPP_DEFAULTS.metadataNamespace,
    refreshMetricsIntervalMs: parseDuration('--refresh-metrics-interval', f.refreshMetricsInterval ?? '50ms'),
    metricsStalenessMs: parseDuration('--metrics-staleness-threshold', f.metricsStalenessThreshold ?? '2s'),
    maxRequestBodyBytes: parseSize('--max-request-body', f.maxRequestBody ?? '16Mi'),
    requestBodyMode: (f.requestBodyMode ?? EPP_DEFAULTS.requestBodyMode) as BodySendMode,
    responseBodyMode: (f.responseBodyMode ?? EPP_DEFAULTS.responseBodyMode) as BodySendMode,
    drainTimeoutMs: parseDuration('--drain-timeout', f.drainTimeout ?? '30s'),
    leaseMs: parseDuration('--lease', f.lease ?? '60s'),
  };
  if (config.refreshMetricsIntervalMs < 1) throw new Error('--refresh-metrics-interval must be at least 1ms');
  if (config.scrapeLeaseTtlMs < 100) throw new Error('--scrape-lease-ttl must be at least 100ms');
  if (config.discoveryLeaseTtlMs < 300) throw new Error('--discovery-lease-ttl must be at least 300ms');
  if (config.statePool !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(config.statePool)) {
    throw new Error(
      `--state-pool: expected a name of letters, digits, '.', '_' or '-', got "${config.statePool}"`,
    );
  }
  if (!config.endpointsFile && !config.poolName) {
    throw new Error(
      'no endpoint discovery: give --endpoints-file FILE or --pool-name NAME --pool-namespace NS',
    );
  }
  if (config.endpointsFile && config.poolName)
    throw new Error('use either --endpoints-file or --pool-name, not both');
  const zap = f.zapEncoder === 'console' ? 'pretty' : undefined;
  return {
    config,
    logLevel: f.logLevel ?? 'info',
    logFormat: ((f.logFormat !== 'json' ? f.logFormat : undefined) ?? zap ?? 'json') as LogFormat,
  };
}

export async function runEpp(run: EppRun): Promise<number | void> {
  const logger = createLogger({ level: run.logLevel, format: run.logFormat, name: 'epp' });
  let epp;
  // Secrets are masked here and again by the logger's redaction.
  logger.info({ config: loggableConfig(run.config) }, 'starting endpoint picker');
  try {
    epp = await buildEpp(run.config, { logger });
    await epp.start();
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : `cannot start: ${(e as Error).message}`;
    logger.fatal(msg);
    process.stderr.write(`epp: ${msg}\n`);
    await epp?.stop().catch(() => undefined);
    logger.flush();
    return 1;
  }
  const started = epp;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: stop now.
        logger.warn({ signal: sig }, 'second signal; exiting without draining');
        logger.flush();
        process.exit(130);
      }
      stopping = true;
      logger.info(
        { signal: sig, drainTimeoutMs: run.config.drainTimeoutMs },
        'stopping: draining open streams',
      );
      const exit = (code: number) => {
        logger.flush();
        // A stray handle (a client library's socket) must not keep a stopped EPP alive.
        setTimeout(() => process.exit(code), 200).unref();
        resolve(code);
      };
      started.stop().then(
        () => exit(0),
        (e: Error) => {
          logger.error({ err: e.message }, 'error while stopping');
          exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
