// The EndpointPickerConfig `saturationDetector` section, both ways GIE writes
// it: v1.5 `{pluginRef: <a plugin listed under plugins>}` and v1.2's flat
// `{queueDepthThreshold, kvCacheUtilThreshold, metricsStalenessThreshold}`
// (a utilization-detector with those parameters). Absent: the plugin named
// utilization-detector if listed, else one with GIE's defaults.
import { z } from 'zod';
import type { PluginRegistry } from '../plugins/registry.js';
import { isSaturationDetector, type Plugin, type SaturationDetector } from '../scheduling/plugin.js';
import { ConfigError, fromZodError } from './errors.js';

const UTILIZATION_DETECTOR = 'utilization-detector';

export const saturationDetectorSection = z.union(
  [
    z.strictObject({
      pluginRef: z.string({ error: 'expected the name of a plugin listed under plugins' }).min(1),
    }),
    z.strictObject({
      queueDepthThreshold: z.unknown().optional(),
      kvCacheUtilThreshold: z.unknown().optional(),
      metricsStalenessThreshold: z.unknown().optional(),
      headroom: z.unknown().optional(),
    }),
  ],
  {
    error:
      'expected {pluginRef: <detector plugin>} or {queueDepthThreshold, kvCacheUtilThreshold, metricsStalenessThreshold}',
  },
);

export type SaturationDetectorSection = z.infer<typeof saturationDetectorSection>;

export function saturationDetectorOf(
  section: SaturationDetectorSection | undefined,
  byName: ReadonlyMap<string, Plugin>,
  registry: PluginRegistry,
  file: string,
  at: (p: ReadonlyArray<PropertyKey>) => string,
): SaturationDetector {
  if (section && 'pluginRef' in section) {
    const p = byName.get(section.pluginRef);
    if (!p) {
      throw new ConfigError(
        file,
        at(['saturationDetector', 'pluginRef']),
        `the name of a plugin listed under plugins, "${section.pluginRef}" is not one`,
      );
    }
    if (!isSaturationDetector(p)) {
      throw new ConfigError(
        file,
        at(['saturationDetector', 'pluginRef']),
        `a saturation detector (utilization-detector, concurrency-detector), "${p.name}" is a ${p.type}`,
      );
    }
    return p;
  }
  if (!section) {
    const listed = byName.get(UTILIZATION_DETECTOR);
    if (listed && isSaturationDetector(listed)) return listed;
  }
  const factory = registry.get(UTILIZATION_DETECTOR);
  if (!factory) throw new Error(`plugin registry lacks ${UTILIZATION_DETECTOR}`);
  const params = factory.parameters.safeParse(section ?? {});
  if (!params.success) throw fromZodError(file, at(['saturationDetector']), params.error);
  const detector = factory.create(UTILIZATION_DETECTOR, params.data);
  if (!isSaturationDetector(detector)) throw new Error(`${UTILIZATION_DETECTOR} detects no saturation`);
  return detector;
}
