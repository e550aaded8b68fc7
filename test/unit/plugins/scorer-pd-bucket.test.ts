import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { bucketOf, scorerPdBucket as factory } from '../../../src/plugins/scorer-pd-bucket.js';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { schedule } from '../../../src/scheduling/scheduler.js';
import type {
  BucketLoadRecord,
  Candidate,
  EndpointView,
  SchedulingResult,
} from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { decayed } from '../../../src/state/store.js';
import {
  CAPACITY,
  build,
  ctx,
  endpoints,
  pdGroup,
  request,
  scoresOf,
  seeded,
  seqRandom,
  view,
} from './fixtures.js';

function asCandidate(
  g: ReturnType<typeof pdGroup>,
  id = g.leader.endpoint.labels['openfuyao.com/pdGroupID']!,
): Candidate {
  return { kind: 'group', id, group: { id, leader: g.leader, prefill: g.prefill, decode: g.decode } };
}

function loads(entries: Array<[EndpointView, Partial<BucketLoadRecord>]>): Map<string, BucketLoadRecord> {
  return new Map(entries.map(([v, r]) => [v.endpoint.id, { short: 0, long: 0, atEvent: 0, ...r }]));
}

describe('scorer-pd-bucket', () => {
  it('classifies prompts longer than bucketSeperateLength as long', () => {
    expect(bucketOf(200, 200)).toBe('short');
    expect(bucketOf(201, 200)).toBe('long');
    expect(bucketOf(0, 0)).toBe('short');
    const p = build(factory, { bucketSeperateLength: 50 });
    const g = pdGroup('g', [{}], [{}]);
    const res = { pd: { prefill: g.prefill[0]!, decode: g.decode[0]! } } as SchedulingResult;
    expect(p.charges!(ctx({ promptTokens: 51 }), res).bucket!.items[0]!.bucket).toBe('long');
    expect(p.charges!(ctx({ promptTokens: 50 }), res).bucket!.items[0]!.bucket).toBe('short');
  });

  it('declares that it needs the bucket loads and takes the documented defaults', () => {
    const parsed = factory.parameters.parse({});
    expect(parsed).toEqual({
      alpha: 1,
      beta: 2,
      decayFactor: 0.99,
      bucketSeperateLength: 200,
      capacityLabelName: 'openfuyao.com/capacity',
      loadNormalization: 'max',
    });
    expect(build(factory).dataNeeds).toEqual({ bucketLoads: true });
  });

  it('computes pod and group costs by hand', () => {
    const g = pdGroup('g', [{}, {}], [{}, {}]);
    const [p0, p1] = g.prefill as [EndpointView, EndpointView];
    const [d0] = g.decode as [EndpointView, EndpointView];
    const bucketLoads = loads([
      [p0, { short: 300, long: 100 }],
      [p1, { long: 400 }],
      [d0, { short: 2 }],
    ]);
    const out = build(factory).score!(ctx({ promptTokens: 100, bucketLoads }), [asCandidate(g)]);
    // short request. normP = 400: p0 = 1*400/400 + 2*100/400 = 1.5, p1 = 1 + 2*400/400 = 3 -> p0
    // normD = 2: d0 = 1*2/2 + 0 = 1, d1 = 0 -> d1.  cost(g) = 1.5, max = 2*(1+2) = 6
    expect(out.scores[0]).toBeCloseTo(1 - 1.5 / 6, 8);
    expect(out.pdChoices![0]).toEqual({ prefill: p0, decode: g.decode[1] });

    // A long request sees the other bucket (short) as the penalty.
    const long = build(factory).score!(ctx({ promptTokens: 1000, bucketLoads }), [asCandidate(g)]);
    // p0 = 1 + 2*300/400 = 2.5, p1 = 1 + 0 = 1 -> p1; d0 = 1 + 2*2/2 = 3, d1 = 0 -> d1
    expect(long.scores[0]).toBeCloseTo(1 - 1 / 6, 8);
    expect(long.pdChoices![0]).toEqual({ prefill: p1, decode: g.decode[1] });
  });

  it('applies alpha and beta', () => {
    const g = pdGroup('g', [{}], [{}]);
    const bucketLoads = loads([[g.prefill[0]!, { short: 10, long: 30 }]]);
    const p = build(factory, { alpha: 0.5, beta: 4 });
    // short request: prefill = 0.5*1 + 4*30/40 = 3.5; decode empty = 0 ; max = 2*4.5 = 9
    expect(p.score!(ctx({ promptTokens: 5, bucketLoads }), [asCandidate(g)]).scores[0]).toBeCloseTo(
      1 - 3.5 / 9,
      8,
    );
  });

  it('decays stored loads lazily to the pool event on read', () => {
    const g = pdGroup('g', [{}, {}], [{}]);
    const [a, b] = g.prefill as [EndpointView, EndpointView];
    // a: 1000 tokens 10 events ago; b: 100 tokens now. d = 0.5: a is 1000/1024 now.
    const bucketLoads = loads([
      [a, { short: 1000, atEvent: 0 }],
      [b, { short: 100, atEvent: 10 }],
    ]);
    const p = build(factory, { decayFactor: 0.5 });
    const out = p.score!(ctx({ promptTokens: 10, bucketLoads, poolEvent: 10 }), [asCandidate(g)]);
    expect(out.pdChoices![0]!.prefill).toBe(a);
    // prefill a = 1 * (1000/1024) / 100; decode empty = 0; max 6
    expect(out.scores[0]).toBeCloseTo(1 - 1000 / 1024 / 100 / 6, 8);
    // Without decay (d close to 1) b is the lighter one.
    const q = build(factory, { decayFactor: 0.999999 });
    expect(
      q.score!(ctx({ promptTokens: 10, bucketLoads, poolEvent: 10 }), [asCandidate(g)]).pdChoices![0]!
        .prefill,
    ).toBe(b);
  });

  it('scales the load term by capacity (heterogeneous pods)', () => {
    const big = { labels: { [CAPACITY]: '2' } };
    const g = pdGroup('g', [big, {}], [{}]);
    const [p0, p1] = g.prefill as [EndpointView, EndpointView];
    const bucketLoads = loads([
      [p0, { short: 400 }],
      [p1, { short: 300 }],
    ]);
    const out = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), [asCandidate(g)]);
    // load terms 400/2 = 200 and 300 -> norm 300: p0 = 2/3, p1 = 1 -> the bigger pod takes more
    expect(out.pdChoices![0]!.prefill).toBe(p0);
    expect(out.scores[0]).toBeCloseTo(1 - 2 / 3 / 6, 8);
    // Same raw loads without the label: p1 (300) wins.
    const flat = pdGroup('f', [{}, {}], [{}]);
    const flatLoads = loads([
      [flat.prefill[0]!, { short: 400 }],
      [flat.prefill[1]!, { short: 300 }],
    ]);
    const f = build(factory).score!(ctx({ promptTokens: 10, bucketLoads: flatLoads }), [asCandidate(flat)]);
    expect(f.pdChoices![0]!.prefill).toBe(flat.prefill[1]);
  });

  it('treats missing or invalid capacity labels as 1 and honours capacityLabelName', () => {
    for (const bad of ['abc', '0', '-2', '']) {
      const g = pdGroup('g', [{ labels: { [CAPACITY]: bad } }, {}], [{}]);
      const bucketLoads = loads([
        [g.prefill[0]!, { short: 300 }],
        [g.prefill[1]!, { short: 400 }],
      ]);
      const out = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), [asCandidate(g)]);
      expect(out.pdChoices![0]!.prefill, bad).toBe(g.prefill[0]);
    }
    const g = pdGroup('g', [{ labels: { tp: '4' } }, {}], [{}]);
    const bucketLoads = loads([
      [g.prefill[0]!, { short: 400 }],
      [g.prefill[1]!, { short: 300 }],
    ]);
    const p = build(factory, { capacityLabelName: 'tp' });
    expect(p.score!(ctx({ promptTokens: 10, bucketLoads }), [asCandidate(g)]).pdChoices![0]!.prefill).toBe(
      g.prefill[0],
    );
  });

  it('sums the best prefill and best decode cost per group and compares groups', () => {
    const g1 = pdGroup('g1', [{}], [{}]);
    const g2 = pdGroup('g2', [{}], [{}]);
    const bucketLoads = loads([
      [g1.prefill[0]!, { short: 100 }],
      [g2.prefill[0]!, { short: 50 }],
      [g2.decode[0]!, { long: 4 }],
    ]);
    const s = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), [
      asCandidate(g1),
      asCandidate(g2),
    ]).scores;
    // g1: prefill 100/100 = 1, decode 0 -> 1;  g2: prefill .5, decode 1*4/4 + 2*4/4 = 3 -> 3.5
    expect(s[0]).toBeCloseTo(1 - 1 / 6, 8);
    expect(s[1]).toBeCloseTo(1 - 3.5 / 6, 8);
  });

  it('treats a pod without a load record as empty and ignores scraped signals (unknown stays eligible)', () => {
    const g = pdGroup('g', [{ unknown: true }, { waiting: 0, usage: 0 }], [{ unknown: true }]);
    const bucketLoads = loads([[g.prefill[1]!, { short: 10 }]]);
    const out = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), [asCandidate(g)]);
    expect(out.pdChoices![0]!.prefill).toBe(g.prefill[0]);
    expect(out.scores[0]).toBe(1);
  });

  it('breaks ties between equally loaded pods with the random source', () => {
    const g = pdGroup('g', [{}, {}, {}], [{}]);
    // Three ties: the 2nd replaces when r*2 < 1, the 3rd when r*3 < 1.
    const pick = (r: number[]) =>
      build(factory).score!(ctx({ random: seqRandom(r) }), [asCandidate(g)]).pdChoices![0]!.prefill;
    expect(pick([0.9, 0.9])).toBe(g.prefill[0]);
    expect(pick([0.1, 0.9])).toBe(g.prefill[1]);
    expect(pick([0.9, 0.1])).toBe(g.prefill[2]);
  });

  it('charges promptTokens to the prefill pod and one sequence to the decode pod, with its decay factor', () => {
    const g = pdGroup('g', [{}], [{}]);
    const p = build(factory, { decayFactor: 0.9 });
    const res = {
      pd: { prefill: g.prefill[0]!, decode: g.decode[0]! },
      primary: g.leader,
    } as SchedulingResult;
    expect(p.charges!(ctx({ promptTokens: 700 }), res)).toEqual({
      bucket: {
        decayFactor: 0.9,
        items: [
          { endpointId: g.prefill[0]!.endpoint.id, bucket: 'long', amount: 700 },
          { endpointId: g.decode[0]!.endpoint.id, bucket: 'long', amount: 1 },
        ],
      },
    });
    // Aggregated (no PD filter): the primary endpoint carries the tokens.
    const a = view('a');
    expect(p.charges!(ctx({ promptTokens: 0 }), { primary: a } as SchedulingResult).bucket!.items).toEqual([
      { endpointId: a.endpoint.id, bucket: 'short', amount: 1 },
    ]);
  });

  it('scores plain endpoints as single pods with maxPossibleCost alpha + beta', () => {
    const a = view('a');
    const b = view('b');
    const bucketLoads = loads([
      [a, { long: 100 }],
      [b, { short: 50 }],
    ]);
    const s = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), endpoints(a, b)).scores;
    // a = 1 + 2 = 3 -> 0; b = .5 -> 1 - .5/3
    expect(s[0]).toBeCloseTo(0, 8);
    expect(s[1]).toBeCloseTo(1 - 0.5 / 3, 8);
  });

  it('rejects decay factors outside (0, 1) and a non-integer length', () => {
    for (const decayFactor of [0, 1, 1.5, -0.1])
      expect(factory.parameters.safeParse({ decayFactor }).success).toBe(false);
    expect(factory.parameters.safeParse({ bucketSeperateLength: 12.5 }).success).toBe(false);
    expect(factory.parameters.safeParse({ bucketSeparateLength: 100 }).success).toBe(false);
    expect(factory.parameters.safeParse({ alpha: '1' }).success).toBe(false);
  });
});

describe('scorer-pd-bucket with the state store', () => {
  const d = 0.97;
  const charge = (id: string, bucket: 'short' | 'long', amount: number, n: number) => ({
    chargeId: `r${n}`,
    charges: { inFlight: [], bucket: { decayFactor: d, items: [{ endpointId: id, bucket, amount }] } },
    leaseMs: 60_000,
    decision: {
      requestId: `r${n}`,
      atMs: 0,
      model: 'm',
      profile: 'p',
      endpoint: id,
      promptTokens: amount,
      score: 0,
    },
  });

  it('decays a single charge as d^n over n later picks (closed form)', async () => {
    const store = new MemoryStateStore();
    await store.commitPick(charge('A', 'long', 1000, 0));
    for (let n = 1; n <= 200; n++) {
      await store.commitPick(charge('B', 'short', 1, n));
      const snap = await store.readSnapshot({ bucketLoads: true });
      const rec = snap.bucketLoads.get('A')!;
      expect(snap.poolEvent - rec.atEvent).toBe(n);
      // What the scorer reads: the stored value decayed to the pool event.
      expect(decayed(rec.long, rec.atEvent, snap.poolEvent, d)).toBeCloseTo(1000 * Math.pow(d, n), 9);
    }
    // The scorer reads the same decayed values: A (1000 long, 200 events old)
    // against B (200 steady short charges of 1), for a long request.
    const snap = await store.readSnapshot({ bucketLoads: true });
    const a = view('A');
    const b = view('B');
    const byView = new Map([
      [a.endpoint.id, snap.bucketLoads.get('A')!],
      [b.endpoint.id, snap.bucketLoads.get('B')!],
    ]);
    const s = build(factory, { decayFactor: d }).score!(
      ctx({ promptTokens: 1000, bucketLoads: byView, poolEvent: snap.poolEvent }),
      endpoints(a, b),
    ).scores;
    const loadA = 1000 * Math.pow(d, 200);
    const loadB = (1 - Math.pow(d, 200)) / (1 - d);
    expect(loadA).toBeLessThan(loadB);
    // A: alpha * loadA / loadB + beta * 0;  B: alpha * 1 + beta * 1 (all short)
    expect(s[0]).toBeCloseTo(1 - loadA / loadB / 3, 8);
    expect(s[1]).toBeCloseTo(0, 8);
  });

  it('accumulates a steady charge to a(1 - d^n)/(1 - d)', async () => {
    const store = new MemoryStateStore();
    for (let n = 1; n <= 300; n++) {
      await store.commitPick(charge('A', 'short', 5, n));
      const rec = (await store.readSnapshot({ bucketLoads: true })).bucketLoads.get('A')!;
      expect(rec.short).toBeCloseTo((5 * (1 - Math.pow(d, n))) / (1 - d), 9);
    }
  });

  it('keeps long and short requests on different pods when load allows, through the whole cycle', async () => {
    const registry = builtinRegistry();
    const { profile } = loadConfigText(
      `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: filter-by-pd-label
- type: scorer-pd-bucket
- type: pd-header-handler
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: filter-by-pd-label
  - pluginRef: scorer-pd-bucket
    weight: 1
  - pluginRef: pd-header-handler
`,
      'inline.yaml',
      registry,
    );
    const g = pdGroup('g', [{}, {}], [{}, {}]);
    const store = new MemoryStateStore();
    const random = seeded(42);
    const prefillBy = { short: new Map<string, number>(), long: new Map<string, number>() };
    const decodeBy = { short: new Map<string, number>(), long: new Map<string, number>() };
    for (let i = 0; i < 400; i++) {
      const tokens = random() < 0.3 ? 2000 + Math.floor(random() * 4000) : 20 + Math.floor(random() * 150);
      const b = tokens > 200 ? 'long' : 'short';
      const snap = await store.readSnapshot({ bucketLoads: true });
      const c = ctx({ request: request({ requestId: `r${i}`, promptTokens: tokens }), random });
      const res = schedule(
        profile,
        { ...c, data: { ...c.data, bucketLoads: snap.bucketLoads, poolEvent: snap.poolEvent } },
        g.all,
      );
      expect(res.primary).toBe(g.leader);
      const pid = res.pd!.prefill.endpoint.id;
      const did = res.pd!.decode.endpoint.id;
      prefillBy[b].set(pid, (prefillBy[b].get(pid) ?? 0) + 1);
      decodeBy[b].set(did, (decodeBy[b].get(did) ?? 0) + 1);
      await store.commitPick({
        chargeId: `r${i}`,
        charges: res.charges,
        leaseMs: 60_000,
        decision: {
          requestId: `r${i}`,
          atMs: 0,
          model: 'm',
          profile: 'default',
          endpoint: res.primary.endpoint.id,
          promptTokens: tokens,
          score: res.score,
        },
      });
    }
    // Each bucket settled on its own prefill pod and its own decode pod.
    expect(prefillBy.long.size).toBe(1);
    expect(prefillBy.short.size).toBe(1);
    expect([...prefillBy.long.keys()][0]).not.toBe([...prefillBy.short.keys()][0]);
    expect(decodeBy.long.size).toBe(1);
    expect(decodeBy.short.size).toBe(1);
    expect([...decodeBy.long.keys()][0]).not.toBe([...decodeBy.short.keys()][0]);
  });

  it('balances load instead when there are more pods than buckets', async () => {
    // Four prefill pods, only short requests: the load term spreads them out.
    const registry = builtinRegistry();
    const { profile } = loadConfigText(
      `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: filter-by-pd-label
- type: scorer-pd-bucket
`,
      'inline.yaml',
      registry,
    );
    const g = pdGroup('g', [{}, {}, {}, {}], [{}]);
    const store = new MemoryStateStore();
    const random = seeded(3);
    const count = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const snap = await store.readSnapshot({ bucketLoads: true });
      const c = ctx({ promptTokens: 100, random });
      const res = schedule(
        profile,
        { ...c, data: { ...c.data, bucketLoads: snap.bucketLoads, poolEvent: snap.poolEvent } },
        g.all,
      );
      const id = res.pd!.prefill.endpoint.id;
      count.set(id, (count.get(id) ?? 0) + 1);
      await store.commitPick({
        chargeId: `r${i}`,
        charges: res.charges,
        leaseMs: 60_000,
        decision: {
          requestId: `r${i}`,
          atMs: 0,
          model: 'm',
          profile: 'default',
          endpoint: id,
          promptTokens: 100,
          score: 0,
        },
      });
    }
    expect(count.size).toBe(4);
    for (const n of count.values()) expect(Math.abs(n - 100)).toBeLessThanOrEqual(2);
  });

  describe('loadNormalization: mean (optional)', () => {
    // Three prefill pods: p0 holds 2600 long tokens, p1 and p2 200 short each.
    // Sum 3000, mean 1000, max 2600. One empty decode pod (norm 0 -> term 0).
    function setup() {
      const g = pdGroup('g', [{}, {}, {}], [{}]);
      const [p0, p1, p2] = g.prefill as [EndpointView, EndpointView, EndpointView];
      const bucketLoads = loads([
        [p0, { long: 2600 }],
        [p1, { short: 200 }],
        [p2, { short: 200 }],
      ]);
      return { g, p0, p1, p2, bucketLoads };
    }

    it('max (default): the long pod always wins a long request, however loaded', () => {
      const { g, p0, bucketLoads } = setup();
      const out = build(factory).score!(ctx({ promptTokens: 5000, bucketLoads }), [asCandidate(g)]);
      // p0 = 2600/2600 + 0 = 1; p1 = p2 = 200/2600 + 2*1 = 2.077 -> p0; max cost 2*(1+2) = 6
      expect(out.pdChoices![0]!.prefill).toBe(p0);
      expect(out.scores[0]).toBeCloseTo(1 - 1 / 6, 8);
    });

    it('mean: a pod more than beta/alpha means above the others sheds load', () => {
      const { g, p1, p2, bucketLoads } = setup();
      const p = build(factory, { loadNormalization: 'mean' });
      const out = p.score!(ctx({ promptTokens: 5000, bucketLoads }), [asCandidate(g)]);
      // p0 = 2600/1000 = 2.6; p1 = p2 = 200/1000 + 2*1 = 2.2 -> p1 or p2 (tie)
      // maxPossibleCost = alpha*3 + beta + alpha*max(1,1) + beta = 8
      expect([p1, p2]).toContain(out.pdChoices![0]!.prefill);
      expect(out.scores[0]).toBeCloseTo(1 - 2.2 / 8, 8);
      // A short request still avoids the long pod: p1 = 0.2 + 0 = 0.2, p0 = 2.6 + 2 = 4.6
      const short = p.score!(ctx({ promptTokens: 50, bucketLoads }), [asCandidate(g)]);
      expect([p1, p2]).toContain(short.pdChoices![0]!.prefill);
      expect(short.scores[0]).toBeCloseTo(1 - 0.2 / 8, 8);
    });

    it('mean: separation still wins while loads are comparable', () => {
      const g = pdGroup('g', [{}, {}, {}], [{}]);
      const [p0, p1, p2] = g.prefill as [EndpointView, EndpointView, EndpointView];
      const bucketLoads = loads([
        [p0, { long: 1200 }],
        [p1, { short: 900 }],
        [p2, { short: 900 }],
      ]);
      // mean 1000: p0 = 1.2; p1 = p2 = 0.9 + 2 = 2.9 -> p0
      const out = build(factory, { loadNormalization: 'mean' }).score!(
        ctx({ promptTokens: 5000, bucketLoads }),
        [asCandidate(g)],
      );
      expect(out.pdChoices![0]!.prefill).toBe(p0);
      expect(out.scores[0]).toBeCloseTo(1 - 1.2 / 8, 8);
    });

    it('mean on plain endpoints: maxPossibleCost = alpha * n + beta', () => {
      const a = view('a');
      const b = view('b');
      const bucketLoads = loads([
        [a, { short: 300 }],
        [b, { short: 100 }],
      ]);
      const s = scoresOf(
        build(factory, { loadNormalization: 'mean' }),
        ctx({ promptTokens: 10, bucketLoads }),
        endpoints(a, b),
      );
      // mean 200: a = 1.5, b = 0.5; max = 1*2 + 2 = 4
      expect(s[0]).toBeCloseTo(1 - 1.5 / 4, 8);
      expect(s[1]).toBeCloseTo(1 - 0.5 / 4, 8);
    });

    it('rejects other values', () => {
      expect(() => factory.parameters.parse({ loadNormalization: 'sum' })).toThrow(
        /expected .*max.* or .*mean/,
      );
    });
  });
});
