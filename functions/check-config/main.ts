// `hermes-router check-config FILE...`: validate EndpointPickerConfig files
// (raw, or Helm values files embedding them); src/config/check-config.ts.
import { Command } from 'commander';
import type { FunctionCommand } from '../../src/config/cli-options.js';

const SUMMARY = 'validate EndpointPickerConfig files (raw, or Helm values files embedding them)';

export const command: FunctionCommand = {
  name: 'check-config',
  summary: SUMMARY,
  async run(args) {
    let files: string[] = [];
    new Command('hermes-router check-config')
      .description(SUMMARY)
      .argument(
        '<file...>',
        'EndpointPickerConfig YAML or a values file with inferencepool.inferenceExtension.pluginsCustomConfig',
      )
      .action((f: string[]) => {
        files = f;
      })
      .parse(args, { from: 'user' });
    const { checkConfig } = await import('../../src/config/check-config.js');
    return checkConfig(files);
  },
};
