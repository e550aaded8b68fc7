// The Redis prefix index (holder bitmaps over per-endpoint slots) against the
// memory store as the reference: random record/match/remove sequences over
// more endpoints than one bitmap byte holds, with LRU eviction, endpoint
// removal and slot reuse. Plus what only Redis has: an endpoint whose LRU key
// expired while the pool stayed alive is forgotten, not half-remembered.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import type { StateStore } from '../../../src/state/store.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { commit, ep, keys, rng, sleep } from './contract.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

async function redisStore(pool: string, prefixTtlMs?: number): Promise<RedisStateStore> {
  const s = new RedisStateStore(createRedisClient(server.url, { commandTimeoutMs: 5_000 }), {
    pool,
    prefixTtlMs,
  });
  await s.connect();
  return s;
}

function record(s: StateStore, id: string, endpointId: string, names: string[], capacity: number) {
  const hashes = keys(...names);
  return s.commitPick(
    commit(
      id,
      { inFlight: [], prefixRecord: { endpointId, hashes } },
      { prefixCapacityPerEndpoint: capacity },
    ),
  );
}

describe('Redis prefix index', () => {
  it('matches exactly like the memory store over random records, evictions and endpoint changes', async () => {
    const mem = new MemoryStateStore();
    const red = await redisStore(`pxfuzz-${randomUUID().slice(0, 8)}`);
    try {
      const random = rng(7);
      // 20 endpoints: slots 0..19, three bitmap bytes.
      const all: Endpoint[] = Array.from({ length: 20 }, (_, i) => ep(i + 1));
      let live = all.slice(0, 14);
      for (const s of [mem, red]) await s.replaceEndpoints(live);
      // Chains over a small alphabet so prompts share prefixes and holder sets
      // differ along a prompt; some records repeat a block. Queries are plain
      // chains, as chained block hashes always are (the match relies on it).
      const prompt = (repeat = true): string[] => {
        const root = Math.floor(random() * 4);
        const len = 1 + Math.floor(random() * 12);
        const out: string[] = [];
        let h = `r${root}`;
        for (let i = 0; i < len; i++) {
          h = `${h}.${Math.floor(random() * (i < 4 ? 1 : 3))}`;
          out.push(h);
        }
        if (repeat && random() < 0.1) out.push(out[0]!);
        return out;
      };
      const capacity = 10;
      let n = 0;
      let multi = 0;
      for (let step = 0; step < 400; step++) {
        const r = random();
        if (r < 0.55) {
          const target = live[Math.floor(random() * live.length)]!.id;
          const hashes = prompt();
          n++;
          for (const s of [mem, red]) await record(s, `p${n}`, target, hashes, capacity);
        } else if (r < 0.95) {
          const names = prompt(false);
          const q = { prefixHashes: keys(...names) };
          const want = (await mem.readSnapshot(q)).prefixMatches;
          const got = (await red.readSnapshot(q)).prefixMatches;
          expect(got, `step ${step} query ${names.join(' ')}`).toEqual(want);
          if (new Set(want!.values()).size > 1) multi++;
        } else {
          // Endpoints leave and (re)join: freed slots are reused by newcomers.
          live = all.filter(() => random() < 0.7);
          if (live.length === 0) live = [all[0]!];
          for (const s of [mem, red]) await s.replaceEndpoints(live);
        }
      }
      expect(n).toBeGreaterThan(150);
      // The sequence exercised holder sets that differ along a prompt.
      expect(multi).toBeGreaterThan(20);
    } finally {
      await red.close();
    }
  });

  it('an endpoint whose LRU expired while the pool stayed active is forgotten, then indexed afresh', async () => {
    const pool = `pxttl-${randomUUID().slice(0, 8)}`;
    const s = await redisStore(pool, 400);
    const raw = new Redis(server.port, '127.0.0.1');
    try {
      const [a, b] = [ep(1).id, ep(2).id];
      await s.replaceEndpoints([ep(1), ep(2)]);
      await record(s, 'a1', a, ['x1', 'x2'], 100);
      // B keeps the pool's index alive; A's LRU key expires meanwhile.
      for (let i = 0; i < 8; i++) {
        await record(s, `b${i}`, b, ['x1', `y${i}`], 100);
        await sleep(100);
      }
      const prefix = `hermes:{${pool}}:`;
      expect(await raw.exists(prefix + `pxl:${a}`)).toBe(0);
      expect(await raw.exists(prefix + 'pxb')).toBe(1);
      await record(s, 'a2', a, ['z1'], 100);
      const snap = await s.readSnapshot({ prefixHashes: keys('x1', 'x2') });
      // A's old blocks are not credited to it (nor to whoever gets its old slot).
      expect(snap.prefixMatches).toEqual(new Map([[b, 1]]));
      expect((await s.readSnapshot({ prefixHashes: keys('z1') })).prefixMatches).toEqual(new Map([[a, 1]]));
      // A third endpoint does not inherit A's retired slot.
      await s.replaceEndpoints([ep(1), ep(2), ep(3)]);
      await record(s, 'c1', ep(3).id, ['w1'], 100);
      expect((await s.readSnapshot({ prefixHashes: keys('x1', 'x2') })).prefixMatches).toEqual(
        new Map([[b, 1]]),
      );
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('re-recording a prompt its endpoint already holds writes no holder sets', async () => {
    const pool = `pxw-${randomUUID().slice(0, 8)}`;
    const s = await redisStore(pool);
    const hashes = Array.from({ length: 256 }, (_, i) => `b${i}`);
    await s.replaceEndpoints([ep(1), ep(2)]);
    await record(s, 'w0', ep(1).id, hashes, 31_250);
    const monitor = await new Redis(server.port, '127.0.0.1').monitor();
    const seen: string[][] = [];
    monitor.on('monitor', (_t: string, args: string[]) => seen.push(args));
    await sleep(50);
    await record(s, 'w1', ep(1).id, hashes, 31_250);
    await record(s, 'w2', ep(2).id, hashes.slice(0, 10), 31_250);
    await sleep(100);
    monitor.disconnect();
    await s.close();
    const pxbWrites = seen.filter((a) => a[0]!.toLowerCase() === 'hset' && a[1]!.endsWith(':pxb'));
    // Only ep(2)'s 10 new blocks: one multi-field HSET.
    expect(pxbWrites.length).toBe(1);
    expect(pxbWrites[0]!.length).toBe(2 + 2 * 10);
  });
});
