// The contract suite against a real redis-server (bare store and behind the
// degraded-mode wrapper), plus what only Redis has: key layout and TTLs, one
// round trip per hot-path call, URL parsing.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStateStore } from '../../../src/state/create-store.js';
import {
  createRedisClient,
  parseRedisUrl,
  redactUrl,
  RedisStateStore,
} from '../../../src/state/redis-store.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { commit, ep, sleep, stateStoreContract } from './contract.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

async function redisStore(pool: string, decisionsLimit?: number): Promise<RedisStateStore> {
  const s = new RedisStateStore(createRedisClient(server.url), { pool, decisionsLimit });
  await s.connect();
  return s;
}

stateStoreContract({
  name: 'redis',
  async open(n, opts) {
    const pool = `t-${randomUUID()}`;
    return Promise.all(Array.from({ length: n }, () => redisStore(pool, opts?.decisionsLimit)));
  },
});

stateStoreContract({
  name: 'redis behind the degraded-mode wrapper',
  async open(n, opts) {
    const pool = `t-${randomUUID()}`;
    return Promise.all(
      Array.from({ length: n }, () =>
        createRedisStateStore({ redisUrl: server.url, pool, decisionsLimit: opts?.decisionsLimit }),
      ),
    );
  },
});

describe('Redis store specifics', () => {
  it('keeps every key of a pool under one hash-tagged prefix, with TTLs on what can go stale', async () => {
    const pool = `keys-${randomUUID().slice(0, 8)}`;
    const s = await redisStore(pool);
    const raw = new Redis(server.port, '127.0.0.1');
    try {
      await s.replaceEndpoints([ep(1)]);
      await s.writeSignals(ep(1).id, { waitingQueueSize: 1, updatedAtMs: Date.now() });
      await s.commitPick(
        commit('r1', {
          inFlight: [ep(1).id],
          bucket: { decayFactor: 0.9, items: [{ endpointId: ep(1).id, bucket: 'long', amount: 5 }] },
          prefixRecord: { endpointId: ep(1).id, hashes: [101] },
          prefillTokens: [{ endpointId: ep(1).id, tokens: 40 }],
        }),
      );
      await s.putIndexerAnswer('key', 'x', 5_000);
      await s.tryAcquireLease('scrape', 'me', 5_000);
      const keys = (await raw.keys('*')).filter((k) => k.includes(pool)).sort();
      const prefix = `hermes:{${pool}}:`;
      expect(keys.every((k) => k.startsWith(prefix))).toBe(true);
      expect(keys.map((k) => k.slice(prefix.length))).toEqual(
        [
          'decisions',
          'epver',
          'eps',
          'event',
          'inf',
          'ix:key',
          'lease:scrape',
          'leases',
          'load',
          'pfp',
          'pft',
          'picks',
          'pxb',
          'pxid',
          'pxl:10.0.0.1:8000',
          'pxseq',
          'sig',
        ].sort(),
      );
      for (const k of [
        'sig',
        'ix:key',
        'lease:scrape',
        'pxb',
        'pxid',
        'pxl:10.0.0.1:8000',
        'inf',
        'picks',
        'leases',
        'pft',
        'pfp',
      ]) {
        expect(await raw.pttl(prefix + k), k).toBeGreaterThan(0);
      }
      // Loads are decayed by events, not time; the pick lease lives in the ZSET.
      const lease = Number(await raw.zscore(prefix + 'leases', 'r1'));
      expect(lease).toBeGreaterThan(Date.now() + 50_000);
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('scripts validate before they write: a corrupt counter fails the call with nothing written', async () => {
    const pool = `bad-${randomUUID().slice(0, 8)}`;
    const s = await redisStore(pool);
    const raw = new Redis(server.port, '127.0.0.1');
    const P = `hermes:{${pool}}:`;
    const [e1, e2] = [ep(1).id, ep(2).id];
    const charges = {
      inFlight: [e1, e2],
      bucket: { decayFactor: 0.9, items: [{ endpointId: e1, bucket: 'long' as const, amount: 5 }] },
      prefillTokens: [{ endpointId: e1, tokens: 70 }],
      prefixRecord: { endpointId: e1, hashes: [102, 103] },
    };
    // The prefix record is its own script, sent behind the commit (checked below).
    const commitOnly = { ...charges, prefixRecord: undefined };
    const stored = async () => ({
      inf: await raw.hgetall(P + 'inf'),
      pft: await raw.hgetall(P + 'pft'),
      picks: await raw.hlen(P + 'picks'),
      leases: await raw.zcard(P + 'leases'),
      load: await raw.hgetall(P + 'load'),
      decisions: await raw.llen(P + 'decisions'),
      pxseq: await raw.get(P + 'pxseq'),
    });
    try {
      await s.replaceEndpoints([ep(1), ep(2)]);
      const kept = await s.commitPick(commit('kept', { inFlight: [e1] }));
      const clean = await stored();
      // Each corruption, one at a time: the call fails and every key is as it was.
      const corruptions: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
        ['event counter', () => raw.set(P + 'event', 'abc'), () => raw.del(P + 'event')],
        ['in-flight count', () => raw.hset(P + 'inf', e2, 'x'), () => raw.hdel(P + 'inf', e2)],
        ['prefill tokens', () => raw.hset(P + 'pft', e1, '1.5'), () => raw.hdel(P + 'pft', e1)],
        ['bucket load', () => raw.hset(P + 'load', e1, 'garbage'), () => raw.hdel(P + 'load', e1)],
      ];
      for (const [what, corrupt, repair] of corruptions) {
        await corrupt();
        const before = await stored();
        await expect(s.commitPick(commit(`c-${what}`, commitOnly)), what).rejects.toThrow();
        expect(await stored(), what).toEqual(before);
        await repair();
        expect(await stored(), what).toEqual(clean);
      }
      // The prefix record (not waited for) validates too: a corrupt sequence fails it, nothing written,
      // and the failure is reported; the commit itself stands.
      const failures: string[] = [];
      s.onBackgroundError = (op) => failures.push(op);
      await raw.set(P + 'pxseq', 'nan');
      const px = async () => ({ lru: await raw.zcard(P + `pxl:${e1}`), bitmaps: await raw.hlen(P + 'pxb') });
      const pxBefore = await px();
      const withRecord = await s.commitPick(commit('c-prefix', charges));
      await s.readSnapshot({});
      expect(failures).toEqual(['prefixRecord']);
      expect(await px()).toEqual(pxBefore);
      expect(await raw.get(P + 'pxseq')).toBe('nan');
      await s.release(withRecord);
      await raw.del(P + 'pxseq');
      s.onBackgroundError = undefined;
      // Release: a corrupt load of the pick's pod fails before the in-flight part is undone.
      const r = await s.commitPick(commit('r', charges));
      const charged = await stored();
      await raw.hset(P + 'load', e1, 'garbage');
      await expect(s.release(r)).rejects.toThrow(/corrupt/);
      await raw.hset(P + 'inf', e2, 'x');
      await raw.hset(P + 'load', e1, charged.load[e1]!);
      await expect(s.release(r)).rejects.toThrow(/corrupt/);
      await expect(s.releasePrefill(r)).resolves.toBeUndefined(); // prefill counts are intact
      await raw.hset(P + 'inf', e2, charged.inf[e2]!);
      // Repaired: the release undoes exactly the pick.
      await s.release(r);
      await s.release(kept);
      expect(await raw.hgetall(P + 'inf')).toEqual({});
      expect(await raw.hgetall(P + 'pft')).toEqual({});
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('one round trip per readSnapshot, commitPick and release; the prefix record rides behind the commit', async () => {
    const pool = `rt-${randomUUID().slice(0, 8)}`;
    const s = await redisStore(pool);
    await s.replaceEndpoints([ep(1), ep(2)]);
    const full = { prefixHashes: [104, 105, 106], indexerCacheKey: 'k', bucketLoads: true };
    const charges = {
      inFlight: [ep(1).id],
      bucket: { decayFactor: 0.9, items: [{ endpointId: ep(1).id, bucket: 'short' as const, amount: 3 }] },
      prefixRecord: { endpointId: ep(1).id, hashes: [104, 105, 106] },
    };
    // Warm up: the first call of each script on a connection sends its body (EVAL).
    await s.release(await s.commitPick(commit('warm', charges)));
    await s.readSnapshot(full);
    const monitor = await new Redis(server.port, '127.0.0.1').monitor();
    const seen: string[][] = [];
    monitor.on('monitor', (_t: string, args: string[]) => {
      if (args.includes(`hermes:{${pool}}:`)) seen.push(args);
    });
    await sleep(50);
    const before = s.roundTrips;
    for (let i = 0; i < 5; i++) {
      await s.readSnapshot(full);
      await s.release(await s.commitPick(commit(`r${i}`, charges)));
    }
    await sleep(100);
    monitor.disconnect();
    expect(s.roundTrips - before).toBe(15);
    expect(s.backgroundCommands).toBe(6);
    // Commands sent by the client (MONITOR also lists the scripts' inner calls, without our prefix as an argument).
    const top = seen.filter((a) => a[0]!.toLowerCase() === 'evalsha');
    expect(top.length).toBe(20);
    expect(seen.filter((a) => a[0]!.toLowerCase() === 'eval').length).toBe(0);
    await s.close();
  });

  it('a replica that dies with picks in flight leaks nothing past its lease', async () => {
    const pool = `die-${randomUUID().slice(0, 8)}`;
    const dying = await redisStore(pool);
    const survivor = await redisStore(pool);
    await survivor.replaceEndpoints([ep(1)]);
    for (let i = 0; i < 3; i++)
      await dying.commitPick(commit(`d${i}`, { inFlight: [ep(1).id] }, { leaseMs: 400 }));
    await survivor.commitPick(commit('alive', { inFlight: [ep(1).id] }, { leaseMs: 60_000 }));
    (dying.redis as Redis).disconnect(); // no release ever comes
    expect((await survivor.readSnapshot({})).inFlight.get(ep(1).id)).toBe(4);
    await sleep(600);
    expect((await survivor.readSnapshot({})).inFlight.get(ep(1).id)).toBe(1);
    await survivor.close();
  });

  it('parses standalone, TLS, Sentinel and Cluster URLs and redacts passwords', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6390/2')).toMatchObject({
      kind: 'standalone',
      tls: false,
      db: 2,
    });
    expect(parseRedisUrl('rediss://user:p%40ss@redis.example:6380')).toMatchObject({
      kind: 'standalone',
      tls: true,
      username: 'user',
      password: 'p@ss',
      hosts: [{ host: 'redis.example', port: 6380 }],
    });
    expect(parseRedisUrl('redis://secret@h')).toMatchObject({
      password: 'secret',
      hosts: [{ host: 'h', port: 6379 }],
    });
    expect(parseRedisUrl('redis+sentinel://:pw@s1:26379,s2:26379/mymaster/1')).toMatchObject({
      kind: 'sentinel',
      masterName: 'mymaster',
      db: 1,
      password: 'pw',
      hosts: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
    });
    expect(parseRedisUrl('rediss+cluster://n1:7000,n2:7001')).toMatchObject({ kind: 'cluster', tls: true });
    expect(() => parseRedisUrl('http://x')).toThrow(/invalid Redis URL/);
    expect(() => parseRedisUrl('redis+sentinel://s1:26379')).toThrow(/master name/);
    expect(() => parseRedisUrl('redis://a:1,b:2')).toThrow(/one host/);
    expect(() => parseRedisUrl('redis+cluster://a:1/0')).toThrow(/no databases/);
    expect(redactUrl('redis://u:secret@h:1')).toBe('redis://u:***@h:1');
    expect(() => new RedisStateStore(createRedisClient('redis://h'), { pool: 'a{b}' })).toThrow(/pool name/);
  });

  it('takes the password from REDIS_PASSWORD when the URL has none', async () => {
    // (The test helper pings without AUTH, so the password is set after start.)
    const secured = await startRedis();
    const admin = new Redis(secured.port, '127.0.0.1');
    await admin.config('SET', 'requirepass', 's3cret');
    admin.disconnect();
    try {
      const ok = await createRedisStateStore({
        redisUrl: secured.url,
        pool: 'auth',
        env: { REDIS_PASSWORD: 's3cret' },
      });
      expect(ok.health().degraded).toBe(false);
      await ok.replaceEndpoints([ep(1)]);
      await ok.close();
      const wrong = await createRedisStateStore({
        redisUrl: `redis://:nope@127.0.0.1:${secured.port}`,
        pool: 'auth',
      });
      expect(wrong.health().degraded).toBe(true); // a failing Redis never makes the store throw
      expect((await wrong.readSnapshot({})).endpoints).toEqual([]);
      await wrong.close();
    } finally {
      await secured.stop();
    }
  });
});
