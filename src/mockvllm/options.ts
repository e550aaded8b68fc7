// Every option of `hermes-router mock-vllm`: flag, env, help and range here;
// the default values are defaultMockVllmConfig's (config.ts), written once.
import {
  anyString,
  defineOptions,
  hostOption,
  integer,
  logLevelOption,
  number,
  oneOf,
  optionalString,
  type OptionValues,
  port,
  required,
} from '../config/cli-options.js';
import { defaultMockVllmConfig as D, type MockVllmConfig } from './config.js';

export const MOCK_VLLM_SUMMARY =
  'a simulated vLLM model server (OpenAI API, vLLM metrics, prefix cache, queueing, KV events, PD roles)';

const ROLES = ['prefill', 'decode', 'both'] as const;
const LEGACY = ['off', 'both', 'only'] as const;
const ENCODINGS = ['map', 'array'] as const;

export const mockVllmOptions = defineOptions({
  port: {
    flag: '--port <n>',
    env: 'PORT',
    help: 'HTTP port (0: any free port)',
    default: String(D.port),
    schema: required(port()),
  },
  host: hostOption(D.host, 'address to listen on (HTTP and ZMQ)'),
  model: {
    flag: '--model <name>',
    env: 'MODEL',
    help: 'served model name',
    default: D.model,
    schema: required(optionalString()),
  },
  role: {
    flag: '--role <role>',
    env: 'ROLE',
    help: 'P/D role',
    default: D.role,
    choices: ROLES,
    schema: required(oneOf(ROLES)),
  },
  prefillTokensPerS: {
    flag: '--prefill-tokens-per-s <n>',
    env: 'PREFILL_TOKENS_PER_S',
    help: 'prefill speed for uncached prompt tokens',
    default: String(D.prefillTokensPerS),
    schema: required(number(Number.MIN_VALUE)),
  },
  decodeMsPerToken: {
    flag: '--decode-ms-per-token <ms>',
    env: 'DECODE_MS_PER_TOKEN',
    help: 'time per generated token',
    default: String(D.decodeMsPerToken),
    schema: required(number(0)),
  },
  maxNumSeqs: {
    flag: '--max-num-seqs <n>',
    env: 'MAX_NUM_SEQS',
    help: 'requests running at once; the rest wait',
    default: String(D.maxNumSeqs),
    schema: required(integer(1)),
  },
  kvCacheBlocks: {
    flag: '--kv-cache-blocks <n>',
    env: 'KV_CACHE_BLOCKS',
    help: 'KV cache size in blocks',
    default: String(D.kvCacheBlocks),
    schema: required(integer(1)),
  },
  blockSize: {
    flag: '--block-size <n>',
    env: 'BLOCK_SIZE',
    help: 'tokens per KV block',
    default: String(D.blockSize),
    schema: required(integer(1)),
  },
  timeScale: {
    flag: '--time-scale <x>',
    env: 'TIME_SCALE',
    help: 'simulated time runs x times faster than real time',
    default: String(D.timeScale),
    schema: required(number(Number.MIN_VALUE)),
  },
  defaultMaxTokens: {
    flag: '--default-max-tokens <n>',
    env: 'DEFAULT_MAX_TOKENS',
    help: 'output tokens when the request sets no max_tokens',
    default: String(D.defaultMaxTokens),
    schema: required(integer(1)),
  },
  legacyMetrics: {
    flag: '--legacy-metrics [mode]',
    env: 'LEGACY_METRICS',
    help: 'also (both) or only (only) emit vllm:gpu_cache_usage_perc',
    default: D.legacyMetrics,
    preset: 'both',
    choices: LEGACY,
    schema: required(oneOf(LEGACY)),
  },
  kvEventsPort: {
    flag: '--kv-events-port <n>',
    env: 'KV_EVENTS_PORT',
    help: 'bind a ZMQ PUB socket for KV events on this port (0: off)',
    default: String(D.kvEventsPort),
    schema: required(port()),
  },
  kvEventsReplayPort: {
    flag: '--kv-events-replay-port <n>',
    env: 'KV_EVENTS_REPLAY_PORT',
    help: 'bind a ZMQ ROUTER replay socket on this port (0: off)',
    default: String(D.kvEventsReplayPort),
    schema: required(port()),
  },
  kvEventsConnect: {
    flag: '--kv-events-connect <endpoints>',
    env: 'KV_EVENTS_CONNECT',
    help: "connect the PUB socket to consumers' bound SUB sockets, tcp://host:port,...",
    schema: optionalString().transform((v, ctx) => {
      const list = (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = list.find((c) => !/^tcp:\/\/[^:]+:\d+$/.test(c));
      if (bad)
        ctx.addIssue({ code: 'custom', message: `expected tcp://host:port, got "${bad}" in the list` });
      return list;
    }),
  },
  kvEventsTopic: {
    flag: '--kv-events-topic <topic>',
    env: 'KV_EVENTS_TOPIC',
    help: 'topic frame (default kv@<host>:<port>@<model>)',
    // An empty topic is a valid ZMQ topic: keep '' (only unset means the default).
    schema: anyString(),
  },
  kvEventsEncoding: {
    flag: '--kv-events-encoding <enc>',
    env: 'KV_EVENTS_ENCODING',
    help: 'payload encoding: map (current vLLM) or array (older vLLM)',
    default: D.kvEventsEncoding,
    choices: ENCODINGS,
    schema: required(oneOf(ENCODINGS)),
  },
  kvEventsBufferSize: {
    flag: '--kv-events-buffer <n>',
    env: 'KV_EVENTS_BUFFER',
    help: 'event batches kept for replay',
    default: String(D.kvEventsBufferSize),
    schema: required(integer(1)),
  },
  advertiseHost: {
    flag: '--advertise-host <addr>',
    env: 'ADVERTISE_HOST',
    help: 'host named in kv_transfer_params and the topic (default --host)',
    schema: optionalString(),
  },
  loraModules: {
    flag: '--lora-modules <names>',
    env: 'LORA_MODULES',
    help: 'LoRA adapters served besides --model, name[=path],... (vllm:lora_requests_info is then reported)',
    schema: optionalString().transform((v) =>
      (v ?? '')
        .split(',')
        .map((s) => s.split('=')[0]!.trim())
        .filter(Boolean),
    ),
  },
  maxLoras: {
    flag: '--max-loras <n>',
    env: 'MAX_LORAS',
    help: 'adapters in one batch, reported as max_lora',
    default: String(D.maxLoras),
    schema: required(integer(1)),
  },
  logLevel: logLevelOption(),
});

export function mockVllmConfigFrom(o: OptionValues<typeof mockVllmOptions>): MockVllmConfig {
  const { logLevel: _logLevel, kvEventsTopic, advertiseHost, ...rest } = o;
  const cfg: MockVllmConfig = { ...D, ...rest };
  if (kvEventsTopic !== undefined) cfg.kvEventsTopic = kvEventsTopic;
  if (advertiseHost) cfg.advertiseHost = advertiseHost;
  return cfg;
}
