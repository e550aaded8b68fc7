// `hermes-router pd-proxy`: flags -> buildPdProxy -> start -> stop on
// signals. Options: src/pdproxy/options.ts; the rest: src/pdproxy/app.ts.
import { parseArgs, usageError, type FunctionCommand } from '../../src/config/cli-options.js';
import {
  PD_PROXY_SUMMARY,
  pdProxyConfigFrom,
  pdProxyOptions,
  type PdProxyConfig,
} from '../../src/pdproxy/options.js';

export const command: FunctionCommand = {
  name: 'pd-proxy',
  summary: PD_PROXY_SUMMARY,
  async run(args) {
    let config: PdProxyConfig;
    try {
      config = pdProxyConfigFrom(parseArgs('hermes-router pd-proxy', PD_PROXY_SUMMARY, pdProxyOptions, args));
    } catch (e) {
      return usageError('pd-proxy', e);
    }
    const [{ buildPdProxy }, { default: pino }, { stopOnSignal }] = await Promise.all([
      import('../../src/pdproxy/app.js'),
      import('pino'),
      import('../../src/common/lifecycle.js'),
    ]);
    const logger = pino({ name: 'pd-proxy', level: config.logLevel });
    const app = buildPdProxy(config, { logger });
    try {
      await app.start();
    } catch (e) {
      process.stderr.write(`pd-proxy: ${(e as Error).message}\n`);
      await app.stop().catch(() => undefined);
      return 1;
    }
    return stopOnSignal(() => app.stop().then(() => 0), {
      onSignal: (signal) => logger.info({ signal }, 'pd-proxy stopping'),
    });
  },
};
