// The one place built-in plugins are registered. Adding a plugin: one file
// in this folder plus one line here.
import { PluginRegistry } from './registry.js';
import type { AnyPluginFactory } from './plugin.js';
import { filterByPdLabel } from './filter-by-pd-label.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { maxScorePicker } from './max-score-picker.js';
import { pdHeaderHandler } from './pd-header-handler.js';
import { pickerMinRandom } from './picker-min-random.js';
import { pickerPdKvCacheAware } from './picker-pd-kv-cache-aware.js';
import { pickerRandomPdBucket } from './picker-random-pd-bucket.js';
import { prefixCacheScorer } from './prefix-cache-scorer.js';
import { queueScorer } from './queue-scorer.js';
import { randomPicker } from './random-picker.js';
import { scorerAggregateKvCacheAware } from './scorer-aggregate-kv-cache-aware.js';
import { scorerPdBucket } from './scorer-pd-bucket.js';
import { scorerPdKvCacheAware } from './scorer-pd-kv-cache-aware.js';
import { singleProfileHandler } from './single-profile-handler.js';
import { weightedRandomPicker } from './weighted-random-picker.js';
import { concurrencyDetector } from './concurrency-detector.js';
import { utilizationDetector } from './utilization-detector.js';
import { loraAffinityScorer } from './lora-affinity-scorer.js';

/** Every built-in plugin factory. */
export const BUILTIN_PLUGINS: readonly AnyPluginFactory[] = [
  // Hermes-router (openFuyao product) plugins.
  filterByPdLabel,
  scorerAggregateKvCacheAware,
  pickerMinRandom,
  scorerPdKvCacheAware,
  pickerPdKvCacheAware,
  scorerPdBucket,
  pickerRandomPdBucket,
  pdHeaderHandler,
  // GIE plugins with GIE's names and semantics.
  queueScorer,
  kvCacheUtilizationScorer,
  prefixCacheScorer,
  maxScorePicker,
  randomPicker,
  weightedRandomPicker,
  singleProfileHandler,
  utilizationDetector,
  concurrencyDetector,
  loraAffinityScorer,
];

export function builtinRegistry(): PluginRegistry {
  const r = new PluginRegistry();
  for (const f of BUILTIN_PLUGINS) r.register(f);
  return r;
}

export { PluginRegistry } from './registry.js';
export type { Plugin, PluginFactory, DataNeeds, ScoreOutput } from './plugin.js';
