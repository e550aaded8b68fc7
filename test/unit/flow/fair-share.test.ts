// The cross-replica fair-share decision (src/flow/fair-share.ts), on hand-made heads.
import { describe, expect, it } from 'vitest';
import { fairShare, headKey, YIELD_LIMIT_MS } from '../../../src/flow/fair-share.js';
import type { ForeignHead } from '../../../src/state/store.js';

const head = (owner: string, priority: number, ageMs: number, seq = 1, expiresInMs = 1_500): ForeignHead => ({
  owner,
  priority,
  ageMs,
  seq,
  expiresInMs,
});
const none = new Map<string, number>();

describe('fairShare', () => {
  it('yields to an older head of the same band, not to a younger or equally old one', () => {
    const older = head('b', 0, 120);
    expect(fairShare({ priority: 0, ageMs: 100 }, [older], none, 1_000).yieldTo).toBe(older);
    expect(fairShare({ priority: 0, ageMs: 100 }, [head('b', 0, 80)], none, 1_000).yieldTo).toBeUndefined();
    // Equal waits: neither of two replicas yields to the other (one wins the room, one is held).
    expect(fairShare({ priority: 0, ageMs: 100 }, [head('b', 0, 100)], none, 1_000).yieldTo).toBeUndefined();
  });

  it('yields to any head of a higher band, however young; never to a lower band, however old', () => {
    const higher = head('b', 10, 1);
    expect(fairShare({ priority: 0, ageMs: 900 }, [higher], none, 1_000).yieldTo).toBe(higher);
    expect(fairShare({ priority: 10, ageMs: 1 }, [head('b', 0, 900)], none, 1_000).yieldTo).toBeUndefined();
    // A newcomer (waited 0) yields to anyone of its band or above already waiting.
    expect(fairShare({ priority: 0, ageMs: 0 }, [head('b', 0, 1)], none, 1_000).yieldTo).toBeDefined();
  });

  it('yields to the most senior of several: highest band, then longest wait', () => {
    const heads = [head('b', 0, 500), head('c', 5, 20), head('d', 5, 40, 7), head('e', -1, 900)];
    const v = fairShare({ priority: 0, ageMs: 10 }, heads, none, 1_000);
    expect(v.yieldTo).toBe(heads[2]);
    // The ledger remembers when it first yielded to that head, and only that one.
    expect([...v.ledger]).toEqual([['d/7', 1_000]]);
  });

  it('ignores a lapsed head (its replica died or stalled)', () => {
    const lapsed = head('b', 0, 5_000, 1, 0);
    expect(fairShare({ priority: 0, ageMs: 10 }, [lapsed], none, 1_000).yieldTo).toBeUndefined();
    const live = head('c', 0, 20);
    expect(fairShare({ priority: 0, ageMs: 10 }, [lapsed, live], none, 1_000).yieldTo).toBe(live);
  });

  it('the guard: yields to one head for YIELD_LIMIT_MS from the first yield, then passes it over for good', () => {
    const stuck = head('b', 0, 300, 4);
    const own = { priority: 0, ageMs: 100 };
    let ledger: ReadonlyMap<string, number> = none;
    const at = (nowMs: number) => {
      const v = fairShare(own, [stuck], ledger, nowMs);
      ledger = v.ledger;
      return v.yieldTo;
    };
    expect(at(1_000)).toBe(stuck);
    expect(at(1_000 + YIELD_LIMIT_MS - 1)).toBe(stuck);
    // The first yield was YIELD_LIMIT_MS ago: the head cannot use the room, take it.
    expect(at(1_000 + YIELD_LIMIT_MS)).toBeUndefined();
    expect(at(60_000)).toBeUndefined();
    expect(ledger.get(headKey(stuck))).toBe(1_000);
    // Passed over, the next senior head is yielded to, with a budget of its own.
    const next = head('c', 0, 200, 9);
    const v = fairShare(own, [stuck, next], ledger, 61_000);
    expect(v.yieldTo).toBe(next);
    expect(v.ledger.get('c/9')).toBe(61_000);
    // A head that left (dispatched) is forgotten; the same replica's next head is new.
    const after = fairShare(own, [head('b', 0, 150, 5)], v.ledger, 61_001);
    expect(after.yieldTo?.seq).toBe(5);
    expect([...after.ledger.keys()]).toEqual(['b/5']);
  });

  it('bounds the room left unused: whatever the heads do, a replica stops yielding to each within the limit', () => {
    // A stuck head per band on another replica: the own head is held at most one limit per head.
    const heads = [head('b', 10, 50, 1), head('b', 0, 400, 2)];
    const own = { priority: 0, ageMs: 100 };
    let ledger: ReadonlyMap<string, number> = none;
    let yielding = 0;
    for (let t = 0; t < 2_000; t += 10) {
      const v = fairShare(own, heads, ledger, t);
      ledger = v.ledger;
      if (v.yieldTo) yielding += 10;
    }
    expect(yielding).toBe(2 * YIELD_LIMIT_MS);
  });
});
