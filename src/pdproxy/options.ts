// Every option of `hermes-router pd-proxy`, once. Loads no server code.
import {
  defineOptions,
  duration,
  hostOption,
  logLevelOption,
  optionalString,
  type OptionValues,
  port,
  presence,
  required,
} from '../config/cli-options.js';
import { defaultPdLabels, parsePodList } from './group.js';

export const PD_PROXY_SUMMARY =
  'the leader of a PD group: prefill on one pod, decode on another, answer streamed back';

export const pdProxyOptions = defineOptions({
  port: { flag: '--port <n>', env: 'PORT', help: 'HTTP port', default: '8000', schema: required(port()) },
  host: hostOption('0.0.0.0'),
  prefill: {
    flag: '--prefill <list>',
    env: 'PREFILL',
    help: 'prefill pods of this group, host:port,...',
    schema: optionalString(),
  },
  decode: {
    flag: '--decode <list>',
    env: 'DECODE',
    help: 'decode pods of this group, host:port,...',
    schema: optionalString(),
  },
  endpointsFile: {
    flag: '--endpoints-file <file>',
    env: 'ENDPOINTS_FILE',
    help: 'discover the group from an endpoints file (with --group-id)',
    schema: optionalString(),
  },
  groupId: {
    flag: '--group-id <id>',
    env: 'GROUP_ID',
    help: "this group's pdGroupID label value",
    schema: optionalString(),
  },
  pdLabelName: {
    flag: '--pd-label-name <name>',
    env: 'PD_LABEL_NAME',
    help: 'role label',
    default: defaultPdLabels.roleLabel,
    schema: required(optionalString()),
  },
  pdGroupLabelName: {
    flag: '--pd-group-label-name <name>',
    env: 'PD_GROUP_LABEL_NAME',
    help: 'group label',
    default: defaultPdLabels.groupLabel,
    schema: required(optionalString()),
  },
  prefillValue: {
    flag: '--prefill-value <v>',
    env: 'PREFILL_VALUE',
    help: 'role label value of prefill pods',
    default: defaultPdLabels.prefillValue,
    schema: required(optionalString()),
  },
  decodeValue: {
    flag: '--decode-value <v>',
    env: 'DECODE_VALUE',
    help: 'role label value of decode pods',
    default: defaultPdLabels.decodeValue,
    schema: required(optionalString()),
  },
  timeoutMs: {
    flag: '--timeout <duration>',
    env: 'TIMEOUT',
    help: 'wait at most this long for an upstream answer (and between stream chunks)',
    default: '600s',
    schema: required(duration()),
  },
  connectTimeoutMs: {
    flag: '--connect-timeout <duration>',
    env: 'CONNECT_TIMEOUT',
    help: 'TCP connect timeout to a pod',
    default: '5s',
    schema: required(duration()),
  },
  servedHeaders: {
    flag: '--served-headers',
    env: 'SERVED_HEADERS',
    help: 'add x-hermes-pd-prefill / x-hermes-pd-decode response headers naming the pods used (debugging; reveals pod addresses)',
    schema: presence(),
  },
  logLevel: logLevelOption(),
});

export type PdProxyConfig = OptionValues<typeof pdProxyOptions>;

/** Checks between options; throws naming the flags. */
export function pdProxyConfigFrom(o: PdProxyConfig): PdProxyConfig {
  if (o.endpointsFile && !o.groupId) {
    throw new Error('--endpoints-file needs --group-id (the openfuyao.com/pdGroupID of this group)');
  }
  if (!o.endpointsFile && !(o.prefill && o.decode)) {
    throw new Error(
      'name the group: --prefill HOST:PORT,... and --decode HOST:PORT,..., or --endpoints-file FILE --group-id ID',
    );
  }
  if (!o.endpointsFile) {
    parsePodList('--prefill', o.prefill!);
    parsePodList('--decode', o.decode!);
  }
  return o;
}
