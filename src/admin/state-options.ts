// Every option of `hermes-router state`, once. Loads no server code.
import {
  defineOptions,
  integer,
  optionalString,
  presence,
  required,
  secretFileOption,
  secretOption,
} from '../config/cli-options.js';

export const STATE_SUMMARY =
  "inspect the shared scheduling state (endpoints, signals, loads, decisions) from Redis or an EPP admin API, and an EPP's objectives and flow-control queues (admin API only)";

export const STATE_VIEWS = ['endpoints', 'signals', 'loads', 'decisions', 'objectives', 'queues'] as const;

export const stateOptions = defineOptions({
  redisUrl: secretOption(
    '--redis-url <url>',
    'REDIS_URL',
    'read straight from Redis (redis://, rediss://, redis+sentinel://, redis+cluster://)',
  ),
  redisUrlFile: secretFileOption('--redis-url', 'REDIS_URL', 'the Redis URL'),
  pool: {
    flag: '--pool <name>',
    env: 'POOL_NAME',
    help: "the EPPs' --pool-name (their Redis key namespace; 'default' with --endpoints-file)",
    default: 'default',
    schema: optionalString(),
  },
  adminUrl: {
    flag: '--admin-url <url>',
    env: 'ADMIN_URL',
    help: "read from a running EPP's admin API instead, e.g. http://127.0.0.1:9091",
    schema: optionalString(),
  },
  adminToken: secretOption('--admin-token <token>', 'ADMIN_TOKEN', 'bearer token of the admin API'),
  adminTokenFile: secretFileOption('--admin-token', 'ADMIN_TOKEN', 'the admin bearer token'),
  json: {
    flag: '--json',
    env: 'STATE_JSON',
    help: 'print JSON (the admin API bodies) for scripts',
    schema: presence(),
  },
  limit: {
    flag: '--limit <n>',
    env: 'STATE_LIMIT',
    help: 'decisions to show',
    default: '20',
    schema: required(integer(1)),
  },
  stalenessMs: {
    flag: '--metrics-staleness-threshold <ms>',
    env: 'METRICS_STALENESS_THRESHOLD',
    help: 'signals older than this are shown stale',
    default: '2000',
    schema: required(integer(1)),
  },
  timeoutMs: {
    flag: '--timeout <ms>',
    env: 'STATE_TIMEOUT',
    help: 'connect/request timeout',
    default: '2000',
    schema: required(integer(1)),
  },
});
