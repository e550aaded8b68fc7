// check-config: validate EndpointPickerConfig files
// (raw, or Helm values files embedding them). Exit 0 with a one-line
// summary per file, or 1 naming the file, the YAML path and what was expected.
import { builtinRegistry } from '../plugins/index.js';
import { describeConfig, loadConfigFile } from './endpoint-picker-config.js';
import { ConfigError } from './errors.js';

export function checkConfig(files: string[], out = process.stdout, err = process.stderr): number {
  const registry = builtinRegistry();
  let failed = 0;
  for (const file of files) {
    try {
      out.write(`ok  ${describeConfig(loadConfigFile(file, registry))}\n`);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      failed++;
      err.write(`error  ${e.message}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}
