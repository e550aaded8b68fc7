// Every option of `hermes-router demo`, once. Loads no server code.
import {
  bool,
  defineOptions,
  duration,
  integer,
  logLevelOption,
  number,
  optionalString,
  type OptionValues,
  required,
} from '../config/cli-options.js';
import type { DemoFlags } from './run.js';

export const DEMO_SUMMARY =
  'the whole stack on loopback in one command: gateway, EPP, mock vLLMs, cache-indexer (--pd: a PD group)';

export const demoOptions = defineOptions({
  gatewayPort: {
    flag: '--port <n>',
    env: 'PORT',
    help: 'gateway port (the other processes take free ports)',
    default: '8081',
    schema: required(integer(1, 65535)),
  },
  pd: {
    flag: '--pd [bool]',
    env: 'PD',
    help: 'run a PD group (leader pd-proxy + prefill + decode) with epp-pd-bucket',
    default: 'false',
    preset: 'true',
    schema: bool(),
  },
  pdGroups: {
    flag: '--pd-groups <n>',
    env: 'PD_GROUPS',
    help: 'PD groups with --pd',
    default: '1',
    schema: required(integer(1, 8)),
  },
  pdPrefill: {
    flag: '--pd-prefill <n>',
    env: 'PD_PREFILL',
    help: 'prefill pods per PD group',
    default: '1',
    schema: required(integer(1, 8)),
  },
  pdDecode: {
    flag: '--pd-decode <n>',
    env: 'PD_DECODE',
    help: 'decode pods per PD group',
    default: '1',
    schema: required(integer(1, 8)),
  },
  profile: {
    flag: '--profile <file>',
    env: 'PROFILE',
    help: 'any EndpointPickerConfig or values file (default: examples/profiles/epp-kv-cache-aware.yaml)',
    schema: optionalString(),
  },
  mocks: {
    flag: '--mocks <n>',
    env: 'MOCKS',
    help: 'aggregated model servers',
    default: '3',
    schema: required(integer(1, 32)),
  },
  model: {
    flag: '--model <name>',
    env: 'MODEL',
    help: 'model name the mock servers serve',
    default: 'mock-model',
    schema: required(optionalString()),
  },
  redisUrl: {
    flag: '--redis-url <url>',
    env: 'REDIS_URL',
    help: 'shared state in Redis instead of memory',
    schema: optionalString(),
    secret: true,
  },
  timeScale: {
    flag: '--time-scale <x>',
    env: 'TIME_SCALE',
    help: 'mock servers run x times faster than real time',
    default: '1',
    schema: required(number(Number.MIN_VALUE)),
  },
  progressMs: {
    flag: '--progress-interval <duration>',
    env: 'PROGRESS_INTERVAL',
    help: 'how often to print traffic progress',
    default: '2s',
    schema: required(duration()),
  },
  readyTimeoutMs: {
    flag: '--ready-timeout <duration>',
    env: 'READY_TIMEOUT',
    help: 'how long each process may take to start',
    default: '30s',
    schema: required(duration()),
  },
  keepLogs: {
    flag: '--keep-logs [bool]',
    env: 'KEEP_LOGS',
    help: 'keep the temp dir with logs and generated files',
    default: 'false',
    preset: 'true',
    schema: bool(),
  },
  logLevel: logLevelOption('log level of the child processes'),
});

export function demoFlagsFrom(o: OptionValues<typeof demoOptions>): DemoFlags {
  return { ...o, mockArgs: [] };
}
