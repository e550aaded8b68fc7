// Kubernetes-style objects and EPP configs that several tests build alike.

const OBJECTIVE_API = 'inference.networking.x-k8s.io/v1alpha2';

/** An InferenceObjective (priority left unset when undefined) on pool `pool`. */
export function inferenceObjective(
  name: string,
  priority?: number,
  pool = 'pool',
  group?: string,
): Record<string, unknown> {
  return {
    apiVersion: OBJECTIVE_API,
    kind: 'InferenceObjective',
    metadata: { name },
    spec: {
      ...(priority === undefined ? {} : { priority }),
      poolRef: { name: pool, ...(group ? { group } : {}) },
    },
  };
}

/**
 * An EndpointPickerConfig whose one profile picks at random, judged by a
 * concurrency-detector with `detectorParams` (a YAML flow mapping); `more`
 * is appended as top-level YAML (e.g. a flowControl section).
 */
export function concurrencyDetectorConfig(detectorParams: string, more = ''): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: concurrency-detector
  parameters: ${detectorParams}
- type: picker-min-random
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: picker-min-random
saturationDetector: { pluginRef: concurrency-detector }
${more}`;
}
