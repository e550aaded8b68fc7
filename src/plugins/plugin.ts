// How a plugin is built: a factory registered under its type name decodes
// the raw `parameters` with its zod schema and returns a plugin object. What
// a plugin object may do is the scheduler's contract (src/scheduling/plugin.ts).
import type { z } from 'zod';
import type { Plugin } from '../scheduling/plugin.js';

export type {
  DataNeeds,
  Plugin,
  ScoreOutput,
  Filter,
  Scorer,
  Picker,
  HeaderHandler,
  Charger,
} from '../scheduling/plugin.js';

export interface PluginFactory<S extends z.ZodType = z.ZodType> {
  type: string;
  /** Strict schema of `parameters`; defaults are the documented ones. */
  parameters: S;
  create(name: string, params: z.output<S>): Plugin;
}

export type AnyPluginFactory = PluginFactory<z.ZodType>;

export function definePlugin<S extends z.ZodType>(f: PluginFactory<S>): PluginFactory<S> {
  return f;
}
