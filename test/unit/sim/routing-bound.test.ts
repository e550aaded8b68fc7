// The routing benchmark's throughput bounds (test/bench/routing-bound.ts) on hand-computed cases.
import { describe, expect, it } from 'vitest';
import { windowBounds } from '../../bench/routing-bound.js';
import { Q32_H100X2 } from '../../bench/sim/params.js';
import type { SimRequest } from '../../bench/sim/workload-types.js';

function req(id: number, arrivalS: number, outputTokens: number, hashes: string[]): SimRequest {
  return {
    id,
    arrivalS,
    req: {
      requestId: `r${id}`,
      model: 'm',
      apiType: 'chat',
      promptText: '',
      promptTokens: 64 * hashes.length,
      stream: true,
      headers: {},
    },
    promptTokens: 64 * hashes.length,
    outputTokens,
    hashes,
    measured: true,
  };
}

describe('routing-bound', () => {
  it('caps each request at one token per shortest step until the window ends (hand-computed)', () => {
    // Q32-H100x2: the shortest decoding step is 8 + 12 = 20 ms. Window 10..12 s (T = 2 s).
    // a at 10 s, 10 tokens: min(10, 1 + 2 / 0.02 = 101) = 10.
    // b at 11.5 s, 1000 tokens: 1 + floor(0.5 / 0.02) = 26 (25 or 26 steps: floor of a float).
    // c before the window (warm-up), 1 token: 1.  d after it: nothing.
    const rs = [
      req(0, 9, 1, ['w']),
      req(1, 10, 10, ['x']),
      req(2, 11.5, 1000, ['y']),
      req(3, 12.5, 5, ['z']),
    ];
    const b = windowBounds(rs, 10, 12, 1, Q32_H100X2);
    expect(b.perRequest * 2).toBeGreaterThanOrEqual(10 + 25 + 1);
    expect(b.perRequest * 2).toBeLessThanOrEqual(10 + 26 + 1);
    // The decode ceiling never exceeds the per-request cap, and the fluid schedules stay below it.
    expect(b.decodeCeiling).toBeLessThanOrEqual(b.perRequest);
    expect(b.kvCeiling).toBeLessThanOrEqual(b.perRequest + 1e-9);
    expect(b.estimate).toBeLessThanOrEqual(b.kvCeiling + 1e-9);
    expect(b.estimate).toBeGreaterThan(0);
  });
});
