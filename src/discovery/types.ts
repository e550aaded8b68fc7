import type { Endpoint } from '../scheduling/types.js';

/**
 * Where endpoints come from: a static file or a Kubernetes InferencePool.
 * A source calls `onChange` with the full set of ready endpoints whenever
 * it changes (and once after start), never with a partial set.
 */
export interface EndpointSource {
  readonly kind: 'file' | 'kubernetes';
  start(onChange: (endpoints: Endpoint[]) => void): Promise<void>;
  stop(): Promise<void>;
}
