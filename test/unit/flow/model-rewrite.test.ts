import { describe, expect, it } from 'vitest';
import { chooseRewrite, rewritesByAge } from '../../../src/flow/model-rewrite.js';
import type { InferenceModelRewrite } from '../../../src/flow/objectives.js';

function rw(
  name: string,
  createdAt: string,
  rules: Array<{ match?: string; targets: Array<[string, number?]> }>,
): InferenceModelRewrite {
  return {
    apiVersion: 'inference.networking.x-k8s.io/v1alpha2',
    kind: 'InferenceModelRewrite',
    metadata: { name, creationTimestamp: createdAt },
    spec: {
      poolRef: { name: 'p' },
      rules: rules.map((r) => ({
        ...(r.match ? { matches: [{ model: { type: 'Exact' as const, value: r.match } }] } : {}),
        targets: r.targets.map(([m, w]) => ({ modelRewrite: m, ...(w === undefined ? {} : { weight: w }) })),
      })),
    },
  };
}

const fixed = (v: number) => () => v;

describe('chooseRewrite', () => {
  const generic = rw('generic', '2026-01-01T00:00:00Z', [{ targets: [['fallback']] }]);
  const exact = rw('exact', '2026-06-01T00:00:00Z', [
    {
      match: 'm',
      targets: [
        ['m-v1', 90],
        ['m-v2', 10],
      ],
    },
  ]);

  it('an exact match beats a generic rule, even an older one', () => {
    const ordered = rewritesByAge([exact, generic]);
    expect(chooseRewrite('m', ordered, fixed(0))).toEqual({ target: 'm-v1', rewriteName: 'exact' });
    expect(chooseRewrite('other', ordered, fixed(0))).toEqual({ target: 'fallback', rewriteName: 'generic' });
  });

  it('draws targets in proportion to their weights (90/10: r < 0.9 -> v1)', () => {
    const ordered = rewritesByAge([exact]);
    expect(chooseRewrite('m', ordered, fixed(0.8999))?.target).toBe('m-v1');
    expect(chooseRewrite('m', ordered, fixed(0.9))?.target).toBe('m-v2');
    expect(chooseRewrite('m', ordered, fixed(0.99999))?.target).toBe('m-v2');
    // Unweighted targets count 1 each.
    const even = rewritesByAge([rw('e', '2026-01-01T00:00:00Z', [{ match: 'x', targets: [['a'], ['b']] }])]);
    expect(chooseRewrite('x', even, fixed(0.49))?.target).toBe('a');
    expect(chooseRewrite('x', even, fixed(0.5))?.target).toBe('b');
  });

  it('the oldest object wins ties, then the name', () => {
    const newer = rw('newer', '2026-03-01T00:00:00Z', [{ match: 'm', targets: [['from-newer']] }]);
    const older = rw('older', '2026-02-01T00:00:00Z', [{ match: 'm', targets: [['from-older']] }]);
    expect(chooseRewrite('m', rewritesByAge([newer, older]), fixed(0))?.rewriteName).toBe('older');
    const b = rw('b', '2026-02-01T00:00:00Z', [{ match: 'm', targets: [['from-b']] }]);
    const a = rw('a', '2026-02-01T00:00:00Z', [{ match: 'm', targets: [['from-a']] }]);
    expect(chooseRewrite('m', rewritesByAge([b, a]), fixed(0))?.target).toBe('from-a');
  });

  it('no rule for the model and no generic rule: no rewrite', () => {
    expect(chooseRewrite('other', rewritesByAge([exact]), fixed(0))).toBeUndefined();
    expect(chooseRewrite('m', [], fixed(0))).toBeUndefined();
  });
});
