// Degraded mode against a real redis-server that is killed, hung and
// restarted: calls keep answering, the flag rises and falls, and state
// converges after Redis returns.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRedisStateStore } from '../../../src/state/create-store.js';
import type { ResilientStateStore } from '../../../src/state/resilient-store.js';
import { decayed, type PickReceipt } from '../../../src/state/store.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { eventually } from '../../helpers/wait.js';
import { commit, ep } from './contract.js';

let server: RedisServer;
const stores: ResilientStateStore[] = [];

beforeEach(async () => {
  server = await startRedis();
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await server.stop();
});

async function open(pool: string, logs?: string[]): Promise<ResilientStateStore> {
  const s = await createRedisStateStore({
    redisUrl: server.url,
    pool,
    probeIntervalMs: 100,
    commandTimeoutMs: 150,
    logger: logs && { warn: (_o, m) => logs.push(`warn ${m}`), info: (_o, m) => logs.push(`info ${m}`) },
  });
  stores.push(s);
  return s;
}

const bucket = (id: string, amount: number) => ({
  inFlight: [id],
  bucket: { decayFactor: 0.9, items: [{ endpointId: id, bucket: 'short' as const, amount }] },
});

describe('degraded mode', () => {
  it('keeps answering while Redis is down, flags it, and converges after restart', async () => {
    const pool = `deg-${randomUUID().slice(0, 8)}`;
    const logs: string[] = [];
    const a = await open(pool, logs);
    const b = await open(pool);
    const changes: boolean[] = [];
    a.onHealthChange((h) => changes.push(h.degraded));
    const [e1, e2] = [ep(1).id, ep(2).id];
    await a.replaceEndpoints([ep(1), ep(2)]);
    await a.writeSignals(e1, { waitingQueueSize: 4, updatedAtMs: Date.now() });
    // Before the outage: one pick by each replica, both on e1.
    const fromB = await b.commitPick(commit('b1', bucket(e1, 100)));
    const before = await a.commitPick(commit('a1', bucket(e1, 100)));
    const beforeDone = await a.commitPick(commit('a2', bucket(e2, 50)));
    expect((await a.readSnapshot({ bucketLoads: true })).poolEvent).toBe(3);

    await server.stop();
    // Every call answers; none throws.
    const snap = await a.readSnapshot({ bucketLoads: true });
    expect(a.health().degraded).toBe(true);
    expect(changes).toEqual([true]);
    expect(snap.endpoints.map((e) => e.id)).toEqual([e1, e2]);
    expect(snap.signals.get(e1)?.waitingQueueSize).toBe(4);
    expect(Object.fromEntries(snap.inFlight)).toEqual({ [e1]: 2, [e2]: 1 });
    // Flow control's shared admission count is unknown: the snapshot says so (local view).
    const adm = await a.readSnapshot({ admission: { id: 'x.1', owner: 'x', ttlMs: 1_000 } });
    expect(adm.admissionsElsewhere).toBeUndefined();
    await a.cancelAdmission('x.1');
    const during = await a.commitPick(commit('a3', bucket(e2, 70)));
    await a.release(beforeDone); // cannot reach Redis: replayed on resync
    const local = await a.readSnapshot({ bucketLoads: true });
    expect(local.poolEvent).toBe(4);
    expect(during.chargedAtEvent).toBe(4);
    expect(Object.fromEntries(local.inFlight)).toEqual({ [e1]: 2, [e2]: 1 });
    // Local view of the loads = baseline decayed + own charges - own releases, at event 4.
    const e2Load = local.bucketLoads.get(e2)!;
    expect(decayed(e2Load.short, e2Load.atEvent, 4, 0.9)).toBeCloseTo(70, 9);
    const e1Load = local.bucketLoads.get(e1)!;
    expect(decayed(e1Load.short, e1Load.atEvent, 4, 0.9)).toBeCloseTo(100 * 0.9 ** 3 + 100 * 0.9 ** 2, 9);
    expect(await a.tryAcquireLease('scrape', 'a', 1_000)).toBe(true);
    await a.putIndexerAnswer('k', 'v', 1_000);
    expect((await a.readSnapshot({ indexerCacheKey: 'k' })).indexerAnswer).toBe('v');
    expect((await a.recentDecisions(10)).map((d) => d.requestId)).toEqual(['a3']);
    await a.renewLeases(['a1', 'a3'], 60_000);
    expect(a.counters.fallbacks).toBeGreaterThan(0);
    expect(logs.filter((l) => l.startsWith('warn')).length).toBe(1); // logged once, not per call

    // Redis comes back empty (no persistence): the replica re-publishes what it knows.
    await server.restart();
    await eventually(() => !a.health().degraded && !b.health().degraded, 8_000);
    expect(changes).toEqual([true, false]);
    expect(a.counters.resyncs).toBe(1);
    expect(logs.some((l) => l.startsWith('info'))).toBe(true);
    const shared = await b.readSnapshot({ bucketLoads: true });
    expect(shared.endpoints.map((e) => e.id)).toEqual([e1, e2]);
    // Open picks are charged again: a1 (before) and a3 (during) by a, b1 by b, which made no call during the
    // outage but saw its connection drop.
    await eventually(() => !b.health().degraded, 8_000);
    expect(b.counters.resyncs).toBe(1);
    expect(shared.inFlight.get(e1)).toBe(2);
    expect(shared.inFlight.get(e2)).toBe(1);
    const e2Shared = shared.bucketLoads.get(e2)!;
    expect(decayed(e2Shared.short, e2Shared.atEvent, shared.poolEvent, 0.9)).toBeCloseTo(70, 6);
    // Releasing everything converges to an idle pool.
    await a.release(before);
    await a.release(during);
    await b.release(fromB);
    const idle = await b.readSnapshot({ bucketLoads: true });
    expect(idle.inFlight.size).toBe(0);
    expect(
      decayed(idle.bucketLoads.get(e2)!.short, idle.bucketLoads.get(e2)!.atEvent, idle.poolEvent, 0.9),
    ).toBeCloseTo(0, 6);
  });

  it('pendingPrefillTokens while Redis is down: baseline plus own charges, first tokens replayed on resync', async () => {
    const pool = `pf-${randomUUID().slice(0, 8)}`;
    const a = await open(pool);
    const b = await open(pool);
    const [e1, e2] = [ep(1).id, ep(2).id];
    const pf = (id: string, tokens: number) => ({
      inFlight: [id],
      prefillTokens: [{ endpointId: id, tokens }],
    });
    await a.replaceEndpoints([ep(1), ep(2)]);
    const fromB = await b.commitPick(commit('b1', pf(e1, 1000)));
    // B's commit is not awaited (commitWithoutWaiting), and Redis serves two
    // connections in no fixed order: B's next reply proves it was applied.
    await b.readSnapshot({});
    const firstBefore = await a.commitPick(commit('a1', pf(e1, 200)));
    const doneBefore = await a.commitPick(commit('a2', pf(e2, 30)));
    expect(Object.fromEntries((await a.readSnapshot({})).pendingPrefillTokens)).toEqual({
      [e1]: 1200,
      [e2]: 30,
    });

    await server.stop();
    const pending = async (s: ResilientStateStore) =>
      Object.fromEntries((await s.readSnapshot({})).pendingPrefillTokens);
    expect(await pending(a)).toEqual({ [e1]: 1200, [e2]: 30 });
    expect(a.health().degraded).toBe(true);
    const during = await a.commitPick(commit('a3', pf(e2, 400)));
    const duringFirst = await a.commitPick(commit('a4', pf(e2, 5)));
    await a.releasePrefill(firstBefore); // Redis cannot hear it: replayed on resync
    await a.release(doneBefore);
    await a.releasePrefill(duringFirst);
    await a.releasePrefill(duringFirst);
    expect(await pending(a)).toEqual({ [e1]: 1000, [e2]: 400 });

    // Redis comes back empty (no persistence): each replica re-charges its open picks' unreleased prefill
    // (b1 by b, a3 by a), never the ones whose first token came meanwhile.
    await server.restart();
    await eventually(() => !a.health().degraded && !b.health().degraded, 8_000);
    expect(await pending(b)).toEqual({ [e1]: 1000, [e2]: 400 });
    expect(await pending(a)).toEqual({ [e1]: 1000, [e2]: 400 });
    await b.releasePrefill(fromB);
    await a.releasePrefill(during);
    await a.release(during);
    await a.release(duringFirst);
    await a.release(firstBefore);
    await b.release(fromB);
    const idle = await b.readSnapshot({});
    expect(idle.pendingPrefillTokens.size).toBe(0);
    expect(idle.inFlight.size).toBe(0);
  });

  it('a hung Redis costs at most the command timeout, then requests go local', async () => {
    const pool = `hang-${randomUUID().slice(0, 8)}`;
    const a = await open(pool);
    await a.replaceEndpoints([ep(1)]);
    const r = await a.commitPick(commit('x', bucket(ep(1).id, 10)));
    server.process.kill('SIGSTOP');
    try {
      let t = performance.now();
      const snap = await a.readSnapshot({});
      expect(performance.now() - t).toBeLessThan(1_000);
      expect(a.health().degraded).toBe(true);
      expect(snap.inFlight.get(ep(1).id)).toBe(1);
      t = performance.now();
      for (let i = 0; i < 20; i++) await a.readSnapshot({});
      expect(performance.now() - t).toBeLessThan(100); // degraded calls do not wait on Redis
    } finally {
      server.process.kill('SIGCONT');
    }
    await eventually(() => !a.health().degraded, 8_000);
    await a.release(r);
    expect((await a.readSnapshot({})).inFlight.size).toBe(0);
  });

  it('starts degraded when Redis is unreachable and joins it when it appears', async () => {
    const pool = `late-${randomUUID().slice(0, 8)}`;
    await server.stop();
    const a = await open(pool);
    expect(a.health().degraded).toBe(true);
    await a.replaceEndpoints([ep(1)]);
    const receipts: PickReceipt[] = [];
    for (let i = 0; i < 3; i++) receipts.push(await a.commitPick(commit(`l${i}`, { inFlight: [ep(1).id] })));
    await a.release(receipts[0]!);
    expect((await a.readSnapshot({})).inFlight.get(ep(1).id)).toBe(2);
    await server.restart();
    await eventually(() => !a.health().degraded, 8_000);
    const other = await open(pool);
    const snap = await other.readSnapshot({});
    expect(snap.endpoints).toEqual([ep(1)]);
    expect(snap.inFlight.get(ep(1).id)).toBe(2);
  });

  it("adds the replica's own picks issued after a snapshot's read to that snapshot", async () => {
    const pool = `pend-${randomUUID().slice(0, 8)}`;
    const a = await open(pool);
    const e1 = ep(1).id;
    await a.replaceEndpoints([ep(1)]);
    // A read in flight when this replica commits: Redis answers without the pick, the store adds it.
    const before = await a.readSnapshot({ bucketLoads: true });
    expect(before.bucketLoads.size).toBe(0);
    const reading = a.readSnapshot({ bucketLoads: true });
    const pending = a.commitPick(
      commit('p1', { ...bucket(e1, 100), prefillTokens: [{ endpointId: e1, tokens: 50 }] }),
    );
    const s2 = await reading;
    expect(s2.bucketLoads.get(e1)).toEqual({ short: 100, long: 0, atEvent: 0 });
    expect(s2.inFlight.get(e1)).toBe(1);
    expect(s2.pendingPrefillTokens.get(e1)).toBe(50);
    await pending;
    // A later read already has it from Redis: not counted twice.
    const s3 = await a.readSnapshot({ bucketLoads: true });
    expect(s3.bucketLoads.get(e1)).toEqual({ short: 100, long: 0, atEvent: 1 });
    expect(s3.inFlight.get(e1)).toBe(1);
    expect(s3.pendingPrefillTokens.get(e1)).toBe(50);
  });

  it('a pick committed while other snapshots of the same burst wait for their consumer counts in them', async () => {
    const pool = `burst-${randomUUID().slice(0, 8)}`;
    const a = await open(pool);
    const e1 = ep(1).id;
    await a.replaceEndpoints([ep(1)]);
    // Eight requests read at once, as under load; each consumer schedules, then commits, in turn.
    const reads = Array.from({ length: 8 }, () => a.readSnapshot({ bucketLoads: true }));
    const seen: number[] = [];
    const commits: Array<Promise<unknown>> = [];
    for (const [i, r] of reads.entries()) {
      const snap = await r;
      seen.push(snap.inFlight.get(e1) ?? 0);
      commits.push(a.commitPick(commit(`b${i}`, bucket(e1, 10))));
    }
    await Promise.all(commits);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Redis has them all now: a fresh read counts each once.
    expect((await a.readSnapshot({})).inFlight.get(e1)).toBe(8);
  });

  it('adds no round trip in healthy mode', async () => {
    const pool = `rt-${randomUUID().slice(0, 8)}`;
    const a = await open(pool);
    const inner = (a as unknown as { primary: { roundTrips: number } }).primary;
    await a.replaceEndpoints([ep(1)]);
    const n0 = inner.roundTrips;
    for (let i = 0; i < 10; i++) {
      await a.readSnapshot({ bucketLoads: true, prefixHashes: [1] });
      await a.release(await a.commitPick(commit(`q${i}`, bucket(ep(1).id, 1))));
    }
    expect(inner.roundTrips - n0).toBe(30);
  });
});
