// `hermes-router epp`: flags -> EppConfig -> buildEpp -> start -> stop on
// signals. Options: src/epp/options.ts; everything else: src/epp/build.ts.
import { parseArgs, usageError, type FunctionCommand } from '../../src/config/cli-options.js';
import { EPP_SUMMARY, eppOptions, eppRunFrom, loggableConfig, type EppRun } from '../../src/epp/options.js';

export const command: FunctionCommand = {
  name: 'epp',
  summary: EPP_SUMMARY,
  async run(args) {
    let run: EppRun;
    try {
      run = eppRunFrom(parseArgs('hermes-router epp', EPP_SUMMARY, eppOptions, args));
    } catch (e) {
      return usageError('epp', e);
    }
    return runEpp(run);
  },
};

async function runEpp(run: EppRun): Promise<number> {
  const [{ buildEpp }, { ConfigError }, { createLogger }, { stopOnSignal }] = await Promise.all([
    import('../../src/epp/build.js'),
    import('../../src/config/errors.js'),
    import('../../src/observability/logger.js'),
    import('../../src/common/lifecycle.js'),
  ]);
  const logger = createLogger({ level: run.logLevel, format: run.logFormat, name: 'epp' });
  // Secrets are masked here and again by the logger's redaction.
  logger.info({ config: loggableConfig(run.config) }, 'starting endpoint picker');
  let epp: Awaited<ReturnType<typeof buildEpp>> | undefined;
  try {
    epp = await buildEpp(run.config, { logger });
    await epp.start();
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : `cannot start: ${(e as Error).message}`;
    logger.fatal(msg);
    process.stderr.write(`epp: ${msg}\n`);
    await epp?.stop().catch(() => undefined);
    logger.flush();
    return 1;
  }
  const started = epp;
  const code = await stopOnSignal(
    () =>
      started.stop().then(
        () => 0,
        (e: Error) => {
          logger.error({ err: e.message }, 'error while stopping');
          return 1;
        },
      ),
    {
      onSignal: (signal) =>
        logger.info({ signal, drainTimeoutMs: run.config.drainTimeoutMs }, 'stopping: draining open streams'),
      onSecondSignal: (signal) => {
        logger.warn({ signal }, 'second signal; exiting without draining');
        logger.flush();
      },
    },
  );
  logger.flush();
  // A stray handle (a client library's socket) must not keep a stopped EPP alive.
  setTimeout(() => process.exit(code), 200).unref();
  return code;
}
