// Issue 17, defect 5: the endpoint list in Redis was trusted and never
// reconciled. Overwriting it sent requests to a non-pool address, and a
// replica with a file source wrote its set only when the file changed.
// Here two EPP replicas share Redis and one endpoints file; the list in
// Redis is overwritten with an outside server (and a pool pod relabelled).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeOnce } from './epp-harness.js';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { stopAllSpawned } from '../helpers/spawn.js';
import { eventually } from '../helpers/wait.js';

const key = (k: string) => `hermes:{default}:${k}`;
let redis: RedisServer;
let raw: Redis;
let pool: FakeModel[] = [];
let outside: FakeModel;
let replicas: Epp[] = [];

const storedIds = async () =>
  (JSON.parse((await raw.get(key('eps'))) ?? '[]') as Array<{ id: string }>).map((e) => e.id).sort();

const poolIds = () => pool.map((m) => m.id).sort();
const same = (a: string[], b: string[]) => a.join() === b.join();

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.port, '127.0.0.1');
  pool = await Promise.all([fakeModel(), fakeModel()]);
  outside = await fakeModel();
  const endpoints = endpointsYaml(pool.map((m, i) => ({ name: `pod${i}`, port: m.port })));
  const first = await startEpp({
    endpoints,
    args: [
      '--redis-url',
      redis.url,
      '--replica-id',
      'epp-0',
      '--discovery-lease-ttl',
      '1s',
      '--log-level',
      'warn',
    ],
  });
  const second = await startEpp({
    endpointsFile: first.endpointsFile,
    args: [
      '--redis-url',
      redis.url,
      '--replica-id',
      'epp-1',
      '--discovery-lease-ttl',
      '1s',
      '--log-level',
      'warn',
    ],
  });
  replicas = [first, second];
  await eventually(async () => same(await storedIds(), poolIds()), 10_000, 'the pool in Redis');
}, 60_000);

afterAll(async () => {
  raw?.disconnect();
  await Promise.all([...pool, outside].map((m) => m?.close()));
  await stopAllSpawned();
  await redis?.stop();
});

describe('Redis is a shared cache, not the authority on endpoints', () => {
  it('an overwritten endpoint list routes nowhere outside the pool, and is rewritten from discovery', async () => {
    const stored = JSON.parse((await raw.get(key('eps')))!) as Array<Record<string, unknown>>;
    const template = stored[0]!;
    const forged = [
      { ...template, id: outside.id, name: 'evil', port: outside.port },
      {
        ...template,
        id: outside.id.replace('127.0.0.1', '10.66.66.66'),
        address: '10.66.66.66',
        name: 'evil2',
      },
    ];
    await raw.set(key('eps'), JSON.stringify(forged));
    await raw.incr(key('epver'));
    const seen = new Map<string, number>();
    for (const r of replicas) {
      for (let i = 0; i < 5; i++) {
        const out = await routeOnce(r.client, `prompt ${i}`);
        const where = 'endpoint' in out ? out.endpoint : `status ${out.status}`;
        seen.set(where, (seen.get(where) ?? 0) + 1);
      }
    }
    expect(seen.has(outside.id)).toBe(false);
    expect([...seen.keys()].some((k) => k.includes('10.66.66.66'))).toBe(false);
    // No file was touched: the lease holder rewrites its discovered set within a lease period.
    await eventually(async () => same(await storedIds(), poolIds()), 5_000, 'the list rewritten');
    for (const r of replicas) {
      const out = await routeOnce(r.client, 'after the repair');
      expect('endpoint' in out && pool.some((m) => m.id === out.endpoint)).toBe(true);
    }
  }, 30_000);
});
