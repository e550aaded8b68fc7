// The one Redis connection factory (EPP state store and cache-indexer). One
// URL names the deployment shape:
//   redis://[user:pass@]host:port[/db]                 standalone
//   rediss://...                                       standalone over TLS
//   redis+sentinel://[:pass@]h1:p1,h2:p2/master[/db]   Sentinel (rediss+sentinel: TLS)
//   redis+cluster://[:pass@]h1:p1,h2:p2                Cluster (rediss+cluster: TLS)
// The password may instead come from REDIS_PASSWORD or the file named by
// REDIS_PASSWORD_FILE (the whole URL from --redis-url-file); a CA bundle for
// TLS from REDIS_TLS_CA_FILE.
// URL parsing and redaction: redis-url.ts.
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from './redis-url.js';
import { resolveSecret } from './secrets.js';

export { parseRedisUrl, redactUrl, RedisUrlError, type ParsedRedisUrl } from './redis-url.js';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** Per-command timeout (default 250 ms); 0: none. A hung Redis fails fast instead of stalling requests. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Retries of one command across reconnects (default 0: fail fast). */
  retriesPerRequest?: number;
  /** Pause before reconnect attempt `n` (default: 50 ms x n, at most 1 s). */
  retryDelayMs?: (attempt: number) => number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Builds a lazily connecting ioredis client. Commands fail fast when Redis
 * is unreachable (no offline queue, no per-command retries by default): the
 * callers answer from local state instead of waiting.
 */
export function createRedisClient(url: string, opts: RedisConnectOptions = {}): RedisClient {
  const env = opts.env ?? process.env;
  const p = parseRedisUrl(url);
  const password =
    p.password ??
    resolveSecret({
      flag: 'REDIS_PASSWORD',
      fileFlag: 'REDIS_PASSWORD_FILE',
      value: env.REDIS_PASSWORD,
      file: env.REDIS_PASSWORD_FILE,
    });
  const tls = p.tls ? tlsOptions(env) : undefined;
  const commandTimeout = opts.commandTimeoutMs ?? 250;
  const retryDelay = opts.retryDelayMs ?? ((times: number) => Math.min(50 * times, 1_000));
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 1_000,
    ...(commandTimeout > 0 ? { commandTimeout } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: opts.retriesPerRequest ?? 0,
    // Keep trying in the background; callers serve meanwhile.
    retryStrategy: retryDelay,
    ...(p.username ? { username: p.username } : {}),
    ...(password ? { password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (p.kind === 'cluster') {
    const copts: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1_000),
      redisOptions: base,
    };
    return quiet(new Cluster(p.hosts, copts));
  }
  if (p.kind === 'sentinel') {
    return quiet(
      new Redis({
        ...base,
        sentinels: p.hosts,
        name: p.masterName!,
        ...(p.db !== undefined ? { db: p.db } : {}),
        ...(password ? { sentinelPassword: password } : {}),
        ...(tls ? { sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
      }),
    );
  }
  const h = p.hosts[0]!;
  return quiet(
    new Redis({ ...base, host: h.host, port: h.port, ...(p.db !== undefined ? { db: p.db } : {}) }),
  );
}

/**
 * ioredis rejects a failed connect() with "Connection is closed." and emits
 * the reason (TLS verification, WRONGPASS, ECONNREFUSED) as an 'error'
 * event; put that reason into the error the operator sees.
 */
export function withConnectCause(err: Error, cause: Error | undefined): Error {
  if (!cause || cause === err || err.message.includes(cause.message)) return err;
  return new Error(`Redis connection failed: ${cause.message}`, { cause });
}

/** Connection errors surface as failed calls; without a listener ioredis would also print each one. */
function quiet<C extends RedisClient>(c: C): C {
  c.on('error', () => undefined);
  return c;
}

function tlsOptions(env: NodeJS.ProcessEnv): { ca?: Buffer } {
  const caFile = env.REDIS_TLS_CA_FILE;
  return caFile ? { ca: readFileSync(caFile) } : {};
}
