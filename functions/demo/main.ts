// `hermes-router demo`: flags -> the whole local stack (src/demo/run.ts),
// which supervises its children and stops them on Ctrl-C.
import { parseArgs, usageError, type FunctionCommand } from '../../src/config/cli-options.js';
import { DEMO_SUMMARY, demoFlagsFrom, demoOptions } from '../../src/demo/options.js';
import type { DemoFlags } from '../../src/demo/run.js';

export const command: FunctionCommand = {
  name: 'demo',
  summary: DEMO_SUMMARY,
  async run(args) {
    let flags: DemoFlags;
    try {
      flags = demoFlagsFrom(parseArgs('hermes-router demo', DEMO_SUMMARY, demoOptions, args));
    } catch (e) {
      return usageError('demo', e);
    }
    const { runDemo } = await import('../../src/demo/run.js');
    return runDemo(flags);
  },
};
