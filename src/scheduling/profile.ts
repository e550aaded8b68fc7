// Profile compilation: the plugin references of one scheduling profile ->
// typed lists per extension point (what the scheduler runs) and the union of
// the data its plugins need fetched. Configuration mistakes found here are
// thrown as ProfileError naming the offending reference or plugin; the config
// loader turns them into file + YAML path errors.
import {
  hasDataNeeds,
  isCharger,
  isFilter,
  isHeaderHandler,
  isPicker,
  isScorer,
  type Charger,
  type DataNeeds,
  type Filter,
  type HeaderHandler,
  type Picker,
  type Plugin,
  type PrefixField,
  type PrefixNeed,
  type Scorer,
} from './plugin.js';

export interface WeightedScorer {
  plugin: Scorer;
  weight: number;
}

export interface CompiledProfile {
  name: string;
  filters: Filter[];
  scorers: WeightedScorer[];
  /** Undefined: the default picker (best score, random among ties). */
  picker: Picker | undefined;
  headerHandlers: HeaderHandler[];
  chargers: Charger[];
  /** Every plugin of the profile, in configured order. */
  plugins: Plugin[];
}

export interface PluginRef {
  plugin: Plugin;
  weight?: number;
}

/**
 * A profile that cannot run as written. `ref` is the index of the offending
 * reference in the profile; `plugin` the plugin whose parameters conflict.
 */
export class ProfileError extends Error {
  constructor(
    readonly expected: string,
    readonly at: { ref: number } | { plugin: Plugin },
  ) {
    super(expected);
    this.name = 'ProfileError';
  }
}

export function compileProfile(name: string, refs: readonly PluginRef[]): CompiledProfile {
  const profile: CompiledProfile = {
    name,
    filters: [],
    scorers: [],
    picker: undefined,
    headerHandlers: [],
    chargers: [],
    plugins: [],
  };
  const seen = new Set<Plugin>();
  refs.forEach(({ plugin, weight }, ref) => {
    if (seen.has(plugin)) {
      throw new ProfileError(`each plugin once per profile, "${plugin.name}" is referenced twice`, { ref });
    }
    seen.add(plugin);
    profile.plugins.push(plugin);
    if (isFilter(plugin)) profile.filters.push(plugin);
    if (isScorer(plugin)) profile.scorers.push({ plugin, weight: weight ?? 1 });
    if (isPicker(plugin)) {
      if (profile.picker) {
        throw new ProfileError(`one picker per profile, "${profile.picker.name}" is already its picker`, {
          ref,
        });
      }
      profile.picker = plugin;
    }
    if (isHeaderHandler(plugin)) profile.headerHandlers.push(plugin);
    if (isCharger(plugin)) profile.chargers.push(plugin);
  });
  collectNeeds(profile);
  return profile;
}

const PREFIX_FIELDS: readonly PrefixField[] = [
  'blockSizeTokens',
  'maxPrefixBlocksToMatch',
  'lruCapacityPerServer',
];

const describePrefix = (p: PrefixNeed) =>
  `blockSizeTokens ${p.blockSizeTokens}, maxPrefixBlocksToMatch ${p.maxPrefixBlocksToMatch}, lruCapacityPerServer ${p.lruCapacityPerServer}`;

/**
 * One prompt hashing for two plugins: a field equal in both stays, a field
 * one side left adoptable takes the other's value, anything else is a
 * conflict (undefined).
 */
function mergePrefix(a: PrefixNeed, b: PrefixNeed): PrefixNeed | undefined {
  const merged: PrefixNeed = { ...a };
  const adoptable: PrefixField[] = [];
  for (const f of PREFIX_FIELDS) {
    const aYields = a.adoptable?.includes(f) ?? false;
    const bYields = b.adoptable?.includes(f) ?? false;
    if (a[f] === b[f]) {
      if (aYields && bYields) adoptable.push(f);
    } else if (bYields) {
      if (aYields) adoptable.push(f);
    } else if (aYields) {
      merged[f] = b[f];
    } else {
      return undefined;
    }
  }
  if (adoptable.length > 0) merged.adoptable = adoptable;
  else delete merged.adoptable;
  return merged;
}

/**
 * Union of what the profile's plugins need fetched before a cycle. The
 * prompt is hashed once and the cache-indexer asked once per request, so two
 * plugins asking for them differently cannot both be honoured: that is a
 * ProfileError naming the second plugin, not a silent choice of the first.
 * The exception is a prompt-hashing field a plugin marks adoptable (left at
 * its default in the configuration): it takes the other plugin's value, so a
 * profile combining prefix-cache-scorer with the KV-aware scorer's routing
 * history loads with default parameters; only explicit conflicts are errors.
 */
export function collectNeeds(profile: Pick<CompiledProfile, 'plugins'>): DataNeeds {
  const needs: DataNeeds = {};
  let prefixFrom: Plugin | undefined;
  let indexerFrom: Plugin | undefined;
  for (const p of profile.plugins) {
    if (!hasDataNeeds(p)) continue;
    const n = p.dataNeeds;
    if (n.prefix) {
      if (!needs.prefix) {
        needs.prefix = n.prefix;
        prefixFrom = p;
      } else {
        const merged = mergePrefix(needs.prefix, n.prefix);
        if (!merged) {
          throw new ProfileError(
            `the same prompt hashing as "${prefixFrom!.name}" (${describePrefix(needs.prefix)}), got ${describePrefix(n.prefix)}: the prompt is hashed once per request`,
            { plugin: p },
          );
        }
        needs.prefix = merged;
      }
    }
    if (n.indexer) {
      if (!needs.indexer) {
        needs.indexer = n.indexer;
        indexerFrom = p;
      } else if (needs.indexer.url !== n.indexer.url || needs.indexer.timeoutMs !== n.indexer.timeoutMs) {
        throw new ProfileError(
          `the same cache-indexer as "${indexerFrom!.name}" (${needs.indexer.url}, ${needs.indexer.timeoutMs} ms), got ${n.indexer.url}, ${n.indexer.timeoutMs} ms: the indexer is asked once per request`,
          { plugin: p },
        );
      }
    }
    if (n.bucketLoads) needs.bucketLoads = true;
  }
  if (needs.prefix?.adoptable) {
    const { adoptable: _settled, ...prefix } = needs.prefix;
    needs.prefix = prefix;
  }
  return needs;
}
