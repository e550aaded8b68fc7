// `hermes-router cache-indexer`: flags -> config -> buildCacheIndexer ->
// start -> stop on signals. Options: src/cacheindexer/options.ts; the rest:
// src/cacheindexer/app.ts.
import { parseArgs, usageError, type FunctionCommand } from '../../src/config/cli-options.js';
import {
  CACHE_INDEXER_SUMMARY,
  cacheIndexerConfigFrom,
  cacheIndexerOptions,
  type CacheIndexerConfig,
} from '../../src/cacheindexer/options.js';

export const command: FunctionCommand = {
  name: 'cache-indexer',
  summary: CACHE_INDEXER_SUMMARY,
  async run(args) {
    let config: CacheIndexerConfig;
    try {
      config = cacheIndexerConfigFrom(
        parseArgs('hermes-router cache-indexer', CACHE_INDEXER_SUMMARY, cacheIndexerOptions, args),
      );
    } catch (e) {
      return usageError('cache-indexer', e);
    }
    return runCacheIndexer(config);
  },
};

async function runCacheIndexer(config: CacheIndexerConfig): Promise<number> {
  const [{ buildCacheIndexer, IndexerStartError }, { default: pino }, { stopOnSignal }] = await Promise.all([
    import('../../src/cacheindexer/app.js'),
    import('pino'),
    import('../../src/common/lifecycle.js'),
  ]);
  const logger = pino({ name: 'cache-indexer', level: config.logLevel });
  let app: ReturnType<typeof buildCacheIndexer> | undefined;
  try {
    app = buildCacheIndexer(config, { logger });
    await app.start();
  } catch (e) {
    process.stderr.write(`cache-indexer: ${(e as Error).message}\n`);
    await app?.stop().catch(() => undefined);
    return e instanceof IndexerStartError && e.message.startsWith('--tokenizer') ? 2 : 1;
  }
  const started = app;
  return stopOnSignal(() => started.stop().then(() => 0), {
    onSignal: () => logger.info('cache-indexer stopping'),
  });
}
