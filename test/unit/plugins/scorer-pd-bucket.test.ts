import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../../src/plugins/index.js';
import {
  bucketOf,
  decodeCosts,
  prefillCosts,
  scorerPdBucket as factory,
  shareOf,
  type PodLoad,
} from '../../../src/plugins/scorer-pd-bucket.js';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { schedule } from '../../../src/scheduling/scheduler.js';
import type {
  BucketLoadRecord,
  Candidate,
  EndpointView,
  SchedulingResult,
} from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { CAPACITY, build, ctx, endpoints, pdGroup, request, seeded, seqRandom, view } from './fixtures.js';

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
    expect(factory.parameters.parse({})).toEqual({
      alpha: 1,
      beta: 2,
      decayFactor: 0.99,
      bucketSeperateLength: 200,
      capacityLabelName: 'openfuyao.com/capacity',
    });
    expect(build(factory).dataNeeds).toEqual({ bucketLoads: true });
  });

  describe('shareOf', () => {
    const pl = (id: string, short: number, long: number, cap = 1): PodLoad => ({ id, short, long, cap });

    it('has no shares for one pod or no load', () => {
      expect(shareOf([pl('a', 5, 5)], 'long')).toBeUndefined();
      expect(shareOf([pl('a', 0, 0), pl('b', 0, 0)], 'short')).toBeUndefined();
    });

    it('gives the minority bucket the pods most devoted to it, rounded up, and the rest to the other', () => {
      // long 95%, short 5% of 4 pods: short (minority) gets ceil(0.2) = 1 pod, the most short-devoted.
      const pods = [pl('a', 0, 300), pl('b', 10, 300), pl('c', 40, 0), pl('d', 0, 310)];
      expect([...shareOf(pods, 'short')!]).toEqual(['c']);
      expect([...shareOf(pods, 'long')!].sort()).toEqual(['a', 'b', 'd']);
      // 50/50 over 4 pods: 2 each (long counts as the minority on a tie).
      const even = [pl('a', 10, 0), pl('b', 10, 0), pl('c', 0, 10), pl('d', 0, 10)];
      expect([...shareOf(even, 'long')!].sort()).toEqual(['c', 'd']);
      expect([...shareOf(even, 'short')!].sort()).toEqual(['a', 'b']);
    });

    it('has no shares while a bucket has no load (no pod is kept idle for it)', () => {
      const pods = [pl('a', 50, 0), pl('b', 30, 0), pl('c', 20, 0)];
      expect(shareOf(pods, 'long')).toBeUndefined();
      expect(shareOf(pods, 'short')).toBeUndefined();
      // A trace of long load: long gets one pod, short the other two.
      const some = [pl('a', 50, 0), pl('b', 30, 1), pl('c', 20, 0)];
      expect([...shareOf(some, 'long')!]).toEqual(['b']);
      expect(shareOf(some, 'short')!.size).toBe(2);
    });

    it('sizes shares by capacity (heterogeneous pods)', () => {
      // long = 2/3 of the load over capacity 1 + 1 + 2 = 4 -> the short share needs 4/3: the
      // big pod (capacity 2) alone covers it.
      const pods = [pl('a', 0, 100), pl('b', 0, 100), pl('big', 100, 0, 2)];
      expect([...shareOf(pods, 'short')!]).toEqual(['big']);
      expect([...shareOf(pods, 'long')!].sort()).toEqual(['a', 'b']);
    });
  });

  it('computes prefill and decode costs by hand: slowdown inside the share, separation scaled by length outside', () => {
    // g: p0 short-devoted, p1 and p2 long-devoted; h: one empty prefill pod and one decode pod.
    // Decode pods never scraped: they balance by the decayed charges.
    const g = pdGroup(
      'g',
      [{ pendingPrefillTokens: 100 }, { pendingPrefillTokens: 500 }, { pendingPrefillTokens: 300 }],
      [{ unknown: true }, { unknown: true }],
    );
    const h = pdGroup('h', [{ pendingPrefillTokens: 2000 }], [{ unknown: true }]);
    const [p0, p1, p2] = g.prefill as [EndpointView, EndpointView, EndpointView];
    const [d0, d1] = g.decode as [EndpointView, EndpointView];
    const bucketLoads = loads([
      [p0, { short: 90 }],
      [p1, { long: 5000 }],
      [p2, { long: 4000, short: 10 }],
      [d0, { short: 300, long: 3000 }],
      [d1, { short: 100, long: 1000 }],
      [h.decode[0]!, { long: 2200 }],
    ]);
    // Shares: short = 100 of 9,100 tokens over 4 pods -> ceil(0.04) = 1 pod, the most
    // short-devoted: {p0}; long = {p1, p2, h's q0}.
    // Decode: mean (3300 + 1100 + 2200) / 3 = 2200: d0 = 1.5, d1 = 0.5, h's = 1.
    const score = (promptTokens: number) =>
      build(factory).score!(ctx({ promptTokens, bucketLoads }), [asCandidate(g), asCandidate(h)]);
    // Long request, P = 5000: separation 2 * 5000/200 = 50.
    // p0 = 100/5000 + 50, p1 = 500/5000 = 0.1, p2 = 0.06, q0 = 2000/5000 = 0.4.
    // g = 0.06 + 0.5 = 0.56, h = 0.4 + 1 = 1.4: scores 1 - 0.56/1.4 = 0.6 and 0.
    const long = score(5000);
    expect(long.pdChoices![0]).toEqual({ prefill: p2, decode: d1 });
    expect(long.scores[0]).toBeCloseTo(0.6, 8);
    expect(long.scores[1]).toBe(0);
    // Short request, P = 50: separation the flat beta = 2.
    // p0 = 100/50 = 2, p1 = 10 + 2, p2 = 6 + 2, q0 = 40 + 2: g = 2 + 0.5, h = 42 + 1.
    const short = score(50);
    expect(short.pdChoices![0]).toEqual({ prefill: p0, decode: d1 });
    expect(short.scores[0]).toBeCloseTo(1 - 2.5 / 43, 8);
    // Long bucket, P = 400: separation 2 * 400/200 = 4.
    // p0 = 0.25 + 4, p1 = 1.25, p2 = 0.75, q0 = 5: g = 0.75 + 0.5, h = 5 + 1.
    const medium = score(400);
    expect(medium.pdChoices![0]).toEqual({ prefill: p2, decode: d1 });
    expect(medium.scores[0]).toBeCloseTo(1 - 1.25 / 6, 8);
  });

  it('lets a prompt leave its share when waiting there costs more than the slowdown it causes outside', () => {
    const g = pdGroup('g', [{ pendingPrefillTokens: 0 }, { pendingPrefillTokens: 0 }], [{}]);
    const [p0, p1] = g.prefill as [EndpointView, EndpointView];
    // Shares: short {p0}, long {p1}.
    const bucketLoads = loads([
      [p0, { short: 10 }],
      [p1, { long: 1000 }],
    ]);
    const pick = (
      promptTokens: number,
      pending0: number,
      pending1: number,
      o: Record<string, unknown> = {},
    ) => {
      const g2 = {
        ...g,
        prefill: [
          { ...p0, pendingPrefillTokens: pending0 },
          { ...p1, pendingPrefillTokens: pending1 },
        ],
      };
      return build(factory, o).score!(ctx({ promptTokens, bucketLoads }), [asCandidate(g2)]).pdChoices![0]!
        .prefill.endpoint.id;
    };
    // P = 5000 on the idle short pod costs 2 * 5000/200 = 50; on p1 pending1/5000:
    // it stays until p1 holds 250,000 tokens (50 of its own prefills).
    expect(pick(5000, 0, 240_000)).toBe(p1.endpoint.id);
    expect(pick(5000, 0, 260_000)).toBe(p0.endpoint.id);
    // beta 1 halves that: 125,000.
    expect(pick(5000, 0, 130_000, { beta: 1 })).toBe(p0.endpoint.id);
    // P = 400 (long bucket) costs 2 * 2 = 4 outside: it takes the short pod past 1,600 queued tokens.
    expect(pick(400, 0, 1500)).toBe(p1.endpoint.id);
    expect(pick(400, 0, 1700)).toBe(p0.endpoint.id);
    // P = 100 (short bucket) on the long pod costs the flat beta: p0 = pending0/100 vs p1 = 0 + 2.
    expect(pick(100, 150, 0)).toBe(p0.endpoint.id);
    expect(pick(100, 250, 0)).toBe(p1.endpoint.id);
    // Idle pods: separation decides.
    expect(pick(5000, 0, 0)).toBe(p1.endpoint.id);
    expect(pick(100, 0, 0)).toBe(p0.endpoint.id);
  });

  it('scales the wait by capacity (heterogeneous pods)', () => {
    const big = { labels: { [CAPACITY]: '2' }, pendingPrefillTokens: 400 };
    const g = pdGroup('g', [big, { pendingPrefillTokens: 300 }], [{}]);
    // No bucket load yet: no shares, wait alone: 400/2 = 200 < 300 -> the big pod.
    const out = build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(g)]);
    expect(out.pdChoices![0]!.prefill).toBe(g.prefill[0]);
    for (const bad of ['abc', '0', '-2', '']) {
      const h = pdGroup(
        'h',
        [{ labels: { [CAPACITY]: bad }, pendingPrefillTokens: 400 }, { pendingPrefillTokens: 300 }],
        [{}],
      );
      expect(build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(h)]).pdChoices![0]!.prefill).toBe(
        h.prefill[1],
      );
    }
    const t = pdGroup(
      't',
      [{ labels: { tp: '4' }, pendingPrefillTokens: 400 }, { pendingPrefillTokens: 300 }],
      [{}],
    );
    const p = build(factory, { capacityLabelName: 'tp' });
    expect(p.score!(ctx({ promptTokens: 10 }), [asCandidate(t)]).pdChoices![0]!.prefill).toBe(t.prefill[0]);
  });

  it('decays stored loads lazily to the pool event on read (decode balance while a decode pod is unscraped)', () => {
    const g = pdGroup('g', [{}], [{}, { unknown: true }]);
    const [a, b] = g.decode as [EndpointView, EndpointView];
    // a: 1000 tokens 10 events ago; b: 100 tokens now. d = 0.5: a is 1000/1024 now.
    const bucketLoads = loads([
      [a, { short: 1000, atEvent: 0 }],
      [b, { short: 100, atEvent: 10 }],
    ]);
    const out = build(factory, { decayFactor: 0.5 }).score!(
      ctx({ promptTokens: 10, bucketLoads, poolEvent: 10 }),
      [asCandidate(g)],
    );
    expect(out.pdChoices![0]!.decode).toBe(a);
    const q = build(factory, { decayFactor: 0.999999 });
    expect(
      q.score!(ctx({ promptTokens: 10, bucketLoads, poolEvent: 10 }), [asCandidate(g)]).pdChoices![0]!.decode,
    ).toBe(b);
  });

  it('sends decode to an idle pod first, then to the least KV in use, when every decode pod is scraped', () => {
    // d0 idle at usage 0.3; d1 runs 2 at 0.05; d2 runs none but has 1 in flight (busy) at 0.
    // kv = 0.3, 1.05, 1.0: d0 wins although it reads the most KV, and the charges (d0 the
    // heaviest) play no part.
    const g = pdGroup('g', [{}], [{ usage: 0.3 }, { running: 2, usage: 0.05 }, { inFlight: 1 }]);
    const [d0, d1, d2] = g.decode as [EndpointView, EndpointView, EndpointView];
    const bucketLoads = loads([[d0, { long: 9000 }]]);
    const out = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), [asCandidate(g)]);
    expect(out.pdChoices![0]!.decode).toBe(d0);
    // Only busy pods: the least KV in use (d2 at 0 < d1 at 0.05).
    const busy = pdGroup('b', [{}], [{ running: 2, usage: 0.05 }, { inFlight: 1 }]);
    expect(build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(busy)]).pdChoices![0]!.decode).toBe(
      busy.decode[1],
    );
    // Against a group whose only decode pod is busy at 0.05: the mean is over both groups'
    // decode pods, (0.3 + 1.05 + 1.0 + 1.05) / 4 = 0.85; prefill costs 0; g = 0.3 / 0.85,
    // h = 1.05 / 0.85: scores 1 - 0.3 / 1.05 and 0.
    const h = pdGroup('h', [{}], [{ running: 1, usage: 0.05 }]);
    const two = build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(g), asCandidate(h)]);
    expect(two.scores[0]).toBeCloseTo(1 - 0.3 / 1.05, 8);
    expect(two.scores[1]).toBe(0);
    expect([d1, d2]).not.toContain(two.pdChoices![0]!.decode);
  });

  it('compares groups by their best prefill plus best decode cost, scored against the costliest group', () => {
    const g1 = pdGroup('g1', [{ pendingPrefillTokens: 100 }], [{}]);
    const g2 = pdGroup('g2', [{ pendingPrefillTokens: 300 }], [{}]);
    const s = build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(g1), asCandidate(g2)]).scores;
    // g1 = 100/10 = 10, g2 = 30; decode loads 0: 1 - 10/30 and 0.
    expect(s[0]).toBeCloseTo(2 / 3, 8);
    expect(s[1]).toBe(0);
  });

  it('treats a pod without a load record as empty and ignores scraped signals (unknown stays eligible)', () => {
    const g = pdGroup('g', [{ unknown: true }, { waiting: 0, usage: 0 }], [{ unknown: true }]);
    const out = build(factory).score!(ctx({ promptTokens: 10 }), [asCandidate(g)]);
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

  it('charges promptTokens to the prefill pod and to the decode pod, with its decay factor', () => {
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
          { endpointId: g.decode[0]!.endpoint.id, bucket: 'long', amount: 700 },
        ],
      },
    });
    const a = view('a');
    expect(p.charges!(ctx({ promptTokens: 0 }), { primary: a } as SchedulingResult).bucket!.items).toEqual([
      { endpointId: a.endpoint.id, bucket: 'short', amount: 1 },
    ]);
  });

  it('scores plain endpoints as prefill pods', () => {
    const a = view('a', { pendingPrefillTokens: 100 });
    const b = view('b', { pendingPrefillTokens: 300 });
    const bucketLoads = loads([
      [a, { long: 100 }],
      [b, { short: 50 }],
    ]);
    // Short request (P = 10): share(short) = {b}. a = 100/10 + 2 = 12, b = 300/10 = 30.
    const s = build(factory).score!(ctx({ promptTokens: 10, bucketLoads }), endpoints(a, b)).scores;
    expect(s[0]).toBeCloseTo(1 - 12 / 30, 8);
    expect(s[1]).toBe(0);
  });

  it('rejects decay factors outside (0, 1), a non-integer length and unknown parameters', () => {
    for (const decayFactor of [0, 1, 1.5, -0.1])
      expect(factory.parameters.safeParse({ decayFactor }).success).toBe(false);
    expect(factory.parameters.safeParse({ bucketSeperateLength: 12.5 }).success).toBe(false);
    expect(factory.parameters.safeParse({ bucketSeparateLength: 100 }).success).toBe(false);
    expect(factory.parameters.safeParse({ alpha: '1' }).success).toBe(false);
    expect(factory.parameters.safeParse({ loadNormalization: 'median' }).success).toBe(false);
  });

  it('accepts the deprecated loadNormalization and scores exactly as without it', () => {
    const g1 = pdGroup('g1', [{ pendingPrefillTokens: 100 }, { pendingPrefillTokens: 700 }], [{}]);
    const g2 = pdGroup('g2', [{ pendingPrefillTokens: 300 }], [{}]);
    const cx = () => ctx({ promptTokens: 10, random: seqRandom([0.3, 0.6]) });
    const plain = build(factory).score!(cx(), [asCandidate(g1), asCandidate(g2)]).scores;
    for (const loadNormalization of ['max', 'mean']) {
      const s = build(factory, { loadNormalization }).score!(cx(), [asCandidate(g1), asCandidate(g2)]).scores;
      expect(Array.from(s)).toEqual(Array.from(plain));
    }
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

  it('accumulates a steady charge to a(1 - d^n)/(1 - d)', async () => {
    const store = new MemoryStateStore();
    for (let n = 1; n <= 300; n++) {
      await store.commitPick(charge('A', 'short', 5, n));
      const rec = (await store.readSnapshot({ bucketLoads: true })).bucketLoads.get('A')!;
      expect(rec.short).toBeCloseTo((5 * (1 - Math.pow(d, n))) / (1 - d), 9);
    }
  });

  it('gives each bucket its own prefill pod through the whole cycle (2 pods, 2 buckets) and spreads decode', async () => {
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
    // Each bucket settled on its own prefill pod (after the first picks, which
    // precede any load); decode pods are balanced, not separated.
    const main = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1])[0]!;
    const [longPod, longN] = main(prefillBy.long);
    const [shortPod, shortN] = main(prefillBy.short);
    expect(longPod).not.toBe(shortPod);
    expect(longN).toBeGreaterThan(0.97 * [...prefillBy.long.values()].reduce((a, b) => a + b, 0));
    expect(shortN).toBeGreaterThan(0.97 * [...prefillBy.short.values()].reduce((a, b) => a + b, 0));
    expect(decodeBy.long.size).toBe(2);
    expect(decodeBy.short.size).toBe(2);
  });
});

describe('scorer-pd-bucket cost tables (shared with the benchmark variants)', () => {
  const params = factory.parameters.parse({});
  const a = view('a');
  const b = view('b', { running: 3, usage: 0.5 });
  const c = ctx({
    promptTokens: 100,
    bucketLoads: loads([
      [a, { short: 10 }],
      [b, { long: 10 }],
    ]),
  });

  it('charges the cross price outside the share, unless the pod is exempt', () => {
    const base = prefillCosts(c, [a, b], 'short', 100, params);
    expect(base.get(a.endpoint.id)).toBe(0);
    expect(base.get(b.endpoint.id)).toBe(params.beta);
    const waived = prefillCosts(c, [a, b], 'short', 100, params, (v) => v === b);
    expect(waived.get(b.endpoint.id)).toBe(0);
    expect(prefillCosts(c, [a, b], 'long', 100, params).get(a.endpoint.id)).toBe(params.beta);
  });

  it('puts an idle decode pod first', () => {
    const d = decodeCosts(c, [a, b], params);
    expect(d.get(a.endpoint.id)).toBe(0);
    expect(d.get(b.endpoint.id)).toBeGreaterThan(0);
  });
});
