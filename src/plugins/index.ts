// The one place built-in plugins are registered. Adding a plugin: one file
// in this folder plus one line here.
import { PluginRegistry } from './registry.js';
import { pickerMinRandom } from './picker-min-random.js';
import { queueScorer } from './queue-scorer.js';

export function builtinRegistry(): PluginRegistry {
  return new PluginRegistry().register(pickerMinRandom).register(queueScorer);
}

export { PluginRegistry } from './registry.js';
export type { Plugin, PluginFactory, DataNeeds, ScoreOutput } from './plugin.js';
