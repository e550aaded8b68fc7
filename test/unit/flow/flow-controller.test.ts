// FlowController over a real Director and in-memory state: a concurrency-detector
// with maxConcurrency 1 on one endpoint makes "saturated" exactly "one request in
// flight", so every dispatch below is forced by a release.
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { Director, type Decision } from '../../../src/director/director.js';
import { FlowController, FlowRejection, type FlowRejectReason } from '../../../src/flow/flow-controller.js';
import type { FlowControlSettings } from '../../../src/config/flow-control.js';
import { withInTransit } from '../../../src/flow/in-transit.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import type { Endpoint, EndpointView, LLMRequest } from '../../../src/scheduling/types.js';
import { SchedulingError } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { concurrencyDetectorConfig } from '../../helpers/objects.js';

const CONFIG = concurrencyDetectorConfig('{ maxConcurrency: 1 }');

const ep: Endpoint = { id: '10.0.0.1:8000', name: 'pod-1', address: '10.0.0.1', port: 8000, labels: {} };
const req = (id: string): LLMRequest => ({
  requestId: id,
  model: 'm',
  apiType: 'completions',
  promptText: 'p',
  promptTokens: 1,
  stream: false,
  headers: {},
});

const settings = (over: Partial<FlowControlSettings> = {}): FlowControlSettings => ({
  maxRequests: 0,
  maxBytes: 0,
  requestTtlMs: 10_000,
  bands: new Map(),
  defaultBand: { maxRequests: 100, maxBytes: 1e9 },
  ...over,
});

const controllers: FlowController[] = [];
afterEach(() => {
  for (const c of controllers.splice(0)) c.close();
});

interface Clock {
  now: () => number;
  setTimer: (ms: number, fn: () => void) => () => void;
  pollMs: number;
}

async function setup(over: Partial<FlowControlSettings> = {}, shared?: MemoryStateStore, clock?: Clock) {
  const store = shared ?? new MemoryStateStore();
  await store.replaceEndpoints([ep]);
  const loaded = loadConfigText(CONFIG, 't.yaml', builtinRegistry());
  const director = new Director({
    store,
    profile: loaded.profile,
    saturationDetector: loaded.saturationDetector,
    // Called only after `flow` below exists.
    hooks: { onReleased: () => flow.kick() },
  });
  const events: Array<[string, number, FlowRejectReason | number]> = [];
  const flow: FlowController = new FlowController({
    settings: settings(over),
    director,
    saturation: (v) => loaded.saturationDetector.saturation(v),
    pollMs: 60_000, // dispatch here is driven by releases only
    ...clock,
    hooks: {
      rewritten: (p) => events.push(['rewritten', p, 1]),
      dispatched: (p, w) => events.push(['dispatched', p, w > 0 ? 1 : 0]),
      rejected: (p, r) => events.push(['rejected', p, r]),
    },
  });
  controllers.push(flow);
  const inFlight = async () => (await store.readSnapshot({})).inFlight.get(ep.id) ?? 0;
  return { flow, store, inFlight, events };
}

/** Settles on the next turns of the event loop (a store call or two). */
const settle = () => new Promise((r) => setTimeout(r, 20));

function track(p: Promise<Decision>) {
  const out: { d?: Decision; e?: unknown } = {};
  p.then(
    (d) => (out.d = d),
    (e: unknown) => (out.e = e),
  );
  return out;
}

describe('FlowController', () => {
  it('admits while unsaturated, holds the next, sheds the sheddable, dispatches on release', async () => {
    const { flow, inFlight } = await setup();
    const first = await flow.pick(req('a'), undefined, { priority: 0, bytes: 10 });
    expect(await inFlight()).toBe(1);
    const second = track(flow.pick(req('b'), undefined, { priority: 0, bytes: 10 }));
    await settle();
    expect(flow.queued).toBe(1);
    expect(second.d).toBeUndefined();
    await expect(flow.pick(req('c'), undefined, { priority: -1, bytes: 10 })).rejects.toMatchObject({
      code: 'SATURATED',
    });
    await first.ticket.release();
    await settle();
    expect(second.d?.result.primary.endpoint.id).toBe(ep.id);
    expect(flow.queued).toBe(0);
    expect(await inFlight()).toBe(1);
    await second.d!.ticket.release();
    expect(await inFlight()).toBe(0);
  });

  it('a burst on an idle pool admits only what fits: concurrent picks see each other', async () => {
    const { flow, inFlight } = await setup();
    const burst = Array.from({ length: 10 }, (_, i) =>
      track(flow.pick(req(`b${i}`), undefined, { priority: 0, bytes: 1 })),
    );
    await settle();
    expect(burst.filter((b) => b.d).length).toBe(1);
    expect(flow.queued).toBe(9);
    expect(await inFlight()).toBe(1);
    flow.close();
    await settle();
    await burst.find((b) => b.d)!.d!.ticket.release();
  });

  it('two replicas on one store admit one pool worth together: the shared admission count', async () => {
    const store = new MemoryStateStore();
    const a = await setup({}, store);
    const b = await setup({}, store);
    // Interleaved, so each replica's snapshot is read before the other's pick is charged.
    const burst = Array.from({ length: 10 }, (_, i) =>
      track((i % 2 ? b : a).flow.pick(req(`r${i}`), undefined, { priority: 0, bytes: 1 })),
    );
    await settle();
    expect(burst.filter((x) => x.d).length).toBe(1);
    expect(a.flow.queued + b.flow.queued).toBe(9);
    expect(await a.inFlight()).toBe(1);
    // Each held-back pick withdrew its reservation: the freed slot is refilled once.
    await burst.find((x) => x.d)!.d!.ticket.release();
    a.flow.kick();
    b.flow.kick();
    await settle();
    expect(burst.filter((x) => x.d).length).toBe(2);
    expect(await a.inFlight()).toBe(1);
    a.flow.close();
    b.flow.close();
    await settle();
    for (const x of burst) await x.d?.ticket.release();
  });

  it('counts rewritten requests per band, whatever their outcome', async () => {
    const { flow, events } = await setup();
    const run = await flow.pick(req('a'), undefined, { priority: 10, bytes: 1, rewritten: true });
    await flow.pick(req('b'), undefined, { priority: -1, bytes: 1, rewritten: true }).catch(() => undefined);
    await flow.pick(req('c'), undefined, { priority: -1, bytes: 1 }).catch(() => undefined);
    expect(events.filter((e) => e[0] === 'rewritten')).toEqual([
      ['rewritten', 10, 1],
      ['rewritten', -1, 1],
    ]);
    await run.ticket.release();
  });

  it('dispatches the higher band first, FCFS within a band', async () => {
    const { flow } = await setup();
    let current = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const order: string[] = [];
    const waiting = [
      ['low-1', 0],
      ['high-1', 10],
      ['low-2', 0],
      ['high-2', 10],
    ].map(([id, p]) =>
      flow.pick(req(id as string), undefined, { priority: p as number, bytes: 1 }).then((d) => {
        order.push(id as string);
        return d;
      }),
    );
    await settle();
    expect(flow.queued).toBe(4);
    for (let i = 0; i < 4; i++) {
      await current.ticket.release();
      await settle();
      current = await waiting[['low-1', 'high-1', 'low-2', 'high-2'].indexOf(order[i]!)]!;
    }
    expect(order).toEqual(['high-1', 'high-2', 'low-1', 'low-2']);
    await current.ticket.release();
  });

  it('a newcomer waits behind queued requests of its band even when a slot is free', async () => {
    const { flow } = await setup();
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const queued = track(flow.pick(req('q'), undefined, { priority: 0, bytes: 1 }));
    await settle();
    // A sheddable newcomer while others wait is shed, not let past them.
    await expect(flow.pick(req('s'), undefined, { priority: -1, bytes: 1 })).rejects.toBeInstanceOf(
      SchedulingError,
    );
    await run.ticket.release();
    await settle();
    expect(queued.d).toBeDefined();
    await queued.d!.ticket.release();
  });

  it('a client gone while queued leaves the queue, charges nothing, and is never dispatched', async () => {
    const { flow, inFlight, events } = await setup();
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const ac = new AbortController();
    const gone = track(flow.pick(req('gone'), undefined, { priority: 0, bytes: 1, signal: ac.signal }));
    await settle();
    ac.abort();
    await settle();
    expect(gone.e).toBeInstanceOf(FlowRejection);
    expect((gone.e as FlowRejection).status).toBe(503);
    expect((gone.e as FlowRejection).reason).toBe('cancelled');
    expect(flow.queued).toBe(0);
    await run.ticket.release();
    await settle();
    expect(await inFlight()).toBe(0);
    expect(events.filter(([k]) => k === 'dispatched')).toHaveLength(1); // only 'run'
    expect(events).toContainEqual(['rejected', 0, 'cancelled']);
  });

  it('evicts after the TTL with 503', async () => {
    const { flow } = await setup({ requestTtlMs: 50 });
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const t0 = Date.now();
    const err = await flow.pick(req('late'), undefined, { priority: 0, bytes: 1 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(err).toMatchObject({ status: 503, reason: 'ttl' });
    expect((err as Error).message).toContain('request timed out in queue');
    expect(flow.queued).toBe(0);
    await run.ticket.release();
  });

  it('refuses a queued request with 429 once the dispatch rate predicts it past its TTL (no 503)', async () => {
    // A virtual clock: timers fire only when the test advances it.
    let t = 0;
    const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
    const clock: Clock = {
      now: () => t,
      pollMs: 100,
      setTimer: (ms, fn) => {
        const timer = { at: t + ms, fn, live: true };
        timers.push(timer);
        return () => (timer.live = false);
      },
    };
    const advance = async (to: number) => {
      for (;;) {
        const next = timers.filter((x) => x.live && x.at <= to).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        next.live = false;
        t = next.at;
        next.fn();
        await settle();
      }
      t = to;
    };
    const { flow } = await setup({ requestTtlMs: 1_000 }, undefined, clock);
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    // Queued at once: a dispatch history under 250 ms predicts nothing.
    const waiting = track(flow.pick(req('waiting'), undefined, { priority: 0, bytes: 1 }));
    await settle();
    expect(flow.queued).toBe(1);
    // At 500 ms: one dispatch in 0.5 s, 2/s, so 500 ms more: 1000, not past the TTL.
    await advance(500);
    expect(flow.queued).toBe(1);
    // At 600 ms: 1 in 0.6 s predicts 600 ms more, 1200 > 1000: refused now, not evicted at 1000.
    await advance(600);
    expect(waiting.e).toMatchObject({ status: 429, reason: 'capacity' });
    expect((waiting.e as Error).message).toContain('past the 1000 ms TTL');
    expect(flow.queued).toBe(0);
    await run.ticket.release();
  });

  it('refuses a newcomer with 429 once the request ahead has waited half the TTL', async () => {
    const { flow } = await setup({ requestTtlMs: 200 });
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const first = track(flow.pick(req('first'), undefined, { priority: 0, bytes: 1 }));
    // Ahead of a priority-10 newcomer nothing waits: it is queued.
    await new Promise((r) => setTimeout(r, 130));
    const high = track(flow.pick(req('high'), undefined, { priority: 10, bytes: 1 }));
    const err = await flow.pick(req('late'), undefined, { priority: 0, bytes: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, reason: 'capacity' });
    expect((err as Error).message).toContain('past the 100 ms target');
    await settle();
    expect(high.e).toBeUndefined();
    expect(flow.queued).toBe(2);
    flow.close();
    await settle();
    expect(first.e).toMatchObject({ reason: 'shutdown' });
    await run.ticket.release();
  });

  it('refuses past the band bound with 429 capacity', async () => {
    const { flow, events } = await setup({ defaultBand: { maxRequests: 2, maxBytes: 1e9 } });
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const a = track(flow.pick(req('a'), undefined, { priority: 0, bytes: 1 }));
    const b = track(flow.pick(req('b'), undefined, { priority: 0, bytes: 1 }));
    await settle();
    const err = await flow.pick(req('c'), undefined, { priority: 0, bytes: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, reason: 'capacity' });
    expect(flow.queued).toBe(2);
    expect(events).toContainEqual(['rejected', 0, 'capacity']);
    flow.close();
    await settle();
    expect(a.e).toMatchObject({ status: 429, reason: 'shutdown' });
    expect(b.e).toMatchObject({ status: 429, reason: 'shutdown' });
    await run.ticket.release();
  });

  it('at shutdown answers every queued request 429 and refuses newcomers', async () => {
    const { flow, inFlight } = await setup();
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    const waiting = Array.from({ length: 50 }, (_, i) =>
      track(flow.pick(req(`w${i}`), undefined, { priority: i % 2 ? 10 : 0, bytes: 1 })),
    );
    await settle();
    expect(flow.queued).toBe(50);
    expect(flow.close()).toBe(50);
    await settle();
    expect(waiting.every((w) => (w.e as FlowRejection | undefined)?.status === 429)).toBe(true);
    await expect(flow.pick(req('new'), undefined, { priority: 0, bytes: 1 })).rejects.toMatchObject({
      reason: 'shutdown',
    });
    await run.ticket.release();
    expect(await inFlight()).toBe(0);
  });

  it('reports its state per band', async () => {
    const { flow } = await setup({ bands: new Map([[10, { maxRequests: 7, maxBytes: 700 }]]) });
    const run = await flow.pick(req('run'), undefined, { priority: 0, bytes: 1 });
    track(flow.pick(req('q'), undefined, { priority: 10, bytes: 33 }));
    await settle();
    const s = flow.state();
    expect(s).toMatchObject({ queued: 1, bytes: 33, requestTtlMs: 10_000, closing: false });
    expect(s.bands.map((b) => [b.priority, b.length, b.bytes, b.maxRequests])).toEqual([[10, 1, 33, 7]]);
    flow.close();
    await run.ticket.release();
  });
});

describe('withInTransit', () => {
  const view = (over: Partial<EndpointView>): EndpointView => ({
    endpoint: ep,
    waitingQueueSize: 2,
    runningRequests: 3,
    kvCacheUsage: 0.1,
    inFlight: 0,
    pendingPrefillTokens: 0,
    signalsAgeMs: 10,
    ...over,
  });

  it('counts routed requests the server does not show yet as waiting', () => {
    const views = [
      view({ inFlight: 9 }),
      view({ inFlight: 4 }),
      view({ waitingQueueSize: undefined, inFlight: 9 }),
    ];
    const out = withInTransit(views);
    // 2 + (9 - 3 - 2) = 6; 4 <= 3 + 2 leaves it; unknown stays unknown.
    expect(out.map((v) => v.waitingQueueSize)).toEqual([6, 2, undefined]);
    expect(views[0]!.waitingQueueSize).toBe(2);
    const same = [view({ inFlight: 1 })];
    expect(withInTransit(same)).toBe(same);
  });
});
