// pd-breakdown --bound: the lowest TTFT a pod pair could give a short
// request, by hand on recorded step logs (test/bench/pd-breakdown.ts), and
// the engine's step log it reads.
import { describe, expect, it } from 'vitest';
import { joinAt, pairBound, runningStepS, stepStartingAt } from '../../bench/pd-breakdown.js';
import { Engine } from '../../bench/sim/engine.js';
import { EventQueue } from '../../bench/sim/event-queue.js';
import { B8_H100 } from '../../bench/sim/params.js';
import { NO_HOOKS, simRequest } from './fixtures.js';

const p = B8_H100;
// Smallest decode step of a 400-token prompt (7 blocks of 64) on an idle pod.
const minStep = p.stepOverheadS + p.decodeBaseS + p.decodePerSeqS + (p.decodeKvS * 7) / p.kvBlocks;

describe('pd-breakdown lower bound', () => {
  it('joins at the end of the step running at t, at once between steps, and never waits for its own step', () => {
    const log = [0, 1, 1.2, 1.3];
    expect(joinAt(log, 0.5)).toBe(1);
    expect(joinAt(log, 1.1)).toBe(1.1);
    expect(joinAt(log, 1.2)).toBe(1.2); // a step starting at t is the request's own
    expect(joinAt(log, 1.25)).toBe(1.3);
    expect(joinAt([], 3)).toBe(3);
    expect(stepStartingAt(log, 1.2)).toBeCloseTo(0.1, 12);
    expect(stepStartingAt(log, 1.1)).toBe(0);
    expect(runningStepS(log, 1.25)).toBeCloseTo(0.1, 12);
    expect(runningStepS(log, 1.1)).toBe(0); // idle between steps
  });

  it('idle pods: one prefill step, the transfer, one minimal decode step', () => {
    // 1 + (4 ms + 400 / 40,000) + (1 ms + 400 x 3 us) + minStep
    const t = pairBound(p, [], [], 400, 1);
    expect(t - 1).toBeCloseTo(0.014 + 0.0022 + minStep, 12);
  });

  it('busy pods: waits for the running prefill step, joins the decode pod at its next boundary, takes that step', () => {
    // Prefill step running until 1.005 -> prompt computed at 1.019, KV at 1.0212;
    // decode step [1.02, 1.031) running then, next step [1.031, 1.043) -> first token at 1.043.
    const t = pairBound(p, [0.995, 1.005], [1.02, 1.031, 1.031, 1.043], 400, 1);
    expect(t).toBeCloseTo(1.043, 12);
    // A recorded step shorter than the minimum (impossible with sequences, but) counts as the minimum.
    const u = pairBound(p, [], [1.0, 1.0162, 1.0162, 1.017], 400, 1);
    expect(u).toBeCloseTo(1.0162 + minStep, 12);
  });

  it('the engine records each step as start, end pairs that add up to its busy time', () => {
    const q = new EventQueue();
    const e = new Engine('A', 'agg', p, q, NO_HOOKS);
    e.stepLog = [];
    const sr = simRequest(1, ['a'], 36, 3); // 100 prompt tokens
    e.submit(sr);
    for (let ev = q.pop(); ev; ev = q.pop()) void ev.run();
    // Prefill step (samples token 1), then two decode steps.
    expect(e.stepLog).toHaveLength(6);
    let busy = 0;
    for (let i = 0; i < e.stepLog.length; i += 2) {
      busy += e.stepLog[i + 1]! - e.stepLog[i]!;
      if (i > 0) expect(e.stepLog[i]).toBeCloseTo(e.stepLog[i - 1]!, 12);
    }
    expect(busy).toBeCloseTo(e.busyTimeS, 12);
  });
});
