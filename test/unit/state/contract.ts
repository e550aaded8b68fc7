// The StateStore contract: one suite, every backend. A backend passes it or
// it is not done (STYLE.md). Timing-based cases use short real leases/TTLs
// with wide margins so a loaded machine does not make them flaky.
import { afterEach, describe, expect, it } from 'vitest';
import type { BucketCharge, BucketLoadRecord, Endpoint, PickCharges } from '../../../src/scheduling/types.js';
import { applyInFlight, applyPrefill, chargeLoad, decayed, releaseLoad } from '../../../src/state/charges.js';
import type {
  DecisionRecord,
  PickCommit,
  PickReceipt,
  QueueHead,
  StateStore,
} from '../../../src/state/store.js';

export interface ContractBackend {
  name: string;
  /**
   * `n` store handles sharing one fresh, isolated state (separate clients for
   * Redis, the same instance for memory).
   */
  open(n: number, opts?: { decisionsLimit?: number }): Promise<StateStore[]>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function ep(i: number, labels: Record<string, string> = {}): Endpoint {
  return { id: `10.0.0.${i}:8000`, name: `vllm-${i}`, address: `10.0.0.${i}`, port: 8000, labels };
}

export function decision(requestId: string, endpoint = ep(1).id): DecisionRecord {
  return { requestId, atMs: 1, model: 'm', profile: 'p', endpoint, promptTokens: 10, score: 0.5 };
}

export function commit(requestId: string, charges: PickCharges, extra: Partial<PickCommit> = {}): PickCommit {
  return {
    chargeId: requestId,
    charges,
    leaseMs: 60_000,
    decision: decision(requestId, charges.inFlight[0]),
    ...extra,
  };
}

/** Deterministic PRNG (mulberry32) so the sequences are reproducible. */
const namedKeys = new Map<string, number>();
/** Block keys for named blocks: each name gets its own key (a 53-bit-range integer). */
export function keys(...names: string[]): number[] {
  return names.map((n) => {
    let k = namedKeys.get(n);
    if (k === undefined) namedKeys.set(n, (k = 2 ** 52 + namedKeys.size * 7919));
    return k;
  });
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

export function stateStoreContract(backend: ContractBackend): void {
  describe(`StateStore contract: ${backend.name}`, () => {
    const opened: StateStore[] = [];
    const open = async (n = 1, opts?: { decisionsLimit?: number }) => {
      const stores = await backend.open(n, opts);
      for (const s of new Set(stores)) opened.push(s);
      return stores;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it('returns the registered endpoints, their signals and an empty pool', async () => {
      const [s] = await open();
      const eps = [ep(1, { 'openfuyao.com/pdRole': 'prefill' }), ep(2)];
      await s!.replaceEndpoints(eps);
      await s!.writeSignals(eps[0]!.id, {
        waitingQueueSize: 3,
        runningRequests: 2,
        kvCacheUsage: 0.25,
        updatedAtMs: 1234,
      });
      await s!.writeSignals(eps[1]!.id, { kvCacheUsage: 0.5, updatedAtMs: 99 });
      const snap = await s!.readSnapshot({});
      expect(snap.endpoints).toEqual(eps);
      expect(snap.signals.get(eps[0]!.id)).toEqual({
        waitingQueueSize: 3,
        runningRequests: 2,
        kvCacheUsage: 0.25,
        updatedAtMs: 1234,
      });
      const partial = snap.signals.get(eps[1]!.id)!;
      expect(partial).toEqual({ kvCacheUsage: 0.5, updatedAtMs: 99 });
      expect(partial.waitingQueueSize).toBeUndefined();
      expect(snap.inFlight.size).toBe(0);
      expect(snap.pendingPrefillTokens.size).toBe(0);
      expect(snap.bucketLoads.size).toBe(0);
      expect(snap.poolEvent).toBe(0);
      expect(snap.prefixMatches).toBeUndefined();
      expect(snap.indexerAnswer).toBeUndefined();
      expect((await s!.readSnapshot({ prefixHashes: [] })).prefixMatches).toEqual(new Map());
    });

    it('replacing endpoints drops the signals, loads and prefixes of those removed', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1), ep(2)]);
      await s!.writeSignals(ep(1).id, { waitingQueueSize: 1, updatedAtMs: 1 });
      await s!.writeSignals(ep(2).id, { waitingQueueSize: 2, updatedAtMs: 1 });
      await s!.commitPick(
        commit('r1', {
          inFlight: [ep(1).id],
          bucket: { decayFactor: 0.9, items: [{ endpointId: ep(1).id, bucket: 'short', amount: 1 }] },
          prefixRecord: { endpointId: ep(1).id, hashes: keys('a', 'b') },
        }),
      );
      await s!.replaceEndpoints([ep(2)]);
      const snap = await s!.readSnapshot({ bucketLoads: true, prefixHashes: keys('a', 'b') });
      expect(snap.endpoints).toEqual([ep(2)]);
      expect([...snap.signals.keys()]).toEqual([ep(2).id]);
      expect(snap.bucketLoads.size).toBe(0);
      expect(snap.prefixMatches).toEqual(new Map());
      // In-flight charges stay until released: the request is still running.
      expect(snap.inFlight.get(ep(1).id)).toBe(1);
    });

    it('charges in-flight at commit and releases it exactly once', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1), ep(2)]);
      const r1 = await s!.commitPick(commit('r1', { inFlight: [ep(1).id, ep(2).id] }));
      const r2 = await s!.commitPick(commit('r2', { inFlight: [ep(1).id] }));
      let snap = await s!.readSnapshot({});
      expect(Object.fromEntries(snap.inFlight)).toEqual({ [ep(1).id]: 2, [ep(2).id]: 1 });
      expect(r1.chargedAtEvent).toBe(0);
      await s!.release(r1);
      await s!.release(r1); // a second release must not go negative or touch r2
      snap = await s!.readSnapshot({});
      expect(Object.fromEntries(snap.inFlight)).toEqual({ [ep(1).id]: 1 });
      await s!.release(r2);
      expect((await s!.readSnapshot({})).inFlight.size).toBe(0);
    });

    it('pendingPrefillTokens: charged at commit, released once at the first token or the release', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1), ep(2)]);
      const pf = (endpointId: string, tokens: number) => ({ endpointId, tokens });
      const r1 = await s!.commitPick(
        commit('r1', { inFlight: [ep(1).id], prefillTokens: [pf(ep(1).id, 500)] }),
      );
      const r2 = await s!.commitPick(
        commit('r2', { inFlight: [ep(1).id], prefillTokens: [pf(ep(1).id, 300)] }),
      );
      const r3 = await s!.commitPick(
        commit('r3', { inFlight: [ep(2).id], prefillTokens: [pf(ep(2).id, 7)] }),
      );
      const noPrefill = await s!.commitPick(commit('r4', { inFlight: [ep(2).id] }));
      const pending = async () => Object.fromEntries((await s!.readSnapshot({})).pendingPrefillTokens);
      expect(await pending()).toEqual({ [ep(1).id]: 800, [ep(2).id]: 7 });
      await s!.releasePrefill(r1);
      await s!.releasePrefill(r1); // idempotent
      await s!.releasePrefill(noPrefill); // nothing to release
      expect(await pending()).toEqual({ [ep(1).id]: 300, [ep(2).id]: 7 });
      // The first token releases only the prefill part.
      expect((await s!.readSnapshot({})).inFlight.get(ep(1).id)).toBe(2);
      await s!.release(r1); // its prefill part is already gone: nothing more comes off
      expect(await pending()).toEqual({ [ep(1).id]: 300, [ep(2).id]: 7 });
      await s!.release(r2); // no first token (error reply): the release takes it
      await s!.releasePrefill(r2); // after the release: a no-op
      expect(await pending()).toEqual({ [ep(2).id]: 7 });
      await s!.release(r3);
      await s!.release(noPrefill);
      const snap = await s!.readSnapshot({});
      expect(snap.pendingPrefillTokens.size).toBe(0);
      expect(snap.inFlight.size).toBe(0);
    });

    it('pendingPrefillTokens expire with the lease, like in-flight charges', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1)]);
      const short = await s!.commitPick(
        commit(
          'short',
          { inFlight: [ep(1).id], prefillTokens: [{ endpointId: ep(1).id, tokens: 100 }] },
          { leaseMs: 1_000 },
        ),
      );
      await s!.commitPick(
        commit(
          'renewed',
          { inFlight: [ep(1).id], prefillTokens: [{ endpointId: ep(1).id, tokens: 20 }] },
          { leaseMs: 1_000 },
        ),
      );
      await sleep(200);
      await s!.renewLeases(['renewed'], 20_000);
      await sleep(1_500);
      expect((await s!.readSnapshot({})).pendingPrefillTokens.get(ep(1).id)).toBe(20);
      // A late first token of the expired pick takes nothing from the live one.
      await s!.releasePrefill(short);
      await s!.release(short);
      expect((await s!.readSnapshot({})).pendingPrefillTokens.get(ep(1).id)).toBe(20);
    });

    // A pick is released by the replica (handle) that made it, and a handle's
    // writes are seen by the others once one of its later calls was answered:
    // behind the degraded-mode wrapper a commit without a bucket charge is
    // not awaited (its Redis write rides ahead of the handle's next command).
    it('pendingPrefillTokens: the sum of unreleased charges over random picks from several handles', async () => {
      const stores = await open(3);
      await stores[0]!.replaceEndpoints([ep(1), ep(2), ep(3)]);
      const rand = rng(17);
      const eps = [ep(1).id, ep(2).id, ep(3).id];
      type Open = {
        store: StateStore;
        receipt: Awaited<ReturnType<StateStore['commitPick']>>;
        ep: string;
        tokens: number;
        first: boolean;
      };
      const live: Open[] = [];
      const want = new Map<string, number>();
      const add = (id: string, n: number) => want.set(id, (want.get(id) ?? 0) + n);
      for (let i = 0; i < 120; i++) {
        const s = stores[Math.floor(rand() * stores.length)]!;
        const r = rand();
        if (r < 0.5 || live.length === 0) {
          const id = eps[Math.floor(rand() * eps.length)]!;
          const tokens = 1 + Math.floor(rand() * 5000);
          const receipt = await s.commitPick(
            commit(`p${i}`, { inFlight: [id], prefillTokens: [{ endpointId: id, tokens }] }),
          );
          live.push({ store: s, receipt, ep: id, tokens, first: false });
          add(id, tokens);
        } else {
          const k = Math.floor(rand() * live.length);
          const o = live[k]!;
          if (r < 0.75) {
            await o.store.releasePrefill(o.receipt);
            if (!o.first) add(o.ep, -o.tokens);
            o.first = true;
          } else {
            await o.store.release(o.receipt);
            if (!o.first) add(o.ep, -o.tokens);
            live.splice(k, 1);
          }
        }
      }
      for (const id of [...want.keys()]) if (want.get(id) === 0) want.delete(id);
      // One answered call per handle: every handle's writes have landed.
      for (const s of stores) await s.readSnapshot({});
      for (const s of stores) {
        expect(Object.fromEntries((await s.readSnapshot({})).pendingPrefillTokens)).toEqual(
          Object.fromEntries(want),
        );
      }
    });

    it('expired in-flight leases vanish without a release; renewal keeps them', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1)]);
      // Margins are wide so a loaded CI machine cannot turn them around.
      const short = await s!.commitPick(commit('short', { inFlight: [ep(1).id] }, { leaseMs: 1_000 }));
      await s!.commitPick(commit('renewed', { inFlight: [ep(1).id] }, { leaseMs: 1_000 }));
      await s!.commitPick(commit('long', { inFlight: [ep(1).id] }, { leaseMs: 60_000 }));
      expect((await s!.readSnapshot({})).inFlight.get(ep(1).id)).toBe(3);
      await sleep(200);
      await s!.renewLeases(['renewed', 'unknown'], 20_000);
      await sleep(1_500);
      expect((await s!.readSnapshot({})).inFlight.get(ep(1).id)).toBe(2);
      // Releasing an expired pick does not take a live charge with it.
      await s!.release(short);
      expect((await s!.readSnapshot({})).inFlight.get(ep(1).id)).toBe(2);
    });

    it('every charge and release equals the TS charge algebra (charges.ts) replayed, record by record', async () => {
      // The Lua scripts mirror charges.ts: replay the same operations through
      // the algebra and compare every stored record after every step.
      const [s] = await open();
      const eps = [ep(1), ep(2), ep(3)];
      await s!.replaceEndpoints(eps);
      const d = 0.9;
      const random = rng(7);
      const loads = new Map<string, BucketLoadRecord>();
      const inFlight = new Map<string, number>();
      const prefill = new Map<string, number>();
      let event = 0;
      const live: Array<{ receipt: PickReceipt; first: boolean }> = [];
      for (let i = 0; i < 80; i++) {
        const r = random();
        if (live.length > 0 && r < 0.45) {
          const [o] = live.splice(Math.floor(random() * live.length), 1);
          const { receipt } = o!;
          await s!.release(receipt);
          applyInFlight(inFlight, receipt.charges, -1);
          if (!o!.first) applyPrefill(prefill, receipt.charges, -1);
          for (const it of receipt.charges.bucket?.items ?? []) {
            const rec = loads.get(it.endpointId);
            if (rec) loads.set(it.endpointId, releaseLoad(rec, it, receipt.chargedAtEvent, event, d));
          }
        } else if (live.length > 0 && r < 0.6) {
          const o = live[Math.floor(random() * live.length)]!;
          await s!.releasePrefill(o.receipt);
          if (!o.first) applyPrefill(prefill, o.receipt.charges, -1);
          o.first = true;
        } else {
          const [p, q] = [eps[Math.floor(random() * 3)]!.id, eps[Math.floor(random() * 3)]!.id];
          const items: BucketCharge[] = [
            { endpointId: p, bucket: random() < 0.5 ? 'short' : 'long', amount: 1 + random() * 3000 },
            { endpointId: q, bucket: 'short', amount: 1 },
          ];
          const charges: PickCharges = {
            inFlight: [p, q],
            bucket: { decayFactor: d, items },
            prefillTokens: [{ endpointId: p, tokens: 1 + Math.floor(random() * 9000) }],
          };
          const receipt = await s!.commitPick(commit(`x${i}`, charges));
          event++;
          expect(receipt.chargedAtEvent).toBe(event);
          for (const it of items)
            loads.set(it.endpointId, chargeLoad(loads.get(it.endpointId), it, event, d));
          applyInFlight(inFlight, charges, 1);
          applyPrefill(prefill, charges, 1);
          live.push({ receipt, first: false });
        }
        const snap = await s!.readSnapshot({ bucketLoads: true });
        expect(snap.poolEvent).toBe(event);
        expect([...snap.bucketLoads.keys()].sort()).toEqual([...loads.keys()].sort());
        for (const [id, want] of loads) {
          const got = snap.bucketLoads.get(id)!;
          expect(got.atEvent, `step ${i} ${id}`).toBe(want.atEvent);
          expect(close(got.short, want.short) && close(got.long, want.long), `step ${i} ${id}`).toBe(true);
        }
        expect(Object.fromEntries(snap.inFlight)).toEqual(Object.fromEntries(inFlight));
        expect(Object.fromEntries(snap.pendingPrefillTokens)).toEqual(Object.fromEntries(prefill));
      }
    });

    it('bucket decay-and-charge equals the closed form over many picks and releases', async () => {
      const [s] = await open();
      const eps = [ep(1), ep(2), ep(3)];
      await s!.replaceEndpoints(eps);
      const d = 0.95;
      const random = rng(42);
      type Open = {
        receipt: Awaited<ReturnType<StateStore['commitPick']>>;
        ep: string;
        bucket: 'short' | 'long';
        amount: number;
      };
      const live: Open[] = [];
      let events = 0;
      for (let i = 0; i < 120; i++) {
        if (live.length > 0 && random() < 0.4) {
          const [o] = live.splice(Math.floor(random() * live.length), 1);
          await s!.release(o!.receipt);
          continue;
        }
        const e = eps[Math.floor(random() * eps.length)]!.id;
        const bucket = random() < 0.5 ? 'short' : 'long';
        const amount = Math.round(random() * 4000) + 1;
        const receipt = await s!.commitPick(
          commit(`r${i}`, {
            inFlight: [e],
            bucket: { decayFactor: d, items: [{ endpointId: e, bucket, amount }] },
          }),
        );
        expect(receipt.chargedAtEvent).toBe(++events);
        live.push({ receipt, ep: e, bucket, amount });
      }
      const snap = await s!.readSnapshot({ bucketLoads: true });
      expect(snap.poolEvent).toBe(events);
      for (const e of eps) {
        // Closed form: every open charge decayed from its event to now; released ones contribute nothing.
        const want = { short: 0, long: 0 };
        for (const o of live)
          if (o.ep === e.id) want[o.bucket] += decayed(o.amount, o.receipt.chargedAtEvent, events, d);
        const rec = snap.bucketLoads.get(e.id) ?? { short: 0, long: 0, atEvent: events };
        const got = {
          short: decayed(rec.short, rec.atEvent, events, d),
          long: decayed(rec.long, rec.atEvent, events, d),
        };
        expect(close(got.short, want.short), `${e.id} short ${got.short} vs ${want.short}`).toBe(true);
        expect(close(got.long, want.long), `${e.id} long ${got.long} vs ${want.long}`).toBe(true);
        expect(snap.inFlight.get(e.id) ?? 0).toBe(live.filter((o) => o.ep === e.id).length);
      }
    });

    it('concurrent commits from several handles give exactly the serial result', async () => {
      const stores = await open(3);
      await stores[0]!.replaceEndpoints([ep(1), ep(2)]);
      const d = 0.9;
      const perStore = 40;
      const receipts = (
        await Promise.all(
          stores.map((s, k) =>
            Promise.all(
              Array.from({ length: perStore }, (_, i) => {
                const e = ep(1 + ((i + k) % 2)).id;
                return s.commitPick(
                  commit(`s${k}-${i}`, {
                    inFlight: [e],
                    bucket: { decayFactor: d, items: [{ endpointId: e, bucket: 'short', amount: 100 + k }] },
                  }),
                );
              }),
            ),
          ),
        )
      ).flat();
      const n = stores.length * perStore;
      // Each charge got its own event: the commits were serialised, none lost.
      expect(receipts.map((r) => r.chargedAtEvent).sort((a, b) => a - b)).toEqual(
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const snap = await stores[1]!.readSnapshot({ bucketLoads: true });
      expect(snap.poolEvent).toBe(n);
      for (const e of [ep(1).id, ep(2).id]) {
        let want = 0;
        for (const r of receipts) {
          const item = r.charges.bucket!.items[0]!;
          if (item.endpointId === e) want += decayed(item.amount, r.chargedAtEvent, n, d);
        }
        const rec = snap.bucketLoads.get(e)!;
        expect(close(decayed(rec.short, rec.atEvent, n, d), want)).toBe(true);
        expect(snap.inFlight.get(e)).toBe(n / 2);
      }
      // Concurrent releases from other handles net to zero.
      await Promise.all(receipts.map((r, i) => stores[i % stores.length]!.release(r)));
      const after = await stores[2]!.readSnapshot({ bucketLoads: true });
      expect(after.inFlight.size).toBe(0);
      for (const rec of after.bucketLoads.values()) {
        expect(Math.abs(rec.short)).toBeLessThan(1e-6);
        expect(rec.long).toBe(0);
      }
    });

    it('approximate prefix index: leading-block matches with a per-endpoint LRU', async () => {
      const [s] = await open();
      const [a, b] = [ep(1).id, ep(2).id];
      await s!.replaceEndpoints([ep(1), ep(2)]);
      const rec = (id: string, hashes: number[], i: number) =>
        s!.commitPick(
          commit(
            `p${i}`,
            { inFlight: [], prefixRecord: { endpointId: id, hashes } },
            { prefixCapacityPerEndpoint: 4 },
          ),
        );
      await rec(a, keys('h1', 'h2', 'h3'), 1);
      await rec(b, keys('h1', 'h2'), 2);
      const q = { prefixHashes: keys('h1', 'h2', 'h3', 'h4') };
      expect((await s!.readSnapshot(q)).prefixMatches).toEqual(
        new Map([
          [a, 3],
          [b, 2],
        ]),
      );
      // A's capacity is 4. A record stamps its first block newest, so A's
      // LRU is h3, h2, h1 (oldest first); recording the chain g1, g2 evicts
      // h3, the tail of the older prompt, and keeps its head h1, h2.
      await rec(a, keys('g1', 'g2'), 3);
      expect((await s!.readSnapshot(q)).prefixMatches).toEqual(
        new Map([
          [a, 2],
          [b, 2],
        ]),
      );
      expect((await s!.readSnapshot({ prefixHashes: keys('g1', 'g2') })).prefixMatches).toEqual(
        new Map([[a, 2]]),
      );
      // Re-sending h1, h2 makes them newer than g1, g2: the next chain evicts g2, then g1.
      await rec(a, keys('h1', 'h2'), 4);
      await rec(a, keys('k1'), 5);
      expect((await s!.readSnapshot({ prefixHashes: keys('g1', 'g2') })).prefixMatches).toEqual(
        new Map([[a, 1]]),
      );
      expect((await s!.readSnapshot(q)).prefixMatches).toEqual(
        new Map([
          [a, 2],
          [b, 2],
        ]),
      );
      await rec(a, keys('k2'), 6);
      expect((await s!.readSnapshot({ prefixHashes: keys('g1', 'g2') })).prefixMatches).toEqual(new Map());
      expect((await s!.readSnapshot({ prefixHashes: keys('k2') })).prefixMatches).toEqual(new Map([[a, 1]]));
      expect((await s!.readSnapshot({ prefixHashes: keys('zz', 'h1') })).prefixMatches).toEqual(new Map());
    });

    it('matches long prompts (thousands of blocks) in full', async () => {
      const [s] = await open();
      await s!.replaceEndpoints([ep(1)]);
      const hashes = keys(...Array.from({ length: 2_500 }, (_, i) => `blk${i}`));
      await s!.commitPick(commit('long', { inFlight: [], prefixRecord: { endpointId: ep(1).id, hashes } }));
      expect((await s!.readSnapshot({ prefixHashes: hashes })).prefixMatches).toEqual(
        new Map([[ep(1).id, 2_500]]),
      );
      // A prompt that leaves the recorded one after 1,300 blocks (a new tail of 1,200).
      const half = [
        ...hashes.slice(0, 1_300),
        ...keys(...Array.from({ length: 1_200 }, (_, i) => `other${i}`)),
      ];
      expect((await s!.readSnapshot({ prefixHashes: half })).prefixMatches).toEqual(
        new Map([[ep(1).id, 1_300]]),
      );
    });

    it('caches cache-indexer answers for their TTL only', async () => {
      const [s] = await open();
      await s!.putIndexerAnswer('k1', '[["a",0.5]]', 300);
      await s!.putIndexerAnswer('k2', 'long', 60_000);
      expect((await s!.readSnapshot({ indexerCacheKey: 'k1' })).indexerAnswer).toBe('[["a",0.5]]');
      expect((await s!.readSnapshot({ indexerCacheKey: 'nope' })).indexerAnswer).toBeUndefined();
      await sleep(450);
      expect((await s!.readSnapshot({ indexerCacheKey: 'k1' })).indexerAnswer).toBeUndefined();
      expect((await s!.readSnapshot({ indexerCacheKey: 'k2' })).indexerAnswer).toBe('long');
    });

    it('background-work leases are exclusive between holders until they expire', async () => {
      const [s1, s2] = await open(2);
      expect(await s1!.tryAcquireLease('scrape/10.0.0.1:8000', 'replica-a', 300)).toBe(true);
      expect(await s2!.tryAcquireLease('scrape/10.0.0.1:8000', 'replica-b', 300)).toBe(false);
      expect(await s2!.tryAcquireLease('scrape/10.0.0.2:8000', 'replica-b', 300)).toBe(true);
      expect(await s1!.tryAcquireLease('scrape/10.0.0.1:8000', 'replica-a', 300)).toBe(true); // renewal
      await sleep(450);
      expect(await s2!.tryAcquireLease('scrape/10.0.0.1:8000', 'replica-b', 300)).toBe(true);
      expect(await s1!.tryAcquireLease('scrape/10.0.0.1:8000', 'replica-a', 300)).toBe(false);
    });

    it("admission: counts other owners' reservations and adds its own in one step; commit and cancel withdraw", async () => {
      const [a, b] = await open(2);
      await a!.replaceEndpoints([ep(1)]);
      const adm = (id: string, owner: string, ttlMs = 60_000) => ({ admission: { id, owner, ttlMs } });
      // Each answer counts what was reserved before it by other owners.
      expect((await a!.readSnapshot(adm('ra.1', 'ra'))).admissionsElsewhere).toBe(0);
      expect((await b!.readSnapshot(adm('rb.1', 'rb'))).admissionsElsewhere).toBe(1);
      expect((await a!.readSnapshot(adm('ra.2', 'ra'))).admissionsElsewhere).toBe(1);
      expect((await b!.readSnapshot(adm('rb.2', 'rb'))).admissionsElsewhere).toBe(2);
      // Without the query nothing is reserved or counted.
      expect((await a!.readSnapshot({})).admissionsElsewhere).toBeUndefined();
      // ra.1 is charged (its reservation becomes the in-flight charge), ra.2 withdrawn.
      await a!.commitPick(commit('ra.1', { inFlight: [ep(1).id] }));
      await a!.cancelAdmission('ra.2');
      const snap = await b!.readSnapshot(adm('rb.3', 'rb'));
      expect(snap.admissionsElsewhere).toBe(0);
      expect(snap.inFlight.get(ep(1).id)).toBe(1);
      expect((await a!.readSnapshot(adm('ra.3', 'ra'))).admissionsElsewhere).toBe(3);
      // A reservation nobody commits or cancels (its replica died) lapses.
      await b!.cancelAdmission('rb.1');
      await b!.cancelAdmission('rb.2');
      await b!.cancelAdmission('rb.3');
      await b!.readSnapshot(adm('rb.4', 'rb', 50));
      await sleep(150);
      expect((await a!.readSnapshot(adm('ra.4', 'ra'))).admissionsElsewhere).toBe(0);
    });

    it('queue heads: published in the admission step, answered to the other owners; replaced, cleared, lapsed', async () => {
      const [a, b] = await open(2);
      await a!.replaceEndpoints([ep(1)]);
      const adm = (id: string, owner: string, heads: QueueHead[], headsTtlMs = 60_000) => ({
        admission: { id, owner, ttlMs: 60_000, heads, headsTtlMs },
      });
      // a publishes two bands; a read by a itself does not answer its own heads.
      const first = await a!.readSnapshot(
        adm('ra.1', 'ra', [
          { priority: 10, ageMs: 30, seq: 7 },
          { priority: 0, ageMs: 500, seq: 3 },
        ]),
      );
      expect(first.foreignHeads).toEqual([]);
      // Its own heads come back as the store keeps them (ages on the store's clock).
      expect(first.ownHeads!.map((h) => [h.owner, h.priority, h.seq])).toEqual([
        ['ra', 10, 7],
        ['ra', 0, 3],
      ]);
      expect(first.ownHeads![1]!.ageMs).toBeGreaterThanOrEqual(500);
      expect(first.ownHeads![1]!.ageMs).toBeLessThan(500 + 1_000);
      await sleep(40);
      const seen = (await b!.readSnapshot(adm('rb.1', 'rb', []))).foreignHeads!;
      expect(seen.map((h) => [h.owner, h.priority, h.seq])).toEqual([
        ['ra', 10, 7],
        ['ra', 0, 3],
      ]);
      // Ages grow on the store's clock from the publication (40 ms slept, wide margins).
      expect(seen[0]!.ageMs).toBeGreaterThanOrEqual(30 + 35);
      expect(seen[0]!.ageMs).toBeLessThan(30 + 1_000);
      expect(seen[1]!.ageMs).toBeGreaterThanOrEqual(500 + 35);
      expect(seen[0]!.expiresInMs).toBeGreaterThan(50_000);
      expect(seen[0]!.expiresInMs).toBeLessThanOrEqual(60_000);
      // Without heads in the query nothing is published or answered.
      expect(
        (await b!.readSnapshot({ admission: { id: 'rb.2', owner: 'rb', ttlMs: 60_000 } })).foreignHeads,
      ).toBe(undefined);
      // A new publication replaces the old one; b's own heads are answered to a.
      const fromB = await a!.readSnapshot(adm('ra.2', 'ra', [{ priority: 0, ageMs: 5, seq: 4 }]));
      expect(fromB.foreignHeads).toEqual([]);
      await b!.readSnapshot(adm('rb.3', 'rb', [{ priority: 0, ageMs: 1, seq: 1 }]));
      await sleep(40);
      // Published again, a head keeps its first enqueue time (5 ms + 40 slept, not the 6 sent).
      const again = await a!.readSnapshot(adm('ra.3', 'ra', [{ priority: 0, ageMs: 6, seq: 4 }]));
      expect(again.ownHeads!.map((h) => h.seq)).toEqual([4]);
      expect(again.ownHeads![0]!.ageMs).toBeGreaterThanOrEqual(5 + 35);
      const both = again.foreignHeads!;
      expect(both.map((h) => [h.owner, h.priority, h.seq])).toEqual([['rb', 0, 1]]);
      expect(both[0]!.ageMs).toBeGreaterThanOrEqual(1 + 35);
      expect(
        (await b!.readSnapshot(adm('rb.4', 'rb', [{ priority: 0, ageMs: 2, seq: 1 }]))).foreignHeads!.map(
          (h) => h.seq,
        ),
      ).toEqual([4]);
      // An empty list removes them, and so does clearHeads.
      await a!.readSnapshot(adm('ra.4', 'ra', []));
      expect(
        (await b!.readSnapshot(adm('rb.5', 'rb', [{ priority: 0, ageMs: 2, seq: 1 }]))).foreignHeads,
      ).toEqual([]);
      await a!.clearHeads('rb');
      expect((await a!.readSnapshot(adm('ra.5', 'ra', []))).foreignHeads).toEqual([]);
      // Heads nobody publishes again (their replica died) lapse after their TTL.
      await b!.readSnapshot(adm('rb.6', 'rb', [{ priority: 0, ageMs: 2, seq: 2 }], 100));
      expect((await a!.readSnapshot(adm('ra.6', 'ra', []))).foreignHeads!.map((h) => h.seq)).toEqual([2]);
      await sleep(250);
      expect((await a!.readSnapshot(adm('ra.7', 'ra', []))).foreignHeads).toEqual([]);
    });

    it('a withdrawal that leaves room wakes the listeners, after the reservation is gone', async () => {
      const [a, b] = await open(2);
      await a!.replaceEndpoints([ep(1)]);
      const adm = (id: string, owner: string) => ({ admission: { id, owner, ttlMs: 60_000 } });
      const heard: Array<{ from: string; elsewhere: number | undefined }> = [];
      const off = b!.onWake((from) => {
        // What a woken replica reads next no longer counts the withdrawn reservation.
        void b!.readSnapshot(adm(`rb.${heard.length + 10}`, 'rb')).then((snap) => {
          heard.push({ from, elsewhere: snap.admissionsElsewhere });
          void b!.cancelAdmission(`rb.${heard.length + 9}`);
        });
      });
      // The Redis store subscribes on a connection of its own: give it time to be listening.
      await sleep(200);
      await a!.readSnapshot(adm('ra.1', 'ra'));
      await a!.cancelAdmission('ra.1');
      await sleep(100);
      expect(heard).toEqual([]);
      await a!.readSnapshot(adm('ra.2', 'ra'));
      await a!.cancelAdmission('ra.2', 'ra');
      for (let i = 0; i < 100 && heard.length === 0; i++) await sleep(10);
      expect(heard).toEqual([{ from: 'ra', elsewhere: 0 }]);
      off();
      await a!.readSnapshot(adm('ra.3', 'ra'));
      await a!.cancelAdmission('ra.3', 'ra');
      await sleep(100);
      expect(heard.length).toBe(1);
    });

    it('a release with wakeFrom wakes the listeners, after the charge is gone', async () => {
      const [a, b] = await open(2);
      await a!.replaceEndpoints([ep(1)]);
      const heard: Array<{ from: string; inFlight: number | undefined }> = [];
      const off = b!.onWake((from) => {
        // What a woken replica reads next no longer counts the released pick.
        void b!.readSnapshot({}).then((snap) => heard.push({ from, inFlight: snap.inFlight.get(ep(1).id) }));
      });
      await sleep(200);
      await a!.release(await a!.commitPick(commit('w1', { inFlight: [ep(1).id] })));
      await sleep(100);
      expect(heard).toEqual([]);
      await a!.release(await a!.commitPick(commit('w2', { inFlight: [ep(1).id] })), 'ra');
      for (let i = 0; i < 100 && heard.length === 0; i++) await sleep(10);
      expect(heard).toEqual([{ from: 'ra', inFlight: undefined }]);
      off();
    });

    it('keeps a bounded list of recent decisions, newest first', async () => {
      const [s] = await open(1, { decisionsLimit: 5 });
      await s!.replaceEndpoints([ep(1)]);
      for (let i = 0; i < 8; i++) {
        const r = await s!.commitPick(commit(`d${i}`, { inFlight: [ep(1).id] }));
        await s!.release(r);
      }
      const all = await s!.recentDecisions(10);
      expect(all.map((d) => d.requestId)).toEqual(['d7', 'd6', 'd5', 'd4', 'd3']);
      expect(all[0]).toEqual(decision('d7'));
      expect((await s!.recentDecisions(2)).map((d) => d.requestId)).toEqual(['d7', 'd6']);
    });
  });
}
