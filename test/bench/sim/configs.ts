// Loading the product's example profiles (examples/profiles/*.yaml) through
// the real config loader and plugin registry, so the benchmarks schedule
// with exactly what users deploy.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  loadConfigFile,
  loadConfigText,
  type LoadedConfig,
} from '../../../src/config/endpoint-picker-config.js';
import { builtinRegistry, type PluginRegistry } from '../../../src/plugins/index.js';

export const PROFILES_DIR = resolve(process.cwd(), 'examples/profiles');

export function exampleProfileNames(): string[] {
  return readdirSync(PROFILES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

export type LoadOutcome = { ok: true; loaded: LoadedConfig } | { ok: false; error: string };

export function loadExampleProfile(name: string, registry: PluginRegistry = builtinRegistry()): LoadOutcome {
  try {
    return { ok: true, loaded: loadConfigFile(join(PROFILES_DIR, `${name}.yaml`), registry) };
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0]! };
  }
}

export function loadProfileText(text: string, label: string, registry: PluginRegistry): LoadOutcome {
  try {
    return { ok: true, loaded: loadConfigText(text, label, registry) };
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0]! };
  }
}

/** A profile schedules PD groups when it runs the PD label filter. */
export function isPdProfile(loaded: LoadedConfig): boolean {
  return loaded.profile.plugins.some((p) => p.type === 'filter-by-pd-label');
}
