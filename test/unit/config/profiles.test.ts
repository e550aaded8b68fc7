// Every shipped profile loads, every EndpointPickerConfig embedded in them
// loads on its own, and mistakes are reported with the file and YAML path.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadConfigFile,
  loadConfigText,
  type LoadedConfig,
} from '../../../src/config/endpoint-picker-config.js';
import { ConfigError } from '../../../src/config/errors.js';
import { collectNeeds } from '../../../src/scheduling/profile.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { ctx, endpoints, view } from '../plugins/fixtures.js';
import {
  CONFIG_HEAD as HEAD,
  PROFILES_DIR as DIR,
  PROFILE_FILES as FILES,
  valuesFile,
  valuesText as VALUES,
} from './helpers.js';

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function summary(c: LoadedConfig) {
  const p = c.profile;
  return {
    filters: p.filters.map((x) => x.type),
    scorers: p.scorers.map((s) => [s.plugin.type, s.weight]),
    picker: p.picker?.type,
    headers: p.headerHandlers.map((x) => x.type),
  };
}

describe('examples/profiles', () => {
  const registry = builtinRegistry();

  it('ships the six documented profiles', () => {
    expect(FILES).toEqual([
      'epp-gie-default.yaml',
      'epp-kv-cache-aware.yaml',
      'epp-pd-bucket.yaml',
      'epp-pd-kv-cache-aware.yaml',
      'epp-random-pd-bucket.yaml',
      'epp-random.yaml',
    ]);
  });

  it.each(FILES)('%s loads as a values file, and each embedded config loads on its own', (f) => {
    const file = join(DIR, f);
    const loaded = loadConfigFile(file, registry);
    expect(loaded.embedded!.length).toBeGreaterThan(0);
    const { active, embedded } = valuesFile(file);
    expect(loaded.embedded).toEqual(embedded.map(([n]) => n));
    for (const [name, body] of embedded) {
      const alone = loadConfigText(body, name, registry);
      expect(alone.location).toBe('');
      expect(alone.profile.plugins.length).toBeGreaterThan(0);
      if (name === active) expect(summary(alone)).toEqual(summary(loaded));
    }
  });

  it('compiles each profile to the documented plugins', () => {
    const at = (f: string) => summary(loadConfigFile(join(DIR, f), registry));
    expect(at('epp-kv-cache-aware.yaml')).toEqual({
      filters: [],
      scorers: [['scorer-aggregate-kv-cache-aware', 1]],
      picker: 'picker-min-random',
      headers: [],
    });
    expect(at('epp-pd-kv-cache-aware.yaml')).toEqual({
      filters: ['filter-by-pd-label'],
      scorers: [['scorer-pd-kv-cache-aware', 1]],
      picker: 'picker-pd-kv-cache-aware',
      headers: ['pd-header-handler'],
    });
    // The product's pd-bucket config has no picker: the default one runs.
    expect(at('epp-pd-bucket.yaml')).toEqual({
      filters: ['filter-by-pd-label'],
      scorers: [['scorer-pd-bucket', 1]],
      picker: undefined,
      headers: ['pd-header-handler'],
    });
    expect(at('epp-random-pd-bucket.yaml')).toEqual({
      filters: ['filter-by-pd-label'],
      scorers: [],
      picker: 'picker-random-pd-bucket',
      headers: ['pd-header-handler'],
    });
    expect(at('epp-random.yaml')).toEqual({
      filters: [],
      scorers: [],
      picker: 'picker-min-random',
      headers: [],
    });
    expect(at('epp-gie-default.yaml')).toEqual({
      filters: [],
      scorers: [
        ['queue-scorer', 2],
        ['kv-cache-utilization-scorer', 2],
        ['prefix-cache-scorer', 3],
      ],
      picker: 'max-score-picker',
      headers: [],
    });
  });

  it('reads the product parameters as written (kvCacheManagerTimeout in ns, bucketSeperateLength)', () => {
    const kv = loadConfigFile(join(DIR, 'epp-kv-cache-aware.yaml'), registry);
    expect(collectNeeds(kv.profile).indexer).toEqual({
      url: 'http://cache-indexer-service:8080/match_sort',
      timeoutMs: 5000,
    });
    const body = `${HEAD}plugins:
- type: filter-by-pd-label
- type: scorer-pd-bucket
  parameters:
    alpha: 1.0
    beta: 2.0
    decayFactor: 0.99
    bucketSeperateLength: 200
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: filter-by-pd-label
  - pluginRef: scorer-pd-bucket
    weight: 1
`;
    expect(collectNeeds(loadConfigText(body, 'b.yaml', registry).profile)).toEqual({ bucketLoads: true });
    expect(collectNeeds(loadConfigFile(join(DIR, 'epp-gie-default.yaml'), registry).profile).prefix).toEqual({
      blockSizeTokens: 16,
      maxPrefixBlocksToMatch: 256,
      lruCapacityPerServer: 31_250,
    });
  });

  describe('data needs two plugins share (the prompt is hashed once, the indexer asked once)', () => {
    const profile = (prefixParams: string, aggParams: string) => `${HEAD}plugins:
- type: prefix-cache-scorer
  parameters: {${prefixParams}}
- type: scorer-aggregate-kv-cache-aware
  parameters: {routingHistory: true, ${aggParams}}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: scorer-aggregate-kv-cache-aware
  - pluginRef: max-score-picker
`;

    it("rejects conflicting prefix block sizes, naming the second plugin's parameters", () => {
      // Before: the first plugin's 16-token blocks silently won, and the
      // 64-token scorer read 16-token matches as 4x the hit it was.
      const load = () =>
        loadConfigText(profile('blockSizeTokens: 16', 'blockSizeTokens: 64'), 'conflict.yaml', registry);
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(
        /^conflict\.yaml: plugins\[1\]\.parameters: the same prompt hashing as "prefix-cache-scorer"/,
      );
      expect(load).toThrow(/blockSizeTokens 16.*got blockSizeTokens 64/);
    });

    it('rejects conflicting prefix index capacities too', () => {
      expect(() =>
        loadConfigText(
          profile('lruCapacityPerServer: 1000', 'lruCapacityPerServer: 2000'),
          'cap.yaml',
          registry,
        ),
      ).toThrow(/plugins\[1\]\.parameters: the same prompt hashing/);
    });

    it('accepts the same hashing in both and fetches it once', () => {
      const loaded = loadConfigText(
        profile('blockSizeTokens: 64', 'blockSizeTokens: 64'),
        'same.yaml',
        registry,
      );
      expect(collectNeeds(loaded.profile).prefix).toEqual({
        blockSizeTokens: 64,
        maxPrefixBlocksToMatch: 256,
        lruCapacityPerServer: 31_250,
      });
    });

    it("adopts prefix-cache-scorer's hashing where the history parameters are left out (either order)", () => {
      // A profile written before routing history existed: both plugins at their defaults.
      const gie = { blockSizeTokens: 16, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31_250 };
      expect(collectNeeds(loadConfigText(profile('', ''), 'defaults.yaml', registry).profile).prefix).toEqual(
        gie,
      );
      const reversed = `${HEAD}plugins:
- type: scorer-aggregate-kv-cache-aware
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: scorer-aggregate-kv-cache-aware
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
`;
      expect(collectNeeds(loadConfigText(reversed, 'reversed.yaml', registry).profile).prefix).toEqual(gie);
      // One history field set explicitly and equal, the others adopted.
      expect(
        collectNeeds(
          loadConfigText(
            profile('maxPrefixBlocksToMatch: 32', 'maxPrefixBlocksToMatch: 32'),
            'mixed.yaml',
            registry,
          ).profile,
        ).prefix,
      ).toEqual({ ...gie, maxPrefixBlocksToMatch: 32 });
    });

    it('routes the adopted hashing: routing history reads 16-token matches as 16 tokens each', () => {
      const loaded = loadConfigText(profile('', ''), 'defaults.yaml', registry);
      const agg = loaded.profile.scorers.find((s) => s.plugin.type === 'scorer-aggregate-kv-cache-aware')!;
      const a = view('a');
      const b = view('b');
      const cx = ctx({
        promptTokens: 100,
        hitRates: { [a.endpoint.id]: 0, [b.endpoint.id]: 0 },
        prefixHashes: [1, 2, 3, 4],
        prefixMatches: new Map([[a.endpoint.id, 4]]),
        prefixBlockTokens: collectNeeds(loaded.profile).prefix!.blockSizeTokens,
      });
      const out = agg.plugin.score!(cx, endpoints(a, b));
      // a: 64 of 100 tokens routed there -> miss 36 tokens; b: miss 100 -> 1 - 36/100 and 0.
      expect(out.scores[0]).toBeCloseTo(0.64, 12);
      expect(out.scores[1]).toBeCloseTo(0, 12);
    });

    it('rejects two KV-cache aware scorers asking different cache-indexers', () => {
      const body = `${HEAD}plugins:
- type: scorer-aggregate-kv-cache-aware
  name: a
- type: scorer-aggregate-kv-cache-aware
  name: b
  parameters: {kvCacheManagerPort: 9090}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: a
  - pluginRef: b
`;
      expect(() => loadConfigText(body, 'idx.yaml', registry)).toThrow(
        /^idx\.yaml: plugins\[1\]\.parameters: the same cache-indexer as "a"/,
      );
    });
  });

  it('accepts GIE configs that list single-profile-handler', () => {
    const body = `${HEAD}plugins:
- type: single-profile-handler
- type: queue-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 2}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
`;
    expect(summary(loadConfigText(body, 'g.yaml', registry)).picker).toBe('max-score-picker');
  });
});

describe('config errors name the file and the YAML path', () => {
  const registry = builtinRegistry();

  it('unknown plugin type', () => {
    const e = configError(() =>
      loadConfigText(`${HEAD}plugins:\n- type: scorer-pd-bukket\n`, 'bad.yaml', registry),
    );
    expect(e.file).toBe('bad.yaml');
    expect(e.yamlPath).toBe('plugins[0].type');
    expect(e.message).toContain('scorer-pd-bukket');
  });

  it('bad parameter type and out-of-range value', () => {
    const bad = (params: string) =>
      configError(() =>
        loadConfigText(
          `${HEAD}plugins:\n- type: scorer-pd-bucket\n  parameters: ${params}\n`,
          'p.yaml',
          registry,
        ),
      );
    expect(bad('{alpha: "high"}').yamlPath).toBe('plugins[0].parameters.alpha');
    expect(bad('{decayFactor: 1.5}').yamlPath).toBe('plugins[0].parameters.decayFactor');
    expect(bad('{bucketSeparateLength: 100}').yamlPath).toBe('plugins[0].parameters.bucketSeparateLength');
  });

  it('dangling pluginRef', () => {
    const e = configError(() =>
      loadConfigText(
        `${HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n  - pluginRef: nowhere\n`,
        'd.yaml',
        registry,
      ),
    );
    expect(e.yamlPath).toBe('schedulingProfiles[0].plugins[1].pluginRef');
    expect(e.message).toContain('nowhere');
  });

  it('inside a values file, with the embedded config in the path', () => {
    const e = configError(() =>
      loadConfigText(
        VALUES('x.yaml', `${HEAD}plugins:\n- type: scorer-pd-bucket\n  parameters: {beta: -1}`),
        'v.yaml',
        registry,
      ),
    );
    expect(e.yamlPath).toBe(
      'inferencepool.inferenceExtension.pluginsCustomConfig["x.yaml"].plugins[0].parameters.beta',
    );
  });

  it('a pluginsConfigFile that names no embedded config', () => {
    const e = configError(() =>
      loadConfigText(VALUES('x.yaml', `${HEAD}plugins:\n- type: queue-scorer`, 'y.yaml'), 'v.yaml', registry),
    );
    expect(e.yamlPath).toBe('inferencepool.inferenceExtension.pluginsConfigFile');
    expect(e.message).toContain('x.yaml');
  });
});
