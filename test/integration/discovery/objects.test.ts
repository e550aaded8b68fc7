// The pure conversion rules: pool specs of both API versions, readiness, ranks.
import { describe, expect, it } from 'vitest';
import {
  labelSelectorString,
  parsePool,
  podEndpoints,
  podIsReady,
  poolEndpoints,
  POOL_GROUP_V1,
  POOL_GROUP_V1ALPHA2,
  PoolSpecError,
  type PoolGroup,
} from '../../../src/discovery/k8s-objects.js';
import { makePod, makePoolV1, makePoolV1alpha2 } from '../../helpers/fake-apiserver.js';

describe('k8s-objects', () => {
  it('parses v1 and v1alpha2 pools to the same spec', () => {
    const v1 = parsePool(
      makePoolV1({ name: 'p', namespace: 'n', matchLabels: { a: '1', b: '2' }, ports: [8000, 8001] }),
      POOL_GROUP_V1,
    );
    expect(v1).toEqual({
      name: 'p',
      namespace: 'n',
      selector: { a: '1', b: '2' },
      targetPorts: [8000, 8001],
    });
    const old = parsePool(
      makePoolV1alpha2({ name: 'p', namespace: 'n', selector: { a: '1' }, port: 8000 }),
      POOL_GROUP_V1ALPHA2,
    );
    expect(old).toEqual({ name: 'p', namespace: 'n', selector: { a: '1' }, targetPorts: [8000] });
  });

  it('names the bad field of an invalid pool', () => {
    const bad =
      (spec: unknown, group: PoolGroup = POOL_GROUP_V1) =>
      () =>
        parsePool({ metadata: { name: 'p' }, spec }, group);
    expect(bad({ selector: { matchLabels: { a: '1' } }, targetPorts: [] })).toThrow(/spec.targetPorts/);
    expect(bad({ selector: { matchLabels: { a: 1 } }, targetPorts: [{ number: 80 }] })).toThrow(
      /matchLabels.a/,
    );
    expect(bad({ selector: { matchLabels: {} }, targetPorts: [{ number: 80 }] })).toThrow(PoolSpecError);
    expect(bad({ selector: { a: '1' }, targetPortNumber: 70000 }, POOL_GROUP_V1ALPHA2)).toThrow(
      /targetPortNumber/,
    );
  });

  it('readiness: Ready=True, an IP, and not terminating', () => {
    expect(podIsReady(makePod({ name: 'a', ip: '10.0.0.1' }))).toBe(true);
    expect(podIsReady(makePod({ name: 'a', ip: '10.0.0.1', ready: false }))).toBe(false);
    expect(podIsReady(makePod({ name: 'a' }))).toBe(false);
    expect(podIsReady(makePod({ name: 'a', ip: '10.0.0.1', deleting: true }))).toBe(false);
  });

  it('one endpoint per target port; IPv6 ids are bracketed; sorted and deduplicated', () => {
    const pool = { name: 'p', namespace: 'n', selector: { app: 'm' }, targetPorts: [8000, 8001] };
    const pod = makePod({ name: 'v6', ip: 'fd00::1', labels: { app: 'm' } });
    expect(podEndpoints(pod, pool).map((e) => [e.id, e.name])).toEqual([
      ['[fd00::1]:8000', 'v6-rank-0'],
      ['[fd00::1]:8001', 'v6-rank-1'],
    ]);
    const eps = poolEndpoints(
      [
        makePod({ name: 'b', ip: '10.0.0.2', labels: { app: 'm' } }),
        makePod({ name: 'a', ip: '10.0.0.1', labels: { app: 'm' } }),
      ],
      pool,
    );
    expect(eps.map((e) => e.id)).toEqual([
      '10.0.0.1:8000',
      '10.0.0.1:8001',
      '10.0.0.2:8000',
      '10.0.0.2:8001',
    ]);
    expect(labelSelectorString({ z: '1', a: '2' })).toBe('a=2,z=1');
  });
});
