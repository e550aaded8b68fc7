import { Command, Option } from 'commander';
import { parseDurationMs } from '../../../src/common/duration.js';
import type { SubcommandModule } from '../main.js';

function intFlag(name: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name}: expected an integer ${min}..${max}, got "${raw}"`);
  }
  return n;
}

export const command: SubcommandModule['command'] = {
  name: 'cache-indexer',
  summary: 'the KV block index fed by model-server KV events, answering /match_sort with prefix hit rates',
  async run(args) {
    const cmd = new Command('hermes-router cache-indexer')
      .description(this.summary)
      .addOption(
        new Option('--port <n>', 'HTTP port for /match_sort, /healthz, /metrics (0: any free port)')
          .env('PORT')
          .default('8080'),
      )
      .addOption(new Option('--host <addr>', 'address to listen on').env('HOST').default('0.0.0.0'))
      .addOption(
        new Option(
          '--endpoints-file <file>',
          'model servers to follow (static, re-read on change); KV events from each kvEventsPort (default 5557)',
        ).env('ENDPOINTS_FILE'),
      )
      .addOption(
        new Option('--pool-name <name>', 'follow the pods of this InferencePool (Kubernetes)').env(
          'POOL_NAME',
        ),
      )
      .addOption(new Option('--pool-namespace <ns>', 'namespace of --pool-name').env('POOL_NAMESPACE'))
      .addOption(
        new Option(
          '--kubeconfig <file>',
          'kubeconfig for --pool-name (default: in-cluster or ~/.kube/config)',
        ).env('KUBECONFIG'),
      )
      .addOption(
        new Option(
          '--kv-events-bind <url>',
          'also bind a SUB socket producers connect to (topic kv@<ip>:<port>@<model>), e.g. tcp://127.0.0.1:5557',
        ).env('KV_EVENTS_BIND'),
      )
      .addOption(
        new Option('--redis-url <url>', 'keep the index in Redis (absent: in memory)').env('REDIS_URL'),
      )
      .addOption(
        new Option('--redis-prefix <prefix>', 'namespace of the index keys in Redis')
          .env('REDIS_PREFIX')
          .default('hermes:kvindex'),
      )
      .addOption(
        new Option('--redis-ttl-seconds <n>', 'TTL of index keys in Redis (garbage collection only)')
          .env('REDIS_TTL_SECONDS')
          .default('86400'),
      )
      .addOption(
        new Option('--block-size <n>', 'tokens per KV block (as the model servers)')
          .env('BLOCK_SIZE')
          .default('16'),
      )
      .addOption(
        new Option('--max-lookup-blocks <n>', 'prompt blocks looked up at most per /match_sort')
          .env('MAX_LOOKUP_BLOCKS')
          .default('8192'),
      )
      .addOption(
        new Option(
          '--tokenizer <file>',
          "a model's tokenizer.json for text prompts (default: the simple tokenizer mock-vllm uses); token-id prompts need none",
        ).env('TOKENIZER'),
      )
      .addOption(
        new Option(
          '--tokenizer-config <file>',
          'tokenizer_config.json with the chat template (default: the one beside --tokenizer, if any)',
        ).env('TOKENIZER_CONFIG'),
      )
      .addOption(
        new Option(
          '--kv-events-replay-timeout <duration>',
          "after missed KV events, how long to wait for the pod's replay socket (kvEventsReplayPort) to resend them; 0: never ask",
        )
          .env('KV_EVENTS_REPLAY_TIMEOUT')
          .default('2s'),
      )
      .addOption(new Option('--log-level <level>', 'pino level').env('LOG_LEVEL').default('info'))
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string | undefined>>();
    let flags;
    try {
      flags = {
        port: intFlag('--port', o.port, 0, 65535),
        host: o.host ?? '0.0.0.0',
        endpointsFile: o.endpointsFile,
        poolName: o.poolName,
        poolNamespace: o.poolNamespace,
        kubeconfig: o.kubeconfig,
        kvEventsBind: o.kvEventsBind,
        redisUrl: o.redisUrl,
        redisPrefix: o.redisPrefix ?? 'hermes:kvindex',
        redisTtlSeconds: intFlag('--redis-ttl-seconds', o.redisTtlSeconds, 1),
        blockSize: intFlag('--block-size', o.blockSize, 1),
        maxLookupBlocks: intFlag('--max-lookup-blocks', o.maxLookupBlocks, 1),
        tokenizer: o.tokenizer,
        tokenizerConfig: o.tokenizerConfig,
        replayTimeoutMs: parseDurationMs(o.kvEventsReplayTimeout ?? '2s', '--kv-events-replay-timeout'),
        logLevel: o.logLevel ?? 'info',
      };
    } catch (e) {
      process.stderr.write(`cache-indexer: ${(e as Error).message}\n`);
      return 2;
    }
    const { runCacheIndexer } = await import('../../cache-indexer/main.js');
    return runCacheIndexer(flags);
  },
};
