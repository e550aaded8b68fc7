import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';
import { parseDurationMs } from '../../../src/common/duration.js';

export const command: SubcommandModule['command'] = {
  name: 'pd-proxy',
  summary: 'the leader of a PD group: prefill on one pod, decode on another, answer streamed back',
  async run(args) {
    const cmd = new Command('hermes-router pd-proxy')
      .description(this.summary)
      .addOption(new Option('--port <n>', 'HTTP port').env('PORT').default('8000'))
      .addOption(new Option('--host <addr>', 'address to listen on').env('HOST').default('0.0.0.0'))
      .addOption(new Option('--prefill <list>', 'prefill pods of this group, host:port,...').env('PREFILL'))
      .addOption(new Option('--decode <list>', 'decode pods of this group, host:port,...').env('DECODE'))
      .addOption(
        new Option(
          '--endpoints-file <file>',
          'discover the group from an endpoints file (with --group-id)',
        ).env('ENDPOINTS_FILE'),
      )
      .addOption(new Option('--group-id <id>', "this group's pdGroupID label value").env('GROUP_ID'))
      .addOption(
        new Option('--pd-label-name <name>', 'role label')
          .env('PD_LABEL_NAME')
          .default('openfuyao.com/pdRole'),
      )
      .addOption(
        new Option('--pd-group-label-name <name>', 'group label')
          .env('PD_GROUP_LABEL_NAME')
          .default('openfuyao.com/pdGroupID'),
      )
      .addOption(
        new Option('--prefill-value <v>', 'role label value of prefill pods')
          .env('PREFILL_VALUE')
          .default('prefill'),
      )
      .addOption(
        new Option('--decode-value <v>', 'role label value of decode pods')
          .env('DECODE_VALUE')
          .default('decode'),
      )
      .addOption(
        new Option(
          '--timeout <duration>',
          'wait at most this long for an upstream answer (and between stream chunks)',
        )
          .env('TIMEOUT')
          .default('600s'),
      )
      .addOption(
        new Option('--connect-timeout <duration>', 'TCP connect timeout to a pod')
          .env('CONNECT_TIMEOUT')
          .default('5s'),
      )
      .addOption(
        new Option(
          '--served-headers',
          'add x-hermes-pd-prefill / x-hermes-pd-decode response headers naming the pods used (debugging; reveals pod addresses)',
        ).env('SERVED_HEADERS'),
      )
      .addOption(new Option('--log-level <level>', 'pino level').env('LOG_LEVEL').default('info'))
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string>>();
    const servedHeaders = Boolean(o.servedHeaders);
    const port = Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`pd-proxy: --port: expected a port number, got "${o.port}"\n`);
      return 2;
    }
    let timeoutMs: number;
    let connectTimeoutMs: number;
    try {
      timeoutMs = parseDurationMs(o.timeout!, '--timeout');
      connectTimeoutMs = parseDurationMs(o.connectTimeout!, '--connect-timeout');
    } catch (e) {
      process.stderr.write(`pd-proxy: ${(e as Error).message}\n`);
      return 2;
    }
    const { runPdProxy } = await import('../../pd-proxy/main.js');
    return runPdProxy({
      port,
      host: o.host!,
      prefill: o.prefill,
      decode: o.decode,
      endpointsFile: o.endpointsFile,
      groupId: o.groupId,
      pdLabelName: o.pdLabelName!,
      pdGroupLabelName: o.pdGroupLabelName!,
      prefillValue: o.prefillValue!,
      decodeValue: o.decodeValue!,
      timeoutMs,
      connectTimeoutMs,
      servedHeaders,
      logLevel: o.logLevel!,
    });
  },
};
