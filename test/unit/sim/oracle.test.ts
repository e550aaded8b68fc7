// The benchmark oracle's cost, by hand on two tiny engines (test/bench/sim/oracle.ts).
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../bench/sim/engine.js';
import { holdersPastBound, OracleModel } from '../../bench/sim/oracle.js';
import { simRequest as mk, TINY, twoEngines } from './fixtures.js';

const R = TINY.prefillTokensPerS;

describe('routing oracle (amortised)', () => {
  it('prices a copy its traffic does not need at 1 + 32 x usage per copied token, a needed one shared by its later requests', () => {
    const [a, b] = twoEngines();
    expect(a.kvUsage).toBe(0);
    expect(b.kvUsage).toBe(5 / 40);
    expect(b.waiting).toHaveLength(0);
    const m = new OracleModel('amortised', () => 0);
    // P = 3 * 64 + 10 = 202; A holds 128 tokens (a, b), B none: dup(B) = 128.
    // The model has seen nothing: need = 0, price 32.
    // A: miss 74; B: 202 + 0.125 * 202 + 32 * 0.125 * 128 = 739.25 tokens.
    const c = m.costs([a, b], mk(3, ['a', 'b', 'c']));
    expect(c[0]).toBeCloseTo(74 / R, 12);
    expect(c[1]).toBeCloseTo(739.25 / R, 12);
    // Every request seen so far carried b, on 1 of 2 servers: need = 1 * 2 / 1 = 2, no copy price.
    // A new copy would serve max(1, 0.2/s * 5 s / 2) = 1 request: B = 74 + 128 + 25.25.
    const d = m.costs([a, b], mk(4, ['a', 'b', 'c']));
    expect(d[1]).toBeCloseTo((202 + 0.125 * 202) / R, 12);
    // After 10 such requests (rate 2/s) a copy serves 2 * 5 / 2 = 5 of them: B = 74 + 128/5 + 25.25.
    for (let i = 0; i < 8; i++) m.costs([a, b], mk(10 + i, ['a', 'b', 'c']));
    const f = m.costs([a, b], mk(20, ['a', 'b', 'c']));
    expect(f[1]).toBeCloseTo((74 + 128 / 5 + 25.25) / R, 12);
    expect(f[0]).toBeCloseTo(74 / R, 12);
  });

  it('places a prompt nobody holds by routed work rate, and an unknown server costs Infinity', () => {
    const [a, b] = twoEngines();
    const m = new OracleModel('amortised', () => 0);
    m.picked('A', mk(5, ['x'], 10, 26)); // 74 + 26 tokens routed to A, none to B: mean = A's / 2
    // P = 74, nothing cached anywhere: A = 74 + 2 * 74; B = 74 + 0.125 * 74.
    const c = m.costs([a, b, undefined], mk(6, ['n1']));
    expect(c[0]).toBeCloseTo(222 / R, 12);
    expect(c[1]).toBeCloseTo(83.25 / R, 12);
    expect(c[2]).toBe(Infinity);
  });
});

// Step time of TINY with `decoding` sequences at KV usage `u` (no prefill).
const decodeStep = (u: number, decoding: number) =>
  TINY.stepOverheadS + TINY.decodeBaseS + TINY.decodeKvS * u + TINY.decodePerSeqS * decoding;

describe('Engine.predictTtftS (the round-five oracle replays the step planning)', () => {
  it('an idle server computes the prompt in budget-sized steps: 600 tokens = 512 + 88, two overheads', () => {
    const [a] = twoEngines();
    expect(a.predictTtftS(600)).toBeCloseTo(2 * TINY.stepOverheadS + 600 / R, 12);
  });

  it('a busy server finishes the step in progress, then shares each step with its decode', () => {
    // B's fourth step (one decode, usage 5/40) is in progress. Then: decode 1 + prefill 511, decode 1 + prefill 89.
    const [, b] = twoEngines();
    expect(b.predictTtftS(600)).toBeCloseTo(3 * decodeStep(5 / 40, 1) + 600 / R, 12);
  });
});

describe('routing oracle (round five)', () => {
  it('costs the exact TTFT plus the closed copy price 32 x (1 + usage) per copied token', () => {
    const [a, b] = twoEngines();
    const m = new OracleModel('r5', () => 0);
    // P = 202; A holds 128 (idle), B none. need = 0 and A has nobody waiting: the copy is closed.
    // A: one step of 74 tokens. B: the step in progress, then decode + 202 prefill in one step,
    // + (32 * 1.125 * 128 + 0.125 * 202) tokens.
    const c = m.costs([a, b], mk(3, ['a', 'b', 'c']));
    expect(c[0]).toBeCloseTo(TINY.stepOverheadS + 74 / R, 12);
    expect(c[1]).toBeCloseTo(2 * decodeStep(5 / 40, 1) + (202 + 32 * 1.125 * 128 + 25.25) / R, 12);
  });

  it('opens a copy when every holder waits and is loaded past 1.15 x the mean + 8', () => {
    const fake = (waiting: number, running: number) =>
      ({ waiting: { length: waiting }, running: { length: running } }) as unknown as Engine;
    const cached = Float64Array.from([128, 0, 0]);
    // Holder 2 + 14 = 16 of 18 in all: mean 6, bound 1.15 * 6 + 8 = 14.9 < 16.
    expect(holdersPastBound([fake(2, 14), fake(0, 1), fake(0, 1)], cached, 128)).toBe(true);
    // 1 + 12 = 13 of 15: bound 13.75.
    expect(holdersPastBound([fake(1, 12), fake(0, 1), fake(0, 1)], cached, 128)).toBe(false);
    // Loaded but nobody waits: not congested.
    expect(holdersPastBound([fake(0, 16), fake(0, 1), fake(0, 1)], cached, 128)).toBe(false);
    // Two holders: the less loaded one decides.
    const two = Float64Array.from([128, 128, 0]);
    expect(holdersPastBound([fake(2, 14), fake(0, 1), fake(0, 1)], two, 128)).toBe(false);
  });
});
