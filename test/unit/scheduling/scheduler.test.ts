import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import type { Picker, Scorer } from '../../../src/scheduling/plugin.js';
import { schedule, uncachedPromptTokens, type CompiledProfile } from '../../../src/scheduling/scheduler.js';
import { SchedulingError, type ScoredCandidate } from '../../../src/scheduling/types.js';
import { ctx, pdGroup, seeded, seqRandom, view } from '../plugins/fixtures.js';

function compile(pluginsYaml: string, refsYaml: string): CompiledProfile {
  const text = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
${pluginsYaml}
schedulingProfiles:
- name: default
  plugins:
${refsYaml}
`;
  return loadConfigText(text, 'inline.yaml', builtinRegistry()).profile;
}

function fixedScorer(name: string, scores: number[]): Scorer {
  return { type: 'fixed', name, score: () => ({ scores }) };
}

function capturePicker(seen: ScoredCandidate[][]): Picker {
  return {
    type: 'capture',
    name: 'capture',
    pick: (_c, scored) => {
      seen.push(scored);
      return { targets: [scored[0]!] };
    },
  };
}

function profileOf(parts: Partial<CompiledProfile>): CompiledProfile {
  return {
    name: 'p',
    filters: [],
    scorers: [],
    picker: undefined,
    headerHandlers: [],
    chargers: [],
    plugins: [],
    ...parts,
  };
}

describe('schedule', () => {
  it('sums weight x clamp(score) over the scorers', () => {
    const seen: ScoredCandidate[][] = [];
    const profile = profileOf({
      scorers: [
        { plugin: fixedScorer('s1', [0.5, 1.5, -1]), weight: 2 },
        { plugin: fixedScorer('s2', [1, 0, 0.2]), weight: 3 },
      ],
      picker: capturePicker(seen),
    });
    const res = schedule(profile, ctx(), [view('a'), view('b'), view('c')]);
    // a: 2*.5 + 3*1 = 4;  b: 2*1 (1.5 clamped) + 0 = 2;  c: 2*0 (-1 clamped) + 3*.2 = .6
    expect(seen[0]!.map((s) => s.score)).toEqual([4, 2, expect.closeTo(0.6, 12)]);
    expect(res.score).toBe(4);
  });

  it('uses the default picker (best score, random among ties) when the profile has none', () => {
    const profile = compile('- type: queue-scorer', '  - pluginRef: queue-scorer');
    expect(profile.picker).toBeUndefined();
    const a = view('a', { waiting: 5 });
    const b = view('b', { waiting: 1 });
    const c = view('c', { waiting: 1 });
    expect(schedule(profile, ctx({ random: seqRandom([0.9]) }), [a, b, c]).primary).toBe(b);
    expect(schedule(profile, ctx({ random: seqRandom([0.1]) }), [a, b, c]).primary).toBe(c);
    const r = schedule(profile, ctx(), [a, b]);
    expect(r.fallbacks).toEqual([]);
    // Nothing known cached: the whole prompt is b's to prefill.
    expect(r.charges).toEqual({
      inFlight: [b.endpoint.id],
      prefillTokens: [{ endpointId: b.endpoint.id, tokens: 10 }],
    });
    expect(r.headers).toEqual({});
    expect(r.pd).toBeUndefined();
  });

  it('returns the picker fallbacks in order (picker-min-random asked for 3: primary + 2)', () => {
    const profile = compile(
      '- type: kv-cache-utilization-scorer\n- type: picker-min-random\n  parameters: {maxNumOfEndpoints: 3}',
      '  - pluginRef: kv-cache-utilization-scorer\n  - pluginRef: picker-min-random',
    );
    const v = [
      view('a', { usage: 0.5 }),
      view('b', { usage: 0.1 }),
      view('c', { usage: 0.9 }),
      view('d', { usage: 0.3 }),
    ];
    const r = schedule(profile, ctx({ random: seeded(1) }), v);
    expect(r.primary).toBe(v[1]);
    expect(r.fallbacks).toEqual([v[3], v[0]]);
    expect(r.score).toBeCloseTo(0.9, 12);
  });

  it('keeps unknown endpoints eligible', () => {
    const profile = compile(
      '- type: kv-cache-utilization-scorer',
      '  - pluginRef: kv-cache-utilization-scorer',
    );
    const full = view('full', { usage: 0.95 });
    const unknown = view('u', { unknown: true });
    expect(schedule(profile, ctx(), [full, unknown]).primary).toBe(unknown);
  });

  it('produces a PD result: destination = leader, pod headers, charges', () => {
    const profile = compile(
      [
        '- type: filter-by-pd-label',
        '- type: scorer-pd-bucket',
        '  parameters: {decayFactor: 0.9, bucketSeperateLength: 100}',
        '- type: prefix-cache-scorer',
        '- type: pd-header-handler',
      ].join('\n'),
      [
        '  - pluginRef: filter-by-pd-label',
        '  - pluginRef: scorer-pd-bucket',
        '    weight: 1',
        '  - pluginRef: prefix-cache-scorer',
        '  - pluginRef: pd-header-handler',
      ].join('\n'),
    );
    const g = pdGroup(
      'g',
      [{ address: '10.2.0.1' }, { address: '10.2.0.2' }],
      [{ address: '10.2.0.3', port: 9000 }],
    );
    const bucketLoads = new Map([[g.prefill[0]!.endpoint.id, { short: 10, long: 0, atEvent: 0 }]]);
    const c = ctx({ promptTokens: 150, bucketLoads, prefixHashes: [101, 102] });
    const r = schedule(profile, c, g.all);
    expect(r.primary).toBe(g.leader);
    expect(r.fallbacks).toEqual([]);
    expect(r.pd).toEqual({ groupId: 'g', leader: g.leader, prefill: g.prefill[1], decode: g.decode[0] });
    expect(r.headers).toEqual({
      'x-openfuyao-prefill-pod-address-port': '10.2.0.2:8000',
      'x-openfuyao-decode-pod-address-port': '10.2.0.3:9000',
    });
    expect(r.charges).toEqual({
      inFlight: [g.leader.endpoint.id, g.prefill[1]!.endpoint.id, g.decode[0]!.endpoint.id],
      bucket: {
        decayFactor: 0.9,
        items: [
          { endpointId: g.prefill[1]!.endpoint.id, bucket: 'long', amount: 150 },
          { endpointId: g.decode[0]!.endpoint.id, bucket: 'long', amount: 150 },
        ],
      },
      prefixRecord: { endpointId: g.prefill[1]!.endpoint.id, hashes: [101, 102] },
      prefillTokens: [{ endpointId: g.prefill[1]!.endpoint.id, tokens: 150 }],
    });
  });

  it('charges the prompt tokens not expected cached: hit rate first, else prefix match, else all', () => {
    const a = view('a').endpoint.id;
    const req = { promptTokens: 1000 };
    expect(uncachedPromptTokens(ctx(req), a)).toBe(1000);
    expect(uncachedPromptTokens(ctx({ ...req, hitRates: { [a]: 0.25 } }), a)).toBe(750);
    // Out-of-range hit rates are clamped, as scores are.
    expect(uncachedPromptTokens(ctx({ ...req, hitRates: { [a]: 1.5 } }), a)).toBe(0);
    const px = { prefixMatches: new Map([[a, 3]]), prefixBlockTokens: 64 };
    expect(uncachedPromptTokens(ctx({ ...req, ...px }), a)).toBe(1000 - 192);
    // The indexer's answer wins over the approximate index.
    expect(uncachedPromptTokens(ctx({ ...req, ...px, hitRates: { [a]: 0.5 } }), a)).toBe(500);
    // Known prefix index, endpoint holds nothing: all of it; more matched than the prompt: none.
    expect(uncachedPromptTokens(ctx({ ...req, ...px }), 'other:1')).toBe(1000);
    expect(uncachedPromptTokens(ctx({ promptTokens: 100, ...px }), a)).toBe(0);
  });

  it('takes the PD pods from the PD scorer with the highest weight', () => {
    // p0 is cheap for scorer-pd-kv-cache-aware (KV hit) but loaded for scorer-pd-bucket.
    const g = pdGroup('g', [{}, {}], [{}]);
    const [p0, p1] = g.prefill;
    const data = {
      hitRates: { [p0!.endpoint.id]: 1 },
      bucketLoads: new Map([[p0!.endpoint.id, { short: 500, long: 500, atEvent: 0 }]]),
    };
    const run = (wBucket: number, wKv: number) =>
      schedule(
        compile(
          '- type: filter-by-pd-label\n- type: scorer-pd-bucket\n- type: scorer-pd-kv-cache-aware\n- type: picker-pd-kv-cache-aware',
          [
            '  - pluginRef: filter-by-pd-label',
            '  - pluginRef: scorer-pd-bucket',
            `    weight: ${wBucket}`,
            '  - pluginRef: scorer-pd-kv-cache-aware',
            `    weight: ${wKv}`,
            '  - pluginRef: picker-pd-kv-cache-aware',
          ].join('\n'),
        ),
        ctx(data),
        g.all,
      ).pd!.prefill;
    expect(run(1, 2)).toBe(p0);
    expect(run(2, 1)).toBe(p1);
  });

  it('draws PD pods at random when no PD scorer chose them (default picker)', () => {
    const profile = compile('- type: filter-by-pd-label', '  - pluginRef: filter-by-pd-label');
    const g = pdGroup('g', [{}, {}], [{}, {}]);
    // Single group: no tie draw; prefill floor(.7*2)=1, decode floor(.2*2)=0.
    const r = schedule(profile, ctx({ random: seqRandom([0.7, 0.2]) }), g.all);
    expect(r.pd!.prefill).toBe(g.prefill[1]);
    expect(r.pd!.decode).toBe(g.decode[0]);
    expect(r.primary).toBe(g.leader);
  });

  it('fails with a SchedulingError on no endpoints, everything filtered out, or no pick', () => {
    const pd = compile(
      '- type: filter-by-pd-label\n- type: scorer-pd-bucket',
      '  - pluginRef: filter-by-pd-label\n  - pluginRef: scorer-pd-bucket',
    );
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(SchedulingError);
        return (e as SchedulingError).code;
      }
      return 'none';
    };
    expect(code(() => schedule(pd, ctx(), []))).toBe('NO_CANDIDATES');
    expect(code(() => schedule(pd, ctx(), [view('plain'), view('other')]))).toBe('FILTERED_OUT');
    const incomplete = pdGroup('g', [], [{}]).all; // no prefill pod
    expect(code(() => schedule(pd, ctx(), incomplete))).toBe('FILTERED_OUT');
    const empty: Picker = { type: 'x', name: 'x', pick: () => ({ targets: [] }) };
    expect(code(() => schedule(profileOf({ picker: empty }), ctx(), [view('a')]))).toBe('NO_PICK');
  });
});
