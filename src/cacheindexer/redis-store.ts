// Redis block index. Keys (prefix default `hermes:kvindex`):
//   <prefix>:b:<blockKey>   SET of pods holding the block   (TTL, refreshed on store)
//   <prefix>:pod:<pod>      SET of the pod's block keys     (TTL, refreshed on store)
// A lookup is one pipelined round trip: SMISMEMBER <block> <candidates...>
// per prompt block. Writes for one event batch are one pipeline. The TTL
// only collects garbage a crashed indexer leaves behind; removals come from
// the pods' BlockRemoved events.
import { Cluster } from 'ioredis';
import { createRedisClient, withConnectCause, type RedisClient } from '../common/redis-connection.js';
import { leadingRuns, type BlockIndexStore, type PodChange } from './index-store.js';

// Drops a pod from every block it holds, then its own set.
const CLEAR_POD = `
local keys = redis.call('SMEMBERS', KEYS[1])
for _, k in ipairs(keys) do
  redis.call('SREM', ARGV[1] .. ':b:' .. k, ARGV[2])
end
redis.call('DEL', KEYS[1])
return #keys
`;

export interface RedisIndexOptions {
  url: string;
  prefix?: string;
  ttlSeconds?: number;
  /** Called when the connection becomes ready again after a loss (the caller resyncs). */
  onReconnect?: () => void;
  onError?: (err: Error) => void;
  /** Where REDIS_PASSWORD and REDIS_TLS_CA_FILE are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export class RedisIndexStore implements BlockIndexStore {
  readonly kind = 'redis' as const;
  readonly redis: RedisClient;
  private prefix: string;
  private readonly ttl: number;
  private wasReady = false;
  private lastError: Error | undefined;
  private lost = false;

  constructor(opts: RedisIndexOptions) {
    this.prefix = opts.prefix ?? 'hermes:kvindex';
    this.ttl = opts.ttlSeconds ?? 86_400;
    // The EPP's connection factory: Sentinel, Cluster, TLS (REDIS_TLS_CA_FILE)
    // and REDIS_PASSWORD the same way. A lookup must not wait for Redis to
    // return: no offline queue, one retry, no command timeout (as before).
    this.redis = createRedisClient(opts.url, {
      commandTimeoutMs: 0,
      connectTimeoutMs: 10_000,
      retriesPerRequest: 1,
      retryDelayMs: (n) => Math.min(2_000, 50 * 2 ** Math.min(n, 6)),
      env: opts.env,
    });
    // Cluster: the pod-clearing script and pipelines touch many keys, so all
    // of the index shares one hash slot.
    if (this.redis instanceof Cluster && !this.prefix.includes('{')) this.prefix = `{${this.prefix}}`;
    this.redis.defineCommand('hrClearPod', { numberOfKeys: 1, lua: CLEAR_POD });
    this.redis.on('error', (e: Error) => {
      this.lastError = e;
      opts.onError?.(e);
    });
    this.redis.on('close', () => {
      if (this.wasReady) this.lost = true;
    });
    this.redis.on('ready', () => {
      this.wasReady = true;
      if (this.lost) {
        this.lost = false;
        opts.onReconnect?.();
      }
    });
  }

  async connect(): Promise<void> {
    this.lastError = undefined;
    try {
      await this.redis.connect();
    } catch (e) {
      throw withConnectCause(e as Error, this.lastError);
    }
  }

  private bKey(k: string): string {
    return `${this.prefix}:b:${k}`;
  }

  private podKey(pod: string): string {
    return `${this.prefix}:pod:${pod}`;
  }

  async apply(changes: readonly PodChange[]): Promise<void> {
    const p = this.redis.pipeline();
    for (const c of changes) {
      const pk = this.podKey(c.pod);
      if (c.clear)
        (p as unknown as { hrClearPod(k: string, a: string, b: string): void }).hrClearPod(
          pk,
          this.prefix,
          c.pod,
        );
      if (c.remove && c.remove.length > 0) {
        for (const k of c.remove) p.srem(this.bKey(k), c.pod);
        p.srem(pk, ...c.remove);
      }
      if (c.add && c.add.length > 0) {
        for (const k of c.add) {
          p.sadd(this.bKey(k), c.pod);
          p.expire(this.bKey(k), this.ttl);
        }
        p.sadd(pk, ...c.add);
        p.expire(pk, this.ttl);
      }
    }
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0]!;
  }

  async replacePod(pod: string, keys: readonly string[]): Promise<void> {
    await this.apply([{ pod, clear: true, add: [...keys] }]);
  }

  async lookup(keys: readonly string[], candidates: readonly string[]): Promise<number[]> {
    if (keys.length === 0 || candidates.length === 0) return new Array<number>(candidates.length).fill(0);
    const p = this.redis.pipeline();
    for (const k of keys) p.smismember(this.bKey(k), ...candidates);
    const res = (await p.exec()) ?? [];
    const rows: number[][] = new Array(keys.length);
    for (let i = 0; i < res.length; i++) {
      const [err, v] = res[i]!;
      if (err) throw err;
      rows[i] = v as number[];
    }
    return leadingRuns(keys.length, candidates, (b, c) => rows[b]![c] === 1);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
