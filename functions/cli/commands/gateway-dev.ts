import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';
import { parseDurationMs } from '../../../src/common/duration.js';

export const command: SubcommandModule['command'] = {
  name: 'gateway-dev',
  summary: 'a small Envoy-like front door speaking ext_proc to the EPP (local runs without Docker)',
  async run(args) {
    const cmd = new Command('hermes-router gateway-dev')
      .description(this.summary)
      .addOption(new Option('--port <n>', 'HTTP port for clients').env('PORT').default('8081'))
      .addOption(new Option('--host <addr>', 'address to listen on').env('HOST').default('127.0.0.1'))
      .addOption(
        new Option('--epp <host:port>', 'the EPP ext_proc gRPC address').env('EPP').default('127.0.0.1:9002'),
      )
      .addOption(
        new Option('--epp-tls', 'TLS to the EPP, accepting its self-signed certificate as gateways do')
          .env('EPP_TLS')
          .default(false),
      )
      .addOption(
        new Option('--processing-mode <mode>', 'ext_proc body mode for request and response')
          .choices(['full-duplex', 'buffered'])
          .env('PROCESSING_MODE')
          .default('full-duplex'),
      )
      .addOption(
        new Option('--timeout <duration>', 'upstream timeout: response headers, and between body chunks')
          .env('TIMEOUT')
          .default('300s'),
      )
      .addOption(
        new Option('--epp-timeout <duration>', 'how long the EPP may take to pick (Envoy message_timeout)')
          .env('EPP_TIMEOUT')
          .default('10s'),
      )
      .addOption(
        new Option(
          '--connect-timeout <duration>',
          'TCP connect timeout to an endpoint before trying the next',
        )
          .env('CONNECT_TIMEOUT')
          .default('3s'),
      )
      .addOption(
        new Option(
          '--destination-header <name>',
          'header (and envoy.lb metadata key) naming the chosen endpoints',
        )
          .env('DESTINATION_HEADER')
          .default('x-gateway-destination-endpoint'),
      )
      .addOption(new Option('--log-level <level>', 'pino level').env('LOG_LEVEL').default('info'))
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string | boolean>>();
    const port = Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`gateway-dev: --port: expected a port number, got "${String(o.port)}"\n`);
      return 2;
    }
    let timeoutMs: number, eppTimeoutMs: number, connectTimeoutMs: number;
    try {
      timeoutMs = parseDurationMs(String(o.timeout), '--timeout');
      eppTimeoutMs = parseDurationMs(String(o.eppTimeout), '--epp-timeout');
      connectTimeoutMs = parseDurationMs(String(o.connectTimeout), '--connect-timeout');
    } catch (e) {
      process.stderr.write(`gateway-dev: ${(e as Error).message}\n`);
      return 2;
    }
    const { runGatewayDev } = await import('../../gateway-dev/main.js');
    return runGatewayDev({
      port,
      host: String(o.host),
      epp: String(o.epp),
      eppTls: o.eppTls === true || o.eppTls === 'true',
      mode: o.processingMode as 'full-duplex' | 'buffered',
      timeoutMs,
      eppTimeoutMs,
      connectTimeoutMs,
      destinationHeader: String(o.destinationHeader),
      logLevel: String(o.logLevel),
    });
  },
};
