import { describe, expect, it } from 'vitest';
import { filterByPdLabel as factory } from '../../../src/plugins/filter-by-pd-label.js';
import type { Candidate, PdGroup } from '../../../src/scheduling/types.js';
import { build, ctx, endpoints, pdGroup, pod, view } from './fixtures.js';

function groups(out: Candidate[]): PdGroup[] {
  return out.map((c) => {
    if (c.kind !== 'group') throw new Error('expected group candidates');
    return c.group;
  });
}

describe('filter-by-pd-label', () => {
  it('turns endpoints into complete PD groups, sorted by group id', () => {
    const g2 = pdGroup('g2', [{}, {}], [{}]);
    const g1 = pdGroup('g1', [{}], [{}, {}]);
    const out = build(factory).filter!(ctx(), endpoints(...g2.all, ...g1.all));
    const gs = groups(out);
    expect(gs.map((g) => g.id)).toEqual(['g1', 'g2']);
    expect(out.map((c) => c.id)).toEqual(['g1', 'g2']);
    expect(gs[0]!.leader).toBe(g1.leader);
    expect(gs[0]!.prefill).toEqual(g1.prefill);
    expect(gs[0]!.decode).toEqual(g1.decode);
    expect(gs[1]!.prefill).toEqual(g2.prefill);
  });

  it('drops pods with an unknown role or no group, and incomplete groups', () => {
    const ok = pdGroup('ok');
    const noLeader = [pod('a', 'prefill', 'nl'), pod('b', 'decode', 'nl')];
    const noPrefill = [pod('c', 'leader', 'np'), pod('d', 'decode', 'np')];
    const noDecode = [pod('e', 'leader', 'nd'), pod('f', 'prefill', 'nd')];
    const strays = [
      pod('agg', 'aggregate', 'ok'), // a role the filter does not know
      view('plain'), // no labels at all
      view('nogroup', { labels: { 'openfuyao.com/pdRole': 'prefill' } }),
      pod('emptygroup', 'decode', ''),
    ];
    const out = build(factory).filter!(
      ctx(),
      endpoints(...ok.all, ...noLeader, ...noPrefill, ...noDecode, ...strays),
    );
    const gs = groups(out);
    expect(gs.map((g) => g.id)).toEqual(['ok']);
    const members = [gs[0]!.leader, ...gs[0]!.prefill, ...gs[0]!.decode].map((v) => v.endpoint.name).sort();
    expect(members).toEqual(['ok-d0', 'ok-leader', 'ok-p0']);
  });

  it('chooses the leader with the lowest endpoint id when a group has several', () => {
    const l2 = pod('l2', 'leader', 'g', { address: '10.9.0.2' });
    const l1 = pod('l1', 'leader', 'g', { address: '10.9.0.1' });
    const rest = [pod('p', 'prefill', 'g'), pod('d', 'decode', 'g')];
    for (const order of [
      [l2, l1],
      [l1, l2],
    ]) {
      const gs = groups(build(factory).filter!(ctx(), endpoints(...order, ...rest)));
      expect(gs[0]!.leader).toBe(l1);
    }
  });

  it('honours custom label names and role values', () => {
    const p = build(factory, {
      pdLabelName: 'role',
      pdGroupLabelName: 'grp',
      prefillValue: 'P',
      decodeValue: 'D',
      leaderValue: 'L',
    });
    const pods = [
      view('l', { labels: { role: 'L', grp: 'x' } }),
      view('p', { labels: { role: 'P', grp: 'x' } }),
      view('d', { labels: { role: 'D', grp: 'x' } }),
    ];
    expect(groups(p.filter!(ctx(), endpoints(...pods))).map((g) => g.id)).toEqual(['x']);
    // The default label names find nothing here.
    expect(build(factory).filter!(ctx(), endpoints(...pods))).toEqual([]);
  });

  it('returns no candidate for an empty input or a pool without PD labels', () => {
    expect(build(factory).filter!(ctx(), [])).toEqual([]);
    expect(build(factory).filter!(ctx(), endpoints(view('a'), view('b')))).toEqual([]);
  });

  it('passes group candidates through unchanged', () => {
    const g = pdGroup('g');
    const c: Candidate = {
      kind: 'group',
      id: 'g',
      group: { id: 'g', leader: g.leader, prefill: g.prefill, decode: g.decode },
    };
    expect(build(factory).filter!(ctx(), [c])).toEqual([c]);
  });

  it('rejects role values that collide and non-string parameters', () => {
    expect(factory.parameters.safeParse({ decodeValue: 'prefill' }).success).toBe(false);
    expect(factory.parameters.safeParse({ pdLabelName: 3 }).success).toBe(false);
    expect(factory.parameters.safeParse({ pdRoleLabel: 'x' }).success).toBe(false);
  });
});
