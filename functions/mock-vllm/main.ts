// `hermes-router mock-vllm`: flags -> config -> server -> stop on signals.
// Options: src/mockvllm/options.ts; the server: src/mockvllm/server.ts.
import { parseArgs, usageError, type FunctionCommand } from '../../src/config/cli-options.js';
import type { MockVllmConfig } from '../../src/mockvllm/config.js';
import { MOCK_VLLM_SUMMARY, mockVllmConfigFrom, mockVllmOptions } from '../../src/mockvllm/options.js';

export const command: FunctionCommand = {
  name: 'mock-vllm',
  summary: MOCK_VLLM_SUMMARY,
  async run(args) {
    let cfg: MockVllmConfig;
    let logLevel: string;
    try {
      const o = parseArgs('hermes-router mock-vllm', MOCK_VLLM_SUMMARY, mockVllmOptions, args);
      cfg = mockVllmConfigFrom(o);
      logLevel = o.logLevel;
    } catch (e) {
      return usageError('mock-vllm', e);
    }
    const [{ startMockVllm }, { default: pino }, { stopOnSignal }] = await Promise.all([
      import('../../src/mockvllm/server.js'),
      import('pino'),
      import('../../src/common/lifecycle.js'),
    ]);
    const log = pino({ name: 'mock-vllm', level: logLevel });
    const mock = await startMockVllm(cfg, log);
    log.info(
      {
        port: mock.port,
        model: cfg.model,
        role: cfg.role,
        kvEvents: mock.publisher?.boundEndpoint,
        kvEventsReplay: mock.publisher?.replayEndpoint,
        kvEventsConnect: cfg.kvEventsConnect,
      },
      'mock-vllm listening',
    );
    return stopOnSignal(() => mock.close().then(() => 0), { onSignal: () => log.info('mock-vllm stopping') });
  },
};
