// Bench-only step-phase decode choice (docs/benchmarks.md, branch pdstep):
// the step clock a router could read from streamed chunks, the delay it
// predicts for a landing KV, and the simulator feeding it, by hand.
import { describe, expect, it } from 'vitest';
import { stepDelayMs } from '../../bench/sim/pd-step-scorer.js';
import { StepClocks } from '../../bench/sim/step-clock.js';
import { explores, LandingFit, MIN_SAMPLES } from '../../bench/sim/landing-fit.js';

describe('StepClocks', () => {
  it('takes the boundary from the first chunk of a step and the period from one stream', () => {
    const c = new StepClocks();
    c.observe('d', 100); // stream A's first chunk: no period yet
    expect(c.view(100).get('d')).toEqual({ lastMs: 100, periodMs: undefined });
    c.observe('d', 110, 100); // A again: one step of 10 ms
    expect(c.view(110).get('d')).toEqual({ lastMs: 110, periodMs: 10 });
    c.observe('d', 113); // stream B, 3 ms later (< half a period): the same step
    expect(c.view(113).get('d')!.lastMs).toBe(110);
    c.observe('d', 121, 110); // A: the next step, 11 ms
    expect(c.view(121).get('d')).toEqual({ lastMs: 121, periodMs: 11 });
  });

  it('drops a clock not refreshed within the horizon', () => {
    const c = new StepClocks(50);
    c.observe('d', 0);
    c.observe('e', 40);
    expect([...c.view(50).keys()]).toEqual(['d', 'e']);
    expect([...c.view(51).keys()]).toEqual(['e']);
    c.observe('f', 100); // a new pod's first chunk prunes the stale ones too
    expect(c.size).toBe(1);
  });
});

describe('stepDelayMs', () => {
  const clock = { lastMs: 100, periodMs: 10 };
  it('waits for the first boundary at or after the landing, then one period', () => {
    // Boundaries at 100, 110, 120, ...: landing at 113 -> 120, + 10.
    expect(stepDelayMs(clock, 113)).toBeCloseTo(17, 12);
    expect(stepDelayMs(clock, 120)).toBeCloseTo(10, 12); // on a boundary: joins it
    expect(stepDelayMs(clock, 95)).toBeCloseTo(15, 12); // before the last boundary seen: that one
    expect(stepDelayMs({ lastMs: 100, periodMs: undefined }, 113)).toBeUndefined();
  });

  it('prices a landing error of +-a ms: a boundary closer than a may be missed, one just passed caught', () => {
    // w = 119.5 -> 120: 0.5 ms; P(miss) = (1 - 0.5) / 2 = 0.25 -> 0.5 + 10 + 2.5.
    expect(stepDelayMs(clock, 119.5, 1)).toBeCloseTo(13, 12);
    // w = 9.5 (just after 110): P(catch 110) = (9.5 - 10 + 1) / 2 = 0.25 -> 9.5 + 10 - 2.5.
    expect(stepDelayMs(clock, 110.5, 1)).toBeCloseTo(17, 12);
    // w = 5: neither.
    expect(stepDelayMs(clock, 115, 1)).toBeCloseTo(15, 12);
    // The error never counts for more than half a period: a = min(8, 5) = 5, w = 0 -> P(miss) 1/2.
    expect(stepDelayMs(clock, 120, 8)).toBeCloseTo(15, 12);
  });
});

describe('LandingFit', () => {
  it('fits y = c0 + c1 x once it has enough samples, and ignores long prefills', () => {
    const f = new LandingFit();
    // y = 6 + 0.03 x exactly: x = 100, 200, ...
    for (let i = 1; i < MIN_SAMPLES; i++) f.add(100 * i, 6 + 3 * i);
    expect(f.predict(300)).toBeUndefined();
    f.add(100 * MIN_SAMPLES, 6 + 3 * MIN_SAMPLES);
    expect(f.predict(300)).toBeCloseTo(15, 9);
    expect(f.predict(0)).toBeCloseTo(6, 9);
    f.add(20_000, 0); // x > MAX_X: not a sample
    expect(f.predict(300)).toBeCloseTo(15, 9);
  });

  it('weights recent samples more: a shift moves the fit toward the new line', () => {
    const f = new LandingFit();
    for (let i = 0; i < 50; i++) f.add(100 + (i % 5) * 100, 10);
    expect(f.predict(300)).toBeCloseTo(10, 9);
    for (let i = 0; i < 50; i++) f.add(100 + (i % 5) * 100, 12);
    // Weights 0.99^k: the newer 50 carry 1 / (1 + 0.99^50) = 0.622 of the mass -> 10 + 2 x 0.622.
    expect(f.predict(300)).toBeCloseTo(10 + 2 / (1 + 0.99 ** 50), 2);
  });

  it('samples every fourth simulated request', () => {
    expect(['req-0', 'req-1', 'req-4', 'req-7', 'req-8'].map(explores)).toEqual([
      true,
      false,
      true,
      false,
      true,
    ]);
  });
});
