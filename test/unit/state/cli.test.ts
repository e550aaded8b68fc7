// `hermes-router state`: the same tables from Redis and from an EPP admin API.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runState, VIEWS, type StateOptions } from '../../../src/admin/state-report.js';
import { buildAdminApp } from '../../../src/admin/app.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import type { StateStore } from '../../../src/state/store.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { commit, ep } from './contract.js';

let server: RedisServer;
let redis: RedisStateStore;
let memory: MemoryStateStore;
let http: ServerType;
let adminUrl: string;
const pool = `cli-${randomUUID().slice(0, 8)}`;

async function fill(s: StateStore): Promise<void> {
  await s.replaceEndpoints([
    ep(1, { 'openfuyao.com/pdRole': 'prefill', 'openfuyao.com/pdGroupID': 'g1', zone: 'a' }),
    ep(2),
  ]);
  await s.writeSignals(ep(1).id, {
    waitingQueueSize: 3,
    runningRequests: 5,
    kvCacheUsage: 0.42,
    updatedAtMs: Date.now(),
  });
  await s.commitPick(
    commit('req-1', {
      inFlight: [ep(1).id],
      bucket: { decayFactor: 0.9, items: [{ endpointId: ep(1).id, bucket: 'long', amount: 1234.5 }] },
      prefillTokens: [{ endpointId: ep(1).id, tokens: 800 }],
    }),
  );
}

const base = (o: Partial<StateOptions>): StateOptions => ({
  views: [...VIEWS],
  json: false,
  limit: 20,
  stalenessMs: 2_000,
  timeoutMs: 2_000,
  ...o,
});

async function capture(o: StateOptions): Promise<string> {
  let text = '';
  expect(await runState(o, (s) => (text += s))).toBe(0);
  return text;
}

beforeAll(async () => {
  server = await startRedis();
  redis = new RedisStateStore(createRedisClient(server.url), { pool });
  await redis.connect();
  await fill(redis);
  memory = new MemoryStateStore();
  await fill(memory);
  const app = buildAdminApp({
    store: memory,
    notReadyReasons: () => [],
    stalenessMs: 2_000,
    objectives: () => [
      { name: 'batch', priority: -1 },
      { name: 'chat', priority: 10 },
    ],
    flow: () => ({
      queued: 3,
      bytes: 300,
      requestTtlMs: 4000,
      maxRequests: 0,
      maxBytes: 0,
      waitTargetMs: 2000,
      closing: false,
      bands: [
        { priority: 10, length: 1, bytes: 100, maxRequests: 5000, maxBytes: 1e9, oldestWaitMs: 250 },
        { priority: 0, length: 2, bytes: 200, maxRequests: 50, maxBytes: 1e9, oldestWaitMs: 1500 },
      ],
    }),
  });
  http = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => http.once('listening', r));
  adminUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await redis?.close();
  await new Promise((r) => http?.close(r));
  await server?.stop();
});

describe('hermes-router state', () => {
  it('prints endpoints, signals, loads and decisions from Redis as tables', async () => {
    const text = await capture(base({ redisUrl: server.url, pool }));
    expect(text).toMatch(/Endpoints \(2\)/);
    expect(text).toMatch(/10\.0\.0\.1:8000\s+vllm-1\s+prefill\s+g1\s+1\s+zone=a/);
    expect(text).toMatch(/10\.0\.0\.1:8000\s+3\s+5\s+42\.0%\s+\d+ms\s+yes/);
    expect(text).toMatch(/10\.0\.0\.2:8000\s+-\s+-\s+-\s+never\s+no/);
    expect(text).toMatch(/Loads \(pool event 1;/);
    expect(text).toMatch(/10\.0\.0\.1:8000\s+1\s+0\s+1234\.5\s+1/);
    expect(text).toMatch(/req-1\s+m\s+p\s+10\.0\.0\.1:8000/);
  });

  it("shows an EPP's objectives and flow-control queue from its admin API, and says Redis has neither", async () => {
    const text = await capture(base({ adminUrl, views: ['objectives', 'queues'] }));
    expect(text).toMatch(/InferenceObjectives \(2;/);
    expect(text).toMatch(/chat\s+10/);
    expect(text).toMatch(
      /Flow-control queue \(this replica\): 3 queued, 300 bytes; TTL 4000 ms; max unlimited requests/,
    );
    expect(text).toMatch(/newcomers refused past 2000 ms of wait ahead/);
    expect(text).toMatch(/\n\s+0\s+2\s+200\s+50\s+1000000000\s+1\.5s/);
    await expect(runState(base({ redisUrl: server.url, pool, views: ['queues'] }))).rejects.toThrow(
      /--admin-url/,
    );
  });

  it('gives the same JSON from Redis and from an admin API', async () => {
    const fromRedis = JSON.parse(
      await capture(base({ redisUrl: server.url, pool, json: true, views: ['loads'] })),
    );
    const fromAdmin = JSON.parse(await capture(base({ adminUrl, json: true, views: ['loads'] })));
    expect(fromRedis).toEqual({
      poolEvent: 1,
      inFlight: { [ep(1).id]: 1 },
      bucketLoads: { [ep(1).id]: { short: 0, long: 1234.5, atEvent: 1 } },
    });
    expect(fromAdmin).toEqual(fromRedis);
    const endpoints = (o: Partial<StateOptions>) =>
      capture(base({ ...o, json: true, views: ['endpoints'] })).then(
        (t) => JSON.parse(t) as { endpoints: Array<{ id: string; pendingPrefillTokens: number }> },
      );
    for (const src of [{ redisUrl: server.url, pool }, { adminUrl }]) {
      const eps = (await endpoints(src)).endpoints;
      expect(eps.map((e) => [e.id, e.pendingPrefillTokens])).toEqual([
        [ep(1).id, 800],
        [ep(2).id, 0],
      ]);
    }
    const table = await capture(base({ adminUrl, views: ['decisions'] }));
    expect(table).toMatch(/Recent decisions \(1, newest first\)/);
  });

  it('fails clearly without a source or with an unreachable Redis', async () => {
    await expect(runState(base({}))).rejects.toThrow(/--redis-url/);
    await expect(runState(base({ redisUrl: server.url }))).rejects.toThrow(/--pool/);
    await expect(runState(base({ redisUrl: 'redis://127.0.0.1:1', pool, timeoutMs: 300 }))).rejects.toThrow(
      /cannot reach Redis/,
    );
  });
});
