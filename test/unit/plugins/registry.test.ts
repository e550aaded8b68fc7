import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { build, ctx, endpoints, view } from './fixtures.js';

const EXPECTED = [
  'filter-by-pd-label',
  'scorer-aggregate-kv-cache-aware',
  'picker-min-random',
  'scorer-pd-kv-cache-aware',
  'picker-pd-kv-cache-aware',
  'scorer-pd-bucket',
  'picker-random-pd-bucket',
  'pd-header-handler',
  'queue-scorer',
  'kv-cache-utilization-scorer',
  'prefix-cache-scorer',
  'max-score-picker',
  'random-picker',
  'weighted-random-picker',
  'single-profile-handler',
  'utilization-detector',
  'concurrency-detector',
  'lora-affinity-scorer',
];

describe('builtin registry', () => {
  it('registers every documented plugin type', () => {
    expect(builtinRegistry().types()).toEqual([...EXPECTED].sort());
  });

  it('builds every plugin from no parameters, with its type and name, and rejects unknown parameters', () => {
    const r = builtinRegistry();
    for (const type of EXPECTED) {
      const f = r.get(type)!;
      const p = build(f, {}, `my-${type}`);
      expect(p.type).toBe(type);
      expect(p.name).toBe(`my-${type}`);
      expect(p.filter || p.score || p.pick || p.headers || p.profileHandler, type).toBeTruthy();
      expect(f.parameters.safeParse({ notAParameter: 1 }).success, type).toBe(false);
    }
  });

  it('places each plugin at the extension points its kind implies', () => {
    const r = builtinRegistry();
    const kind = (t: string) => {
      const p = build(r.get(t)!);
      return [
        p.filter && 'filter',
        p.score && 'score',
        p.pick && 'pick',
        p.headers && 'headers',
        p.profileHandler && 'profile',
      ]
        .filter(Boolean)
        .join('+');
    };
    expect(kind('filter-by-pd-label')).toBe('filter');
    // Saturation detectors also filter (GIE places a plugin by interface).
    expect(kind('utilization-detector')).toBe('filter');
    expect(kind('concurrency-detector')).toBe('filter');
    for (const t of [
      'scorer-aggregate-kv-cache-aware',
      'scorer-pd-kv-cache-aware',
      'scorer-pd-bucket',
      'queue-scorer',
      'kv-cache-utilization-scorer',
      'prefix-cache-scorer',
    ]) {
      expect(kind(t), t).toBe('score');
    }
    for (const t of [
      'picker-min-random',
      'picker-pd-kv-cache-aware',
      'picker-random-pd-bucket',
      'max-score-picker',
      'random-picker',
      'weighted-random-picker',
    ]) {
      expect(kind(t), t).toBe('pick');
    }
    expect(kind('pd-header-handler')).toBe('headers');
    expect(kind('single-profile-handler')).toBe('profile');
  });

  it('handles an empty candidate set: no scores, no targets, no groups', () => {
    const r = builtinRegistry();
    for (const type of EXPECTED) {
      const p = build(r.get(type)!);
      const c = ctx({ hitRates: undefined });
      if (p.filter) expect(p.filter(c, []), type).toEqual([]);
      if (p.score) expect(Array.from(p.score(c, []).scores), type).toEqual([]);
      if (p.pick) expect(p.pick(c, []).targets, type).toEqual([]);
    }
  });

  it('every picker answers one address unless its profile asks for fallbacks', () => {
    // Gateways that read the destination as one socket address (agentgateway,
    // Envoy ORIGINAL_DST) fail a list: docs/extproc.md, "Gateways".
    const r = builtinRegistry();
    const many = endpoints(...[0.1, 0.9, 0.5, 0.7, 0.3].map((_, i) => view(`e${i}`)));
    const scored = many.map((candidate, i) => ({ candidate, score: [0.1, 0.9, 0.5, 0.7, 0.3][i]! }));
    for (const type of EXPECTED) {
      const p = build(r.get(type)!);
      if (!p.pick) continue;
      expect(p.pick(ctx(), scored).targets, type).toHaveLength(1);
    }
  });
});
