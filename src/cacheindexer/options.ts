// Every option of `hermes-router cache-indexer`, once (flag, env, help,
// default, range), and the checks between them. Loads no server code.
import {
  defineOptions,
  duration,
  hostOption,
  integer,
  logLevelOption,
  optionalString,
  type OptionValues,
  port,
  required,
  secretFileOption,
  secretOption,
} from '../config/cli-options.js';
import { resolveSecret } from '../common/secrets.js';

export const CACHE_INDEXER_SUMMARY =
  'the KV block index fed by model-server KV events, answering /match_sort with prefix hit rates';

export const cacheIndexerOptions = defineOptions({
  port: {
    flag: '--port <n>',
    env: 'PORT',
    help: 'HTTP port for /match_sort, /healthz, /metrics (0: any free port)',
    default: '8080',
    schema: required(port()),
  },
  host: hostOption('0.0.0.0'),
  endpointsFile: {
    flag: '--endpoints-file <file>',
    env: 'ENDPOINTS_FILE',
    help: 'model servers to follow (static, re-read on change); KV events from each kvEventsPort (default 5557)',
    schema: optionalString(),
  },
  poolName: {
    flag: '--pool-name <name>',
    env: 'POOL_NAME',
    help: 'follow the pods of this InferencePool (Kubernetes)',
    schema: optionalString(),
  },
  poolNamespace: {
    flag: '--pool-namespace <ns>',
    env: 'POOL_NAMESPACE',
    help: 'namespace of --pool-name',
    schema: optionalString(),
  },
  kubeconfig: {
    flag: '--kubeconfig <file>',
    env: 'KUBECONFIG',
    help: 'kubeconfig for --pool-name (default: in-cluster or ~/.kube/config)',
    schema: optionalString(),
  },
  kvEventsBind: {
    flag: '--kv-events-bind <url>',
    env: 'KV_EVENTS_BIND',
    help: 'also bind a SUB socket producers connect to (topic kv@<ip>:<port>@<model>), e.g. tcp://127.0.0.1:5557',
    schema: optionalString(),
  },
  redisUrl: secretOption(
    '--redis-url <url>',
    'REDIS_URL',
    'keep the index in Redis (absent: in memory); or give the password in REDIS_PASSWORD(_FILE)',
  ),
  redisUrlFile: secretFileOption('--redis-url', 'REDIS_URL', 'the Redis URL'),
  redisPrefix: {
    flag: '--redis-prefix <prefix>',
    env: 'REDIS_PREFIX',
    help: 'namespace of the index keys in Redis',
    default: 'hermes:kvindex',
    schema: required(optionalString()),
  },
  redisTtlSeconds: {
    flag: '--redis-ttl-seconds <n>',
    env: 'REDIS_TTL_SECONDS',
    help: 'TTL of index keys in Redis (garbage collection only)',
    default: '86400',
    schema: required(integer(1)),
  },
  blockSize: {
    flag: '--block-size <n>',
    env: 'BLOCK_SIZE',
    help: 'tokens per KV block (as the model servers)',
    default: '16',
    schema: required(integer(1)),
  },
  maxLookupBlocks: {
    flag: '--max-lookup-blocks <n>',
    env: 'MAX_LOOKUP_BLOCKS',
    help: 'prompt blocks looked up at most per /match_sort',
    default: '8192',
    schema: required(integer(1)),
  },
  tokenizer: {
    flag: '--tokenizer <file>',
    env: 'TOKENIZER',
    help: "a model's tokenizer.json for text prompts (default: the simple tokenizer mock-vllm uses); token-id prompts need none",
    schema: optionalString(),
  },
  tokenizerConfig: {
    flag: '--tokenizer-config <file>',
    env: 'TOKENIZER_CONFIG',
    help: 'tokenizer_config.json with the chat template (default: the one beside --tokenizer, if any)',
    schema: optionalString(),
  },
  replayTimeoutMs: {
    flag: '--kv-events-replay-timeout <duration>',
    env: 'KV_EVENTS_REPLAY_TIMEOUT',
    help: "after missed KV events, how long to wait for the pod's replay socket (kvEventsReplayPort) to resend them; 0: never ask",
    default: '2s',
    schema: required(duration()),
  },
  logLevel: logLevelOption(),
});

export type CacheIndexerConfig = Omit<OptionValues<typeof cacheIndexerOptions>, 'redisUrlFile'>;

/** The option values -> what buildCacheIndexer runs on; throws naming the flag(s) at fault. */
export function cacheIndexerConfigFrom(o: OptionValues<typeof cacheIndexerOptions>): CacheIndexerConfig {
  if (!o.endpointsFile && !o.poolName && !o.kvEventsBind) {
    throw new Error(
      'nothing to follow: give --endpoints-file, --pool-name/--pool-namespace or --kv-events-bind',
    );
  }
  if (o.poolName && !o.poolNamespace) throw new Error('--pool-name needs --pool-namespace');
  const { redisUrlFile, ...rest } = o;
  return { ...rest, redisUrl: resolveSecret({ flag: '--redis-url', value: o.redisUrl, file: redisUrlFile }) };
}
