// One contract for both index stores (memory and a real Redis), plus the
// Redis lookup's round trips measured through a latency-adding proxy.
import { createServer, Socket, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { freePort } from '../../helpers/ports.js';
import { MemoryIndexStore } from '../../../src/cacheindexer/memory-store.js';
import { RedisIndexStore } from '../../../src/cacheindexer/redis-store.js';
import type { BlockIndexStore } from '../../../src/cacheindexer/index-store.js';

let redis: RedisServer;
const stores: RedisIndexStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await redis?.stop();
});

async function redisStore(prefix: string, url = redis.url): Promise<RedisIndexStore> {
  const s = new RedisIndexStore({ url, prefix, ttlSeconds: 60 });
  await s.connect();
  stores.push(s);
  return s;
}

const keys = (n: number, tag = 'k') => Array.from({ length: n }, (_, i) => `${tag}${i}`);

const backends: Array<[string, () => Promise<BlockIndexStore>]> = [
  ['memory', async () => new MemoryIndexStore()],
  ['redis', () => redisStore(`t${Math.random().toString(36).slice(2)}`)],
];

describe.each(backends)('%s index store', (_name, make) => {
  it('answers leading runs per candidate through adds, removals and clears', async () => {
    const s = await make();
    const k = keys(5);
    await s.apply([
      { pod: 'a:1', add: k.slice(0, 4) },
      { pod: 'b:1', add: [k[0]!, k[1]!, k[3]!] },
    ]);
    expect(await s.lookup(k, ['a:1', 'b:1', 'c:1'])).toEqual([4, 2, 0]);
    await s.apply([{ pod: 'a:1', remove: [k[2]!] }]);
    expect(await s.lookup(k, ['a:1', 'b:1'])).toEqual([2, 2]);
    await s.apply([{ pod: 'b:1', clear: true, add: [k[0]!] }]);
    expect(await s.lookup(k, ['a:1', 'b:1'])).toEqual([2, 1]);
    await s.replacePod('a:1', k);
    expect(await s.lookup(k, ['b:1', 'a:1'])).toEqual([1, 5]);
    expect(await s.lookup([], ['a:1'])).toEqual([0]);
    expect(await s.lookup(k, [])).toEqual([]);
  });
});

/** A TCP proxy that delays every client->server chunk by `delayMs`: each round trip costs it once. */
function slowProxy(
  target: number,
  delayMs: number,
): Promise<{ server: Server; port: number; trips: () => number }> {
  let trips = 0;
  return new Promise((resolve) => {
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(target, '127.0.0.1');
      client.on('data', (d) => {
        trips++;
        setTimeout(() => upstream.write(d), delayMs);
      });
      upstream.on('data', (d) => client.write(d));
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ server, port, trips: () => trips });
    });
  });
}

describe('redis index store lookups', () => {
  it('cost one pipelined round trip whatever the prompt length', async () => {
    const direct = await redisStore('rt');
    const k = keys(500, 'rt');
    await direct.apply([
      { pod: 'a:1', add: k },
      { pod: 'b:1', add: k.slice(0, 250) },
    ]);
    const proxy = await slowProxy(redis.port, 40);
    try {
      const s = await redisStore('rt', `redis://127.0.0.1:${proxy.port}`);
      const before = proxy.trips();
      const t0 = performance.now();
      const runs = await s.lookup(k, ['a:1', 'b:1', 'c:1']);
      const ms = performance.now() - t0;
      expect(runs).toEqual([500, 250, 0]);
      // 500 blocks x 3 candidates: one write from the client, one 40 ms delay.
      expect(proxy.trips() - before).toBe(1);
      // Generous under a loaded machine; 500 sequential round trips would take 20 s.
      expect(ms).toBeLessThan(40 * 10);
      // For the record (report): the same lookup without the proxy.
      const t1 = performance.now();
      await direct.lookup(k, ['a:1', 'b:1', 'c:1']);
      console.log(
        `redis lookup, 500 blocks x 3 candidates: ${(performance.now() - t1).toFixed(2)} ms on loopback`,
      );
    } finally {
      proxy.server.close();
    }
  });

  it('fails fast while Redis is unreachable instead of queueing', async () => {
    const port = await freePort();
    const s = new RedisIndexStore({ url: `redis://127.0.0.1:${port}`, prefix: 'x' });
    stores.push(s);
    await expect(s.connect()).rejects.toThrow();
    const t0 = performance.now();
    await expect(s.lookup(['a'], ['p:1'])).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
