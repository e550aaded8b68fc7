// Where the EPP's InferenceObjectives come from: --objectives-file, else
// Kubernetes when discovery is (--pool-name), else nothing (every request
// priority 0).
import type { Logger } from 'pino';
import { ObjectivesFileSource, type ObjectivesSource } from '../flow/objectives-file.js';
import type { EppConfig } from './options.js';

export async function objectivesSource(
  config: EppConfig,
  logger: Logger,
  opts: { kubernetes: boolean },
): Promise<ObjectivesSource | undefined> {
  if (config.objectivesFile) {
    return new ObjectivesFileSource(config.objectivesFile, {
      // With a pool named, objects for other pools are left out, as GIE's reconciler does.
      pool: config.poolName ? { name: config.poolName } : undefined,
      onError: (e) =>
        logger.warn({ err: e.message }, 'objectives file re-read failed; keeping the last good objectives'),
    });
  }
  if (opts.kubernetes && config.poolName && config.poolNamespace) {
    // Loaded only here: the Kubernetes client is ~27 MB of heap (see build.ts endpointSource).
    const { KubernetesObjectivesSource } = await import('../discovery/k8s-objectives.js');
    return new KubernetesObjectivesSource({
      poolName: config.poolName,
      poolNamespace: config.poolNamespace,
      kubeconfigPath: config.kubeconfig,
      onError: (e) => logger.warn({ err: e.message }, 'inference objectives'),
    });
  }
  return undefined;
}
