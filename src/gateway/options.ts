// Every option of `hermes-router gateway-dev`, once. Loads no server code.
import {
  bool,
  defineOptions,
  duration,
  hostOption,
  logLevelOption,
  oneOf,
  optionalString,
  port,
  required,
} from '../config/cli-options.js';
import { DESTINATION_HEADER } from '../common/wire-headers.js';

export const GATEWAY_DEV_SUMMARY =
  'a small Envoy-like front door speaking ext_proc to the EPP (local runs without Docker)';

const MODES = ['full-duplex', 'buffered'] as const;

export const gatewayDevOptions = defineOptions({
  port: {
    flag: '--port <n>',
    env: 'PORT',
    help: 'HTTP port for clients',
    default: '8081',
    schema: required(port()),
  },
  host: hostOption('127.0.0.1'),
  epp: {
    flag: '--epp <host:port>',
    env: 'EPP',
    help: 'the EPP ext_proc gRPC address',
    default: '127.0.0.1:9002',
    schema: required(optionalString()),
  },
  eppTls: {
    flag: '--epp-tls [bool]',
    env: 'EPP_TLS',
    help: 'TLS to the EPP, accepting its self-signed certificate as gateways do',
    default: 'false',
    preset: 'true',
    schema: bool(),
  },
  mode: {
    flag: '--processing-mode <mode>',
    env: 'PROCESSING_MODE',
    help: 'ext_proc body mode for request and response',
    default: 'full-duplex',
    choices: MODES,
    schema: required(oneOf(MODES)),
  },
  timeoutMs: {
    flag: '--timeout <duration>',
    env: 'TIMEOUT',
    help: 'upstream timeout: response headers, and between body chunks',
    default: '300s',
    schema: required(duration()),
  },
  eppTimeoutMs: {
    flag: '--epp-timeout <duration>',
    env: 'EPP_TIMEOUT',
    help: 'how long the EPP may take to pick (Envoy message_timeout)',
    default: '10s',
    schema: required(duration()),
  },
  connectTimeoutMs: {
    flag: '--connect-timeout <duration>',
    env: 'CONNECT_TIMEOUT',
    help: 'TCP connect timeout to an endpoint before trying the next',
    default: '3s',
    schema: required(duration()),
  },
  destinationHeader: {
    flag: '--destination-header <name>',
    env: 'DESTINATION_HEADER',
    help: 'header (and envoy.lb metadata key) naming the chosen endpoints',
    default: DESTINATION_HEADER,
    schema: required(optionalString()),
  },
  logLevel: logLevelOption(),
});
