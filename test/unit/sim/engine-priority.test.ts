// The simulated engine's priority what-if (Engine.schedPriority, vLLM's
// `--scheduling-policy priority`): the waiting queue in priority order, the
// preemption victim of the lowest priority; FCFS when unset.
import { describe, expect, it } from 'vitest';
import { Engine, type EngineHooks } from '../../bench/sim/engine.js';
import { EventQueue } from '../../bench/sim/event-queue.js';
import type { SimRequest } from '../../bench/sim/workload-types.js';
import { NO_HOOKS, simRequest, TINY } from './fixtures.js';

const blocks = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

function setup(kvBlocks: number, priority?: Map<number, number>) {
  const q = new EventQueue();
  const firsts: number[] = [];
  const preempted = new Map<number, number>();
  const hooks: EngineHooks = {
    ...NO_HOOKS,
    firstToken: (s) => firsts.push(s.sr.id),
    finished: (s) => preempted.set(s.sr.id, s.preemptions),
  };
  const e = new Engine('e', 'agg', { ...TINY, kvBlocks }, q, hooks);
  if (priority) e.schedPriority = (sr: SimRequest) => priority.get(sr.id) ?? 0;
  return { q, e, firsts, preempted };
}

describe('Engine priority scheduling (bench what-if)', () => {
  // 500-token prompts, 512-token steps: after request 1's step the next
  // step has room for one whole prompt and 11 tokens of the next.
  const order = (priority?: Map<number, number>) => {
    const { q, e, firsts } = setup(40, priority);
    e.submit(simRequest(1, blocks('a', 7), 52, 2));
    e.submit(simRequest(2, blocks('b', 7), 52, 2));
    e.submit(simRequest(3, blocks('c', 7), 52, 2));
    for (let ev = q.pop(); ev; ev = q.pop()) void ev.run();
    e.checkInvariants();
    return firsts;
  };

  it('FCFS by default: the queue in arrival order', () => {
    expect(order()).toEqual([1, 2, 3]);
  });

  it('priority: a later, higher-priority request is admitted first', () => {
    expect(
      order(
        new Map([
          [3, 10],
          [1, -1],
          [2, -1],
        ]),
      ),
    ).toEqual([1, 3, 2]);
  });

  // 10 blocks: two 266-token prompts (5 blocks each) fill the cache; the
  // first to need a sixth block while decoding forces a preemption.
  const victims = (priority?: Map<number, number>) => {
    const { q, e, preempted } = setup(10, priority);
    e.submit(simRequest(1, blocks('a', 4), 10, 100));
    e.submit(simRequest(2, blocks('b', 4), 10, 100));
    for (let ev = q.pop(); ev; ev = q.pop()) {
      void ev.run();
      e.checkInvariants();
    }
    return [preempted.get(1), preempted.get(2)];
  };

  it('FCFS: the newest running sequence is preempted', () => {
    const [p1, p2] = victims();
    expect(p1).toBe(0);
    expect(p2).toBeGreaterThan(0);
  });

  it('priority: the lowest-priority running sequence is preempted, even the one asking', () => {
    const [p1, p2] = victims(
      new Map([
        [1, -1],
        [2, 10],
      ]),
    );
    expect(p1).toBeGreaterThan(0);
    expect(p2).toBe(0);
  });
});
