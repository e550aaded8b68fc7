// `hermes-router gateway-dev`: flags -> gateway -> HTTP server -> stop on
// signals. Options: src/gateway/options.ts; the gateway: src/gateway/.
import {
  parseArgs,
  usageError,
  type FunctionCommand,
  type OptionValues,
} from '../../src/config/cli-options.js';
import { GATEWAY_DEV_SUMMARY, gatewayDevOptions } from '../../src/gateway/options.js';

export const command: FunctionCommand = {
  name: 'gateway-dev',
  summary: GATEWAY_DEV_SUMMARY,
  async run(args) {
    let o: OptionValues<typeof gatewayDevOptions>;
    try {
      o = parseArgs('hermes-router gateway-dev', GATEWAY_DEV_SUMMARY, gatewayDevOptions, args);
    } catch (e) {
      return usageError('gateway-dev', e);
    }
    const [
      { createServer },
      { default: pino },
      { createGateway },
      { closeHttp, listenHttp },
      { stopOnSignal },
    ] = await Promise.all([
      import('node:http'),
      import('pino'),
      import('../../src/gateway/gateway.js'),
      import('../../src/common/http-server.js'),
      import('../../src/common/lifecycle.js'),
    ]);
    const { logLevel, port, host, ...gatewayOptions } = o;
    const logger = pino({ name: 'gateway-dev', level: logLevel });
    const gateway = createGateway({ ...gatewayOptions, logger });
    const server = createServer((req, res) => gateway.handle(req, res));
    // Long SSE answers must not be cut by Node's default request timeout.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    let bound: number;
    try {
      bound = await listenHttp(server, port, host);
    } catch (e) {
      process.stderr.write(`gateway-dev: cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
      await gateway.close();
      return 1;
    }
    logger.info({ host, port: bound, epp: o.epp, mode: o.mode }, 'gateway-dev listening');
    return stopOnSignal(
      async () => {
        await closeHttp(server);
        await gateway.close();
        return 0;
      },
      {
        onSignal: (signal) =>
          logger.info({ signal, stats: gateway.stats.snapshot() }, 'gateway-dev stopping'),
      },
    );
  },
};
