import { Command } from 'commander';
import type { SubcommandModule } from '../main.js';

export const command: SubcommandModule['command'] = {
  name: 'check-config',
  summary: 'validate EndpointPickerConfig files (raw, or Helm values files embedding them)',
  async run(args) {
    let files: string[] = [];
    new Command('hermes-router check-config')
      .description(this.summary)
      .argument(
        '<file...>',
        'EndpointPickerConfig YAML or a values file with inferencepool.inferenceExtension.pluginsCustomConfig',
      )
      .action((f: string[]) => {
        files = f;
      })
      .parse(args, { from: 'user' });
    const { checkConfig } = await import('../../check-config/main.js');
    return checkConfig(files);
  },
};
