// Picks the StateStore backend from --redis-url: absent -> in-memory; present
// -> Redis behind the resilient wrapper (a replica keeps scheduling when
// Redis is down and resynchronises when it returns). Redis being unreachable
// at start-up is not fatal: the store starts degraded and keeps probing.
import { ResilientStateStore, type StateLogger } from './resilient-store.js';
import { MemoryStateStore } from './memory-store.js';
import { createRedisClient, RedisStateStore, redactUrl, withConnectCause } from './redis-store.js';
import type { StateStore } from './store.js';

export interface CreateStoreOptions {
  redisUrl?: string;
  /** InferencePool (or demo stack) name: Redis keys are namespaced by it. */
  pool: string;
  logger?: StateLogger;
  /** Per-command Redis timeout (default 250 ms): a hung Redis degrades instead of stalling requests. */
  commandTimeoutMs?: number;
  /** Redis connect timeout (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Probe interval while degraded (default 500 ms). */
  probeIntervalMs?: number;
  decisionsLimit?: number;
  /** TTL of the approximate prefix index entries in Redis (default 1 h). */
  prefixTtlMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function createStateStore(opts: CreateStoreOptions): Promise<StateStore> {
  if (!opts.redisUrl) return new MemoryStateStore({ decisionsLimit: opts.decisionsLimit });
  return createRedisStateStore({ ...opts, redisUrl: opts.redisUrl });
}

/** The Redis backend behind the resilient wrapper (what `epp --redis-url` runs on). */
export async function createRedisStateStore(
  opts: CreateStoreOptions & { redisUrl: string },
): Promise<ResilientStateStore> {
  const client = createRedisClient(opts.redisUrl, {
    commandTimeoutMs: opts.commandTimeoutMs,
    connectTimeoutMs: opts.connectTimeoutMs,
    env: opts.env,
  });
  const redis = new RedisStateStore(client, {
    pool: opts.pool,
    decisionsLimit: opts.decisionsLimit,
    prefixTtlMs: opts.prefixTtlMs,
    // The wrapper degrades on a failed background commit and restores the pick on resync.
    commitWithoutWaiting: true,
  });
  const store = new ResilientStateStore(redis, {
    logger: opts.logger,
    probeIntervalMs: opts.probeIntervalMs,
    decisionsLimit: opts.decisionsLimit,
  });
  redis.onBackgroundError = (op, e) => store.backgroundFailed(op, e);
  // ioredis reports connection trouble as 'error' events; the wrapper counts
  // failed calls, so these only need to be kept from crashing the process.
  // The last one is kept so the degraded warning names the cause (TLS, auth).
  let lastError: Error | undefined;
  client.on('error', (e: Error) => {
    lastError = e;
  });
  client.on('ready', () => {
    lastError = undefined;
  });
  // A dropped connection may mean Redis restarted empty: go degraded now, even
  // if idle, so the resync re-publishes this replica's open charges.
  client.on('close', () =>
    store.markUnavailable(withConnectCause(new Error('Redis connection closed'), lastError)),
  );
  try {
    await redis.connect();
    opts.logger?.info({ redis: redactUrl(opts.redisUrl), pool: opts.pool }, 'shared state in Redis');
  } catch (e) {
    store.markUnavailable(e as Error);
  }
  return store;
}
