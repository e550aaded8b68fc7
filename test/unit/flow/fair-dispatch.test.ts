// Cross-replica fair dispatch through real FlowControllers and Directors: two
// "replicas" on one in-memory store (its in-process wake stands for Redis
// pub/sub), wired as src/epp/build.ts wires them when the store is shared. A
// concurrency-detector with maxConcurrency 1 per endpoint makes every
// dispatch below forced by a release.
import { describe, expect, it } from 'vitest';
import type { Decision, PickOptions } from '../../../src/director/director.js';
import type { Endpoint, LLMRequest } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { concurrencyDetectorConfig } from '../../helpers/objects.js';
import { flowOnStore } from './flow-fixture.js';

const CONFIG = concurrencyDetectorConfig('{ maxConcurrency: 1 }');
const ep = (i: number): Endpoint => ({
  id: `10.0.0.${i}:8000`,
  name: `pod-${i}`,
  address: `10.0.0.${i}`,
  port: 8000,
  labels: {},
});
const req = (id: string): LLMRequest => ({
  requestId: id,
  model: 'm',
  apiType: 'completions',
  promptText: 'p',
  promptTokens: 1,
  stream: false,
  headers: {},
});
const only = (e: Endpoint): PickOptions => ({ candidates: (c) => c.id === e.id });
const FLOW = { priority: 0, bytes: 1 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One replica: a Director and a FlowController on `store`, fair dispatch on unless `fair` is false. */
function replica(
  store: MemoryStateStore,
  opts: { fair?: boolean; pollMs?: number; yieldLimitMs?: number } = {},
) {
  let yielded = 0;
  const { director, flow } = flowOnStore(store, CONFIG, {
    pollMs: opts.pollMs,
    kickOnRelease: true,
    fairShare: (d) =>
      opts.fair === false
        ? undefined
        : { clearHeads: () => d.clearQueueHeads(), yieldLimitMs: opts.yieldLimitMs },
    hooks: { yielded: () => yielded++ },
  });
  if (opts.fair !== false) store.onWake((from) => from !== director.owner && flow.kick());
  return { flow, director, yielded: () => yielded };
}

/** A pick whose outcome can be looked at without awaiting it. */
function track(p: Promise<Decision>) {
  const t: { d?: Decision; at?: number; done: Promise<Decision> } = { done: p };
  p.then(
    (d) => {
      t.d = d;
      t.at = performance.now();
    },
    () => undefined,
  );
  return t;
}

describe('fair dispatch across replicas', () => {
  it('a freed slot goes to the older waiter on the other replica, woken at once', async () => {
    const store = new MemoryStateStore();
    await store.replaceEndpoints([ep(1)]);
    const a = replica(store);
    const b = replica(store);
    const first = await a.flow.pick(req('a0'), undefined, FLOW);
    const b1 = track(b.flow.pick(req('b1'), undefined, FLOW));
    await sleep(10);
    const a1 = track(a.flow.pick(req('a1'), undefined, FLOW));
    await sleep(10);
    expect([a.flow.queued, b.flow.queued]).toEqual([1, 1]);
    // The slot frees on A (A is kicked first), but B's waiter is older: A yields, B takes it.
    const freedAt = performance.now();
    await first.ticket.release();
    const d = await b1.done;
    expect(d.result.primary.endpoint.id).toBe(ep(1).id);
    // Woken by A's yield, not by a poll (60 s here).
    expect(b1.at! - freedAt).toBeLessThan(100);
    expect(a1.d).toBeUndefined();
    expect(a.yielded()).toBeGreaterThanOrEqual(1);
    // B's queue emptied: its head is gone, so A's waiter takes the next slot (no yield to a ghost).
    const yieldsBefore = a.yielded();
    await d.ticket.release();
    a.flow.kick();
    (await a1.done).ticket.release();
    expect(a.yielded()).toBe(yieldsBefore);
  });

  it('a slot freed on a replica whose queue is empty wakes the waiter on the other replica', async () => {
    const store = new MemoryStateStore();
    await store.replaceEndpoints([ep(1)]);
    const a = replica(store);
    const b = replica(store);
    const first = await a.flow.pick(req('a0'), undefined, FLOW);
    const a1 = track(a.flow.pick(req('a1'), undefined, FLOW));
    await sleep(10);
    const b1 = track(b.flow.pick(req('b1'), undefined, FLOW));
    await sleep(10);
    expect([a.flow.queued, b.flow.queued]).toEqual([1, 1]);
    // A's own waiter is older: A takes the slot, and its admission step shows B's head.
    expect(a.flow.othersWaiting()).toBe(false);
    await first.ticket.release();
    const second = await a1.done;
    expect(a.flow.queued).toBe(0);
    expect(a.flow.othersWaiting()).toBe(true);
    expect(b1.d).toBeUndefined();
    // A's queue is empty: its next release wakes B, not a poll (60 s here).
    const freedAt = performance.now();
    await second.ticket.release();
    const d = await b1.done;
    expect(b1.at! - freedAt).toBeLessThan(100);
    expect(a.yielded() + b.yielded()).toBe(0);
    // B's queue emptied: A's next admission step shows no head, and its releases stop waking.
    await d.ticket.release();
    (await a.flow.pick(req('a2'), undefined, FLOW)).ticket.release();
    expect(a.flow.othersWaiting()).toBe(false);
  });

  it('without fair dispatch (one replica, or no shared store) the replica whose response ended takes the slot', async () => {
    const store = new MemoryStateStore();
    await store.replaceEndpoints([ep(1)]);
    const a = replica(store, { fair: false });
    const b = replica(store, { fair: false });
    const first = await a.flow.pick(req('a0'), undefined, FLOW);
    const b1 = track(b.flow.pick(req('b1'), undefined, FLOW));
    await sleep(10);
    const a1 = track(a.flow.pick(req('a1'), undefined, FLOW));
    await sleep(10);
    await first.ticket.release();
    const d = await a1.done;
    await sleep(10);
    expect(b1.d).toBeUndefined();
    expect(a.yielded() + b.yielded()).toBe(0);
    await d.ticket.release();
    b.flow.kick();
    (await b1.done).ticket.release();
  });

  it('the guard: an older head that cannot use the room is yielded to for yieldLimitMs, then passed over', async () => {
    const store = new MemoryStateStore();
    await store.replaceEndpoints([ep(1), ep(2)]);
    const LIMIT = 100;
    const a = replica(store, { pollMs: 10, yieldLimitMs: LIMIT });
    const b = replica(store, { pollMs: 10, yieldLimitMs: LIMIT });
    // Both endpoints busy; B's waiter may only go to endpoint 2 (a subset hint), which stays busy.
    const on1 = await a.flow.pick(req('a-on-1'), only(ep(1)), FLOW);
    const on2 = await a.flow.pick(req('a-on-2'), only(ep(2)), FLOW);
    const stuck = track(b.flow.pick(req('b-stuck'), only(ep(2)), FLOW));
    await sleep(10);
    // A's waiter may go to endpoint 1 only (the picker is not load-aware here).
    const a1 = track(a.flow.pick(req('a1'), only(ep(1)), FLOW));
    await sleep(10);
    const freedAt = performance.now();
    await on1.ticket.release();
    const d = await a1.done;
    const waited = a1.at! - freedAt;
    // A left endpoint 1 to B's older head until the limit, then took it; B's head still waits.
    expect(d.result.primary.endpoint.id).toBe(ep(1).id);
    expect(waited).toBeGreaterThanOrEqual(LIMIT - 15);
    expect(waited).toBeLessThan(LIMIT + 1_000);
    expect(a.yielded()).toBeGreaterThanOrEqual(2);
    expect(stuck.d).toBeUndefined();
    expect(b.flow.queued).toBe(1);
    // Passed over for good: the next slot on endpoint 1 is taken at once.
    const a2 = track(a.flow.pick(req('a2'), only(ep(1)), FLOW));
    await sleep(10);
    const yields = a.yielded();
    const again = performance.now();
    await d.ticket.release();
    const d2 = await a2.done;
    expect(a2.at! - again).toBeLessThan(LIMIT);
    expect(a.yielded()).toBe(yields);
    await d2.ticket.release();
    await on2.ticket.release();
    (await stuck.done).ticket.release();
  });
});
