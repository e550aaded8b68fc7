// EndpointPickerConfig loading: YAML -> zod -> plugins built from the
// registry -> one compiled scheduling profile (src/scheduling/profile.ts). Also reads the product's Helm
// values files (`inferencepool.inferenceExtension.pluginsCustomConfig`),
// validating every embedded config.
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { z } from 'zod';
import type { PluginRegistry } from '../plugins/registry.js';
import { isSchedulingPlugin, type Plugin, type SaturationDetector } from '../scheduling/plugin.js';
import { compileProfile, ProfileError, type CompiledProfile } from '../scheduling/profile.js';
import { ConfigError, fromZodError, joinPath, yamlPath } from './errors.js';
import { saturationDetectorOf, saturationDetectorSection } from './saturation-detector.js';
import { flowControlSettingsOf, type FlowControlSettings } from './flow-control.js';

export const CONFIG_API_VERSIONS = ['inference.networking.x-k8s.io/v1alpha1', 'llm-d.ai/v1alpha1'] as const;

const pluginSpec = z.strictObject({
  type: z
    .string({ error: 'expected a plugin type name (string)' })
    .min(1, 'expected a non-empty plugin type'),
  name: z.string({ error: 'expected a plugin name (string)' }).min(1).optional(),
  parameters: z.record(z.string(), z.unknown(), { error: 'expected a map of parameters' }).nullish(),
});

const profileSpec = z.strictObject({
  name: z.string({ error: 'expected a profile name (string)' }).min(1, 'expected a non-empty profile name'),
  plugins: z
    .array(
      z.strictObject({
        pluginRef: z.string({ error: 'expected the name of a plugin listed under plugins' }).min(1),
        weight: z.number({ error: 'expected a number' }).finite().nonnegative().optional(),
      }),
      { error: 'expected a list of {pluginRef, weight}' },
    )
    .min(1, 'expected at least one plugin reference'),
});

export const endpointPickerConfigSchema = z.strictObject({
  apiVersion: z.enum(CONFIG_API_VERSIONS, {
    error: `expected apiVersion ${CONFIG_API_VERSIONS.join(' or ')}`,
  }),
  kind: z.literal('EndpointPickerConfig', { error: 'expected kind EndpointPickerConfig' }),
  featureGates: z.array(z.string()).optional(),
  plugins: z
    .array(pluginSpec, { error: 'expected a list of plugins' })
    .min(1, 'expected at least one plugin'),
  schedulingProfiles: z.array(profileSpec, { error: 'expected a list of scheduling profiles' }).optional(),
  saturationDetector: saturationDetectorSection.optional(),
  // Validated by src/config/flow-control.ts (its errors carry the YAML path).
  flowControl: z.unknown().optional(),
  // GIE sections Hermes-router accepts but does not act on, so existing
  // configs keep loading.
  dataLayer: z.unknown().optional(),
  parser: z.unknown().optional(),
});

export type EndpointPickerConfig = z.infer<typeof endpointPickerConfigSchema>;

export interface LoadedConfig {
  file: string;
  /** Where in the file the active config sits ('' for a raw config). */
  location: string;
  config: EndpointPickerConfig;
  plugins: Plugin[];
  profile: CompiledProfile;
  /** Judges saturation for admission (GIE's saturationDetector; default utilization-detector). */
  saturationDetector: SaturationDetector;
  /** The flowControl section: present = queueing on. */
  flowControl?: FlowControlSettings;
  /** For a values file: every embedded config, validated. */
  embedded?: string[];
}

/** The GIE chart's built-in config name; a values file may select it. */
export const CHART_DEFAULT_CONFIG_FILE = 'default-plugins.yaml';

/** Built-in config used when the EPP is started without --config-file. */
export const DEFAULT_CONFIG_TEXT = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: picker-min-random
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: picker-min-random
`;

/** GIE's default profile, which the chart's default-plugins.yaml stands for. */
export const GIE_DEFAULT_CONFIG_TEXT = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
`;

function parseYaml(file: string, location: string, text: string): unknown {
  try {
    return yaml.load(text, { filename: file });
  } catch (e) {
    const err = e as { mark?: { line: number; column: number }; reason?: string; message: string };
    const where = err.mark ? ` (line ${err.mark.line + 1}, column ${err.mark.column + 1})` : '';
    throw new ConfigError(file, location, `valid YAML${where}: ${err.reason ?? err.message}`);
  }
}

export function loadConfigFile(file: string, registry: PluginRegistry): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `a readable file (${(e as Error).message})`);
  }
  return loadConfigText(text, file, registry);
}

/** Loads either a raw EndpointPickerConfig or a Helm values file holding some. */
export function loadConfigText(text: string, file: string, registry: PluginRegistry): LoadedConfig {
  const doc = parseYaml(file, '', text);
  if (isValuesFile(doc)) return loadValuesFile(doc, file, registry);
  return compileConfig(doc, file, '', registry);
}

function isValuesFile(doc: unknown): doc is Record<string, unknown> {
  return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'inferencepool' in doc;
}

const valuesSchema = z.looseObject({
  inferencepool: z.looseObject({
    inferenceExtension: z.looseObject({
      pluginsConfigFile: z.string({ error: 'expected the file name of the active plugins config' }).min(1),
      pluginsCustomConfig: z
        .record(z.string(), z.string({ error: 'expected the EndpointPickerConfig as a YAML string' }))
        .optional(),
    }),
  }),
});

function loadValuesFile(doc: Record<string, unknown>, file: string, registry: PluginRegistry): LoadedConfig {
  const parsed = valuesSchema.safeParse(doc);
  if (!parsed.success) throw fromZodError(file, '', parsed.error);
  const ext = parsed.data.inferencepool.inferenceExtension;
  const custom = ext.pluginsCustomConfig ?? {};
  const base = 'inferencepool.inferenceExtension';
  let active: LoadedConfig | undefined;
  const embedded: string[] = [];
  for (const [name, body] of Object.entries(custom)) {
    const location = joinPath(base, yamlPath(['pluginsCustomConfig', name]));
    const loaded = compileConfig(parseYaml(file, location, body), file, location, registry);
    embedded.push(name);
    if (name === ext.pluginsConfigFile) active = loaded;
  }
  if (!active) {
    if (ext.pluginsConfigFile !== CHART_DEFAULT_CONFIG_FILE) {
      const known = [...embedded, CHART_DEFAULT_CONFIG_FILE].map((n) => `"${n}"`).join(', ');
      throw new ConfigError(file, `${base}.pluginsConfigFile`, `one of the configured files: ${known}`);
    }
    active = compileConfig(yaml.load(GIE_DEFAULT_CONFIG_TEXT), file, `${base}.pluginsConfigFile`, registry);
  }
  return { ...active, embedded };
}

/** Validates a parsed config document and builds its plugins and profile. */
export function compileConfig(
  doc: unknown,
  file: string,
  location: string,
  registry: PluginRegistry,
): LoadedConfig {
  const parsed = endpointPickerConfigSchema.safeParse(doc);
  if (!parsed.success) throw fromZodError(file, location, parsed.error);
  const config = parsed.data;
  const at = (p: ReadonlyArray<PropertyKey>) => joinPath(location, yamlPath(p));

  const byName = new Map<string, Plugin>();
  const plugins: Plugin[] = [];
  config.plugins.forEach((spec, i) => {
    const factory = registry.get(spec.type);
    if (!factory) {
      throw new ConfigError(
        file,
        at(['plugins', i, 'type']),
        `a known plugin type, got "${spec.type}" (known: ${registry.types().join(', ')})`,
      );
    }
    const name = spec.name ?? spec.type;
    if (byName.has(name)) {
      throw new ConfigError(
        file,
        at(['plugins', i, 'name']),
        `a unique plugin name, "${name}" is used twice`,
      );
    }
    const params = factory.parameters.safeParse(spec.parameters ?? {});
    if (!params.success) throw fromZodError(file, at(['plugins', i, 'parameters']), params.error);
    const plugin = factory.create(name, params.data);
    byName.set(name, plugin);
    plugins.push(plugin);
  });

  type ProfileSpec = NonNullable<EndpointPickerConfig['schedulingProfiles']>[number];
  const profiles: ProfileSpec[] = config.schedulingProfiles ?? [
    {
      name: 'default',
      plugins: plugins.filter(isSchedulingPlugin).map((p) => ({ pluginRef: p.name })),
    },
  ];
  if (profiles.length === 0) {
    throw new ConfigError(file, at(['schedulingProfiles']), 'at least one scheduling profile');
  }
  if (profiles.length > 1) {
    throw new ConfigError(
      file,
      at(['schedulingProfiles', 1]),
      'exactly one scheduling profile (PD runs inside one profile through filter-by-pd-label)',
    );
  }
  const spec = profiles[0]!;
  const refs = spec.plugins.map((ref, j) => {
    const plugin = byName.get(ref.pluginRef);
    if (!plugin) {
      throw new ConfigError(
        file,
        at(['schedulingProfiles', 0, 'plugins', j, 'pluginRef']),
        `the name of a plugin listed under plugins, "${ref.pluginRef}" is not one (defined: ${[...byName.keys()].join(', ')})`,
      );
    }
    return { plugin, weight: ref.weight };
  });
  let profile: CompiledProfile;
  try {
    profile = compileProfile(spec.name, refs);
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    const where =
      'ref' in e.at
        ? at(['schedulingProfiles', 0, 'plugins', e.at.ref, 'pluginRef'])
        : at(['plugins', plugins.indexOf(e.at.plugin), 'parameters']);
    throw new ConfigError(file, where, e.expected);
  }
  const saturationDetector = saturationDetectorOf(config.saturationDetector, byName, registry, file, at);
  const flowControl = flowControlSettingsOf(config.flowControl, file, at);
  return { file, location, config, plugins, profile, saturationDetector, flowControl };
}

/** A one-line description of a loaded config, for check-config and start-up logs. */
export function describeConfig(c: LoadedConfig): string {
  const p = c.profile;
  const parts = p.plugins.map((pl) => {
    const w = p.scorers.find((s) => s.plugin === pl);
    return w ? `${pl.name}(x${w.weight})` : pl.name;
  });
  if (!p.picker) parts.push('default picker');
  const where = c.location ? ` [${c.location}]` : '';
  const emb = c.embedded ? `, ${c.embedded.length} embedded config(s) valid` : '';
  return `${c.file}${where}: profile "${p.name}": ${parts.join(' -> ')}${emb}`;
}
