// Kubernetes discovery with shared state: every replica runs its own
// InferencePool watch (and scrapes/readiness from it), but only the holder of
// the `discovery` lease writes the endpoint set into Redis, under the pool's
// name as namespace. When the holder dies another replica takes over.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FakeApiServer, makePod, makePoolV1 } from '../../helpers/fake-apiserver.js';
import { startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { promValue } from '../../helpers/spawn.js';
import { eventually, sleep } from '../../helpers/wait.js';

const NS = 'ai';
const POOL = 'qwen-pool';
const LABELS = { app: 'qwen' };
const DISCOVERY_TTL_MS = 1_000;

let redis: RedisServer;
let raw: Redis;
let api: FakeApiServer;
let servers: FakeModel[] = [];
let replicas: Epp[] = [];

const leaderOf = async (r: Epp) => promValue(await r.metricsText(), 'hermes_discovery_publisher_leader');
const key = (k: string) => `hermes:{${POOL}}:${k}`;
const storedIds = async () =>
  (JSON.parse((await raw.get(key('eps'))) ?? '[]') as Array<{ id: string }>).map((e) => e.id).sort();

function setPorts(ports: number[]): void {
  api.upsertPool(makePoolV1({ name: POOL, namespace: NS, matchLabels: LABELS, ports }));
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.port, '127.0.0.1');
  servers = await Promise.all([0, 1, 2].map(() => fakeModel({ waiting: 0, kv: 0.1 })));
  api = new FakeApiServer();
  await api.start();
  // One pod on loopback; each target port is one endpoint (one fake model server).
  setPorts([servers[0]!.port, servers[1]!.port]);
  api.upsertPod(makePod({ name: 'qwen-0', namespace: NS, labels: LABELS, ip: '127.0.0.1' }));
  const kubeconfig = api.writeKubeconfig(tempDir(), NS);
  replicas = await Promise.all(
    [0, 1].map((i) =>
      startEpp({
        args: [
          '--pool-name',
          POOL,
          '--pool-namespace',
          NS,
          '--kubeconfig',
          kubeconfig,
          '--redis-url',
          redis.url,
          '--replica-id',
          `epp-${i}`,
          '--discovery-lease-ttl',
          `${DISCOVERY_TTL_MS}ms`,
          '--refresh-metrics-interval',
          '100ms',
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
  await api?.stop();
  raw?.disconnect();
  await redis?.stop();
}, 30_000);

describe('2 replicas, Kubernetes discovery, one Redis', () => {
  test('one replica publishes, into the pool-named namespace; every replica serves from its own watch', async () => {
    await eventually(
      async () => (await Promise.all(replicas.map(leaderOf))).reduce((a, b) => a! + b!, 0) === 1,
      5_000,
      'one discovery publisher',
    );
    const want = servers
      .slice(0, 2)
      .map((s) => s.id)
      .sort();
    await eventually(
      async () => JSON.stringify(await storedIds()) === JSON.stringify(want),
      5_000,
      'set in Redis',
    );
    expect(await raw.exists('hermes:{default}:eps')).toBe(0);
    for (const r of replicas) {
      expect((await r.endpointStates()).map((e) => e.id).sort()).toEqual(want);
      const rz = (await (await fetch(`${r.adminUrl}/readyz`)).json()) as {
        ready: boolean;
        state: { pool: string; discoveryPublisher: boolean };
      };
      expect(rz.ready).toBe(true);
      expect(rz.state.pool).toBe(POOL);
      expect(typeof rz.state.discoveryPublisher).toBe('boolean');
    }
  });

  test('a change is written once (by the holder), not once per replica', async () => {
    const before = Number(await raw.get(key('epver')));
    setPorts(servers.map((s) => s.port));
    const want = servers.map((s) => s.id).sort();
    await eventually(
      async () => JSON.stringify(await storedIds()) === JSON.stringify(want),
      5_000,
      'change in Redis',
    );
    // Both replicas saw the change (their own watches) ...
    for (const r of replicas) {
      await eventually(async () => (await r.endpointStates()).length === 3, 3_000, 'change seen');
    }
    // ... and, with the scrape leases, all three endpoints are scraped between them.
    await eventually(
      async () =>
        (
          await Promise.all(
            replicas.map(async (r) => promValue(await r.metricsText(), 'hermes_scrape_leases_held') ?? 0),
          )
        ).reduce((a, b) => a + b, 0) === 3,
      5_000,
      'scrape leases over the new set',
    );
    await sleep(300);
    expect(Number(await raw.get(key('epver'))) - before).toBe(1);
  });

  test('the publisher dies: the other replica takes over within ~the lease TTL and publishes changes', async () => {
    const flags = await Promise.all(replicas.map(leaderOf));
    const victim = replicas[flags.indexOf(1)]!;
    const survivor = replicas.find((r) => r !== victim)!;
    victim.proc.child.kill('SIGKILL');
    const t0 = Date.now();
    await eventually(async () => (await leaderOf(survivor)) === 1, DISCOVERY_TTL_MS + 3_000, 'takeover');
    const took = Date.now() - t0;
    console.info(`discovery publisher taken over after ${took} ms (TTL ${DISCOVERY_TTL_MS} ms)`);
    expect(took).toBeLessThan(DISCOVERY_TTL_MS + 1_500);
    setPorts([servers[2]!.port]);
    await eventually(
      async () => JSON.stringify(await storedIds()) === JSON.stringify([servers[2]!.id]),
      5_000,
      'the survivor publishes the change',
    );
  });
});
