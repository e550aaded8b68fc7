// Where the EPP's InferenceObjectives come from: --objectives-file, else
// nothing (every request priority 0). Kubernetes watching is not wired yet.
import type { Logger } from 'pino';
import { ObjectivesFileSource, type ObjectivesSource } from '../flow/objectives-file.js';
import type { EppConfig } from './options.js';

export function objectivesSource(config: EppConfig, logger: Logger): ObjectivesSource | undefined {
  if (!config.objectivesFile) return undefined;
  return new ObjectivesFileSource(config.objectivesFile, {
    // With a pool named, objects for other pools are left out, as GIE's reconciler does.
    pool: config.poolName ? { name: config.poolName } : undefined,
    onError: (e) =>
      logger.warn({ err: e.message }, 'objectives file re-read failed; keeping the last good objectives'),
  });
}
