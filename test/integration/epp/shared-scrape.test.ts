// Shared scraping: EPP replicas on one Redis scrape each model server once
// per interval between them (per-endpoint leases), not once each, and when
// the replica scraping an endpoint dies another one takes over within about
// the lease TTL. Also: --state-pool sets the Redis namespace in
// --endpoints-file mode.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { promValue } from '../../helpers/spawn.js';
import { eventually, sleep } from '../../helpers/wait.js';

const INTERVAL_MS = 100;
const LEASE_TTL_MS = 1_000;

let redis: RedisServer;
let raw: Redis;
let servers: FakeModel[] = [];
let replicas: Epp[] = [];

const held = async (r: Epp) => promValue(await r.metricsText(), 'hermes_scrape_leases_held') ?? -1;

/** Scrapes per server during `ms`. */
async function hitsDuring(ms: number): Promise<number[]> {
  for (const s of servers) s.scrapes = 0;
  await sleep(ms);
  return servers.map((s) => s.scrapes);
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
  servers = await Promise.all([0, 1].map(() => fakeModel({ waiting: 1, kv: 0.2 })));
  const file = join(tempDir(), 'endpoints.yaml');
  writeFileSync(file, endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))));
  replicas = await Promise.all(
    [0, 1, 2].map((i) =>
      startEpp({
        endpointsFile: file,
        args: [
          '--redis-url',
          redis.url,
          '--state-pool',
          'shared-scrape',
          '--replica-id',
          `replica-${i}`,
          '--refresh-metrics-interval',
          `${INTERVAL_MS}ms`,
          '--scrape-lease-ttl',
          `${LEASE_TTL_MS}ms`,
          '--grpc-health-port',
          '-1',
          '--log-level',
          'warn',
        ],
      }),
    ),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all(servers.map((s) => s.close()));
  raw?.disconnect();
  await redis?.stop();
}, 30_000);

describe('3 replicas, one Redis, 2 model servers', () => {
  test('each endpoint is scraped by one replica: the total rate is one replica’s', async () => {
    // Every endpoint's lease is held by exactly one replica.
    await eventually(
      async () => (await Promise.all(replicas.map(held))).reduce((a, b) => a + b, 0) === servers.length,
      5_000,
      'scrape leases settled',
    );
    const perServer = await hitsDuring(2_000);
    const oneReplica = 2_000 / INTERVAL_MS; // ~20 scrapes per server in 2 s
    console.info(
      `scrapes per server in 2 s with 3 replicas: ${perServer.join(', ')} (one replica alone: ~${oneReplica})`,
    );
    for (const n of perServer) {
      expect(n).toBeGreaterThan(oneReplica * 0.5);
      // Three uncoordinated replicas would make ~3x; allow one handover's overlap.
      expect(n).toBeLessThan(oneReplica * 1.5);
    }
    // The holder is recorded in Redis under the pool given by --state-pool.
    const holders = await Promise.all(
      servers.map((s) => raw.get(`hermes:{shared-scrape}:lease:scrape:${s.id}`)),
    );
    for (const h of holders) expect(h).toMatch(/^replica-[0-2]$/);
    expect(await raw.exists('hermes:{default}:eps')).toBe(0);
    // Every replica sees fresh signals, scraped or not.
    for (const r of replicas) {
      const states = await r.endpointStates();
      expect(states.map((e) => e.signals?.stale)).toEqual([false, false]);
    }
  });

  test('killing the replica that scrapes an endpoint: another takes over within ~the lease TTL', async () => {
    const holderOf = async (i: number) => raw.get(`hermes:{shared-scrape}:lease:scrape:${servers[i]!.id}`);
    const victimName = (await holderOf(0))!;
    const victim = replicas[Number(victimName.slice('replica-'.length))]!;
    victim.proc.child.kill('SIGKILL');
    const t0 = Date.now();
    await eventually(
      async () => {
        const h = await holderOf(0);
        return h !== null && h !== victimName;
      },
      LEASE_TTL_MS + 3_000,
      'another replica to take the scrape lease',
    );
    const takeoverMs = Date.now() - t0;
    console.info(
      `scrape lease taken over ${takeoverMs} ms after the holder was killed (TTL ${LEASE_TTL_MS} ms)`,
    );
    expect(takeoverMs).toBeLessThan(LEASE_TTL_MS + 1_500);
    const survivors = replicas.filter((r) => r !== victim);
    await eventually(
      async () => (await Promise.all(survivors.map(held))).reduce((a, b) => a + b, 0) === servers.length,
      3_000,
      'survivors hold every lease',
    );
    const perServer = await hitsDuring(1_500);
    const oneReplica = 1_500 / INTERVAL_MS;
    for (const n of perServer) {
      expect(n).toBeGreaterThan(oneReplica * 0.5);
      expect(n).toBeLessThan(oneReplica * 1.5);
    }
    const acquired = await Promise.all(
      survivors.map(
        async (r) =>
          promValue(await r.metricsText(), 'hermes_scrape_lease_changes_total{change="acquired"}') ?? 0,
      ),
    );
    // Each survivor's first leases plus the victim's taken over.
    expect(acquired.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(servers.length);
  });

  test('a replica stopped gracefully hands its leases over at once', async () => {
    const live = replicas.filter((r) => r.proc.alive());
    expect(live.length).toBe(2);
    const counts = await Promise.all(live.map(held));
    const leaving = live[counts[0]! >= counts[1]! ? 0 : 1]!;
    const staying = live.find((r) => r !== leaving)!;
    expect(await held(leaving)).toBeGreaterThan(0);
    const t0 = Date.now();
    expect(await leaving.stop()).toBe(0);
    await eventually(async () => (await held(staying)) === servers.length, LEASE_TTL_MS + 2_000, 'handover');
    // Released on shutdown: taken at the survivor's next renewal, not after a whole TTL.
    expect(Date.now() - t0).toBeLessThan(LEASE_TTL_MS + 1_000);
  });
});
