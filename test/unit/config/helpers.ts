import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';

export const PROFILES_DIR = join(import.meta.dirname, '../../../examples/profiles');

export const PROFILE_FILES = readdirSync(PROFILES_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** The values file's active config name and every embedded EndpointPickerConfig text. */
export function valuesFile(file: string): { active: string; embedded: Array<[string, string]> } {
  const doc = yaml.load(readFileSync(file, 'utf8')) as {
    inferencepool: {
      inferenceExtension: { pluginsConfigFile: string; pluginsCustomConfig: Record<string, string> };
    };
  };
  const ext = doc.inferencepool.inferenceExtension;
  return { active: ext.pluginsConfigFile, embedded: Object.entries(ext.pluginsCustomConfig) };
}

export const CONFIG_HEAD = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';

/** A values file embedding `body` under `name`, activating `active`. */
export function valuesText(name: string, body: string, active = name): string {
  const indented = body
    .split('\n')
    .map((l) => `        ${l}`)
    .join('\n');
  return `inferencepool:\n  inferenceExtension:\n    pluginsConfigFile: "${active}"\n    pluginsCustomConfig:\n      ${name}: |\n${indented}\n`;
}
