// Every option of `hermes-router state`, once. Loads no server code.
import { defineOptions, integer, optionalString, presence, required } from '../config/cli-options.js';

export const STATE_SUMMARY =
  'inspect the shared scheduling state (endpoints, signals, loads, decisions) from Redis or an EPP admin API';

export const STATE_VIEWS = ['endpoints', 'signals', 'loads', 'decisions'] as const;

export const stateOptions = defineOptions({
  redisUrl: {
    flag: '--redis-url <url>',
    env: 'REDIS_URL',
    help: 'read straight from Redis (redis://, rediss://, redis+sentinel://, redis+cluster://)',
    schema: optionalString(),
    secret: true,
  },
  redisUrlFile: {
    flag: '--redis-url-file <file>',
    env: 'REDIS_URL_FILE',
    help: 'read the Redis URL from this file',
    schema: optionalString(),
  },
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
  adminToken: {
    flag: '--admin-token <token>',
    env: 'ADMIN_TOKEN',
    help: 'bearer token of the admin API; prefer --admin-token-file: argv is world-readable',
    schema: optionalString(),
    secret: true,
  },
  adminTokenFile: {
    flag: '--admin-token-file <file>',
    env: 'ADMIN_TOKEN_FILE',
    help: 'read the admin bearer token from this file',
    schema: optionalString(),
  },
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
