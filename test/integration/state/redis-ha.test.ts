// Redis Sentinel and Redis Cluster under failover, with two real EPP
// replicas under steady load (epp-pd-bucket: bucket loads and in-flight
// charges live in Redis). The primary holding the pool's state is killed
// (SIGKILL); Sentinel promotes the replica, the Cluster fails the shard over.
// Proved: no request fails, both replicas enter degraded mode and leave it
// (metric and /readyz), the shared state converges after the resync (open
// picks and endpoints in the promoted node), a pool's keys share one hash
// slot and several pools spread over the shards. The failover-to-recovery
// time is printed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  destinationOf,
  type ExtProcClient,
  type ExtProcExchange,
} from '../../../src/gateway/extproc-client.js';
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import type { StateSnapshot } from '../../../src/state/store.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { freePort } from '../../helpers/ports.js';
import {
  cli,
  startCluster,
  startSentinelSet,
  type RedisCluster,
  type SentinelSet,
} from '../../helpers/redis-ha.js';
import { promValue, REPO_ROOT } from '../../helpers/spawn.js';
import { eventually, sleep } from '../../helpers/wait.js';

const headers: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/chat/completions'],
  ['content-type', 'application/json'],
];
/** In-flight charges per PD pick: leader, prefill and decode. */
const CHARGES_PER_PICK = 3;

interface Routed {
  ex: ExtProcExchange;
}

async function route(client: ExtProcClient, content: string): Promise<Routed> {
  const ex = client.open();
  const b = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }));
  const v = await ex.sendRequest({ headers, body: b });
  if (v.kind !== 'continue') throw new Error(`request not routed: ${v.status} ${v.body.toString()}`);
  if (destinationOf(v).length !== 1) throw new Error('no destination');
  return { ex };
}

async function complete(r: Routed): Promise<void> {
  await r.ex.sendResponseHeaders([[':status', '200']], true);
  r.ex.end();
  await r.ex.done;
}

const inFlightTotal = (s: StateSnapshot) => [...s.inFlight.values()].reduce((a, b) => a + b, 0);

async function endpointsFile(): Promise<{ file: string; count: number }> {
  const eps = [];
  for (const g of ['g1', 'g2']) {
    for (const role of ['leader', 'prefill', 'prefill', 'decode', 'decode']) {
      eps.push({
        name: `${g}-${role}-${eps.length}`,
        port: await freePort(),
        labels: { 'openfuyao.com/pdRole': role, 'openfuyao.com/pdGroupID': g },
      });
    }
  }
  const file = join(tempDir(), 'endpoints.yaml');
  writeFileSync(file, endpointsYaml(eps));
  return { file, count: eps.length };
}

const startReplicas = (file: string, url: string) =>
  Promise.all(
    [0, 1].map((i) =>
      startEpp({
        name: `epp-${i}`,
        endpointsFile: file,
        args: [
          '--config-file',
          join(REPO_ROOT, 'examples/profiles/epp-pd-bucket.yaml'),
          '--grpc-health-port',
          '-1',
          '--redis-url',
          url,
          '--redis-timeout',
          '1s',
          '--log-level',
          'error',
        ],
        client: { deadlineMs: 20_000 },
      }),
    ),
  );

interface FailoverReport {
  routed: number;
  failed: string[];
  routedDuringFault: number;
  /** Kill -> both replicas out of degraded mode again (ms). */
  recoveryMs: number;
  sawDegradedMetric: boolean[];
  sawDegradedReadyz: boolean[];
  readyzNot200: number;
}

/**
 * Steady load through both replicas (one request every ~20 ms, every 5th
 * held open), `kill` after a second of it, until both replicas have left
 * degraded mode, plus a second.
 */
async function failover(replicas: Epp[], held: Routed[], kill: () => Promise<void>): Promise<FailoverReport> {
  const clients = replicas.map((r) => r.connect({ deadlineMs: 20_000 }));
  const report: FailoverReport = {
    routed: 0,
    failed: [],
    routedDuringFault: 0,
    recoveryMs: NaN,
    sawDegradedMetric: replicas.map(() => false),
    sawDegradedReadyz: replicas.map(() => false),
    readyzNot200: 0,
  };
  let stop = false;
  let killedAt = 0;
  let recoveredAt = 0;
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        const r = await route(clients[i % 2]!, `steady request ${i}`);
        report.routed++;
        if (killedAt && !recoveredAt) report.routedDuringFault++;
        if (i % 5 === 0) held.push(r);
        else await complete(r);
      } catch (e) {
        report.failed.push((e as Error).message);
      }
      await sleep(20);
    }
  })();
  const watch = (async () => {
    const left = replicas.map(() => false);
    while (!stop) {
      await Promise.all(
        replicas.map(async (r, k) => {
          const degraded = promValue(await r.metricsText(), 'hermes_state_store_degraded') === 1;
          const res = await fetch(`${r.adminUrl}/readyz`);
          if (res.status !== 200) report.readyzNot200++;
          const body = (await res.json()) as { state: { degraded: boolean } };
          if (!killedAt) return;
          if (degraded) report.sawDegradedMetric[k] = true;
          if (body.state.degraded) report.sawDegradedReadyz[k] = true;
          if (report.sawDegradedMetric[k] && !degraded && !body.state.degraded) left[k] = true;
        }),
      );
      if (killedAt && !recoveredAt && left.every(Boolean)) recoveredAt = Date.now();
      await sleep(25);
    }
  })();
  await sleep(1_000);
  killedAt = Date.now();
  await kill();
  const deadline = Date.now() + 45_000;
  while (!recoveredAt && Date.now() < deadline) await sleep(50);
  await sleep(1_000);
  stop = true;
  await Promise.all([load, watch]);
  for (const c of clients) c.close();
  report.recoveryMs = recoveredAt ? recoveredAt - killedAt : NaN;
  return report;
}

function expectClean(report: FailoverReport): void {
  expect(report.failed).toEqual([]);
  // Steady load before, during and after the fault (the count depends on the machine's load).
  expect(report.routed).toBeGreaterThanOrEqual(20);
  expect(report.routedDuringFault).toBeGreaterThan(0);
  expect(report.sawDegradedMetric).toEqual([true, true]);
  expect(report.sawDegradedReadyz).toEqual([true, true]);
  expect(report.readyzNot200).toBe(0); // degraded is reported, the replica stays ready
  expect(Number.isFinite(report.recoveryMs)).toBe(true);
}

describe('Redis Sentinel: primary + replica + 3 Sentinels', () => {
  let set: SentinelSet;
  let replicas: Epp[] = [];
  let reader: RedisStateStore;
  let count = 0;
  const held: Routed[] = [];

  beforeAll(async () => {
    set = await startSentinelSet();
    const eps = await endpointsFile();
    count = eps.count;
    replicas = await startReplicas(eps.file, set.url);
    reader = new RedisStateStore(createRedisClient(set.url, { commandTimeoutMs: 2_000 }), {
      pool: 'default',
    });
    await reader.connect();
  }, 60_000);

  afterAll(async () => {
    for (const r of held) r.ex.cancel();
    await reader?.close().catch(() => undefined);
    await Promise.all(replicas.map((r) => r.stop()));
    await set?.stop();
  }, 30_000);

  it('primary killed: Sentinel promotes the replica, 0 failed requests, degraded entered and left, state converges', async () => {
    const before = set.primary.port;
    expect(await set.currentPrimaryPort()).toBe(before);
    const report = await failover(replicas, held, () => set.primary.kill());
    console.info(
      `Sentinel failover: recovery ${report.recoveryMs} ms after the primary was killed; ` +
        `${report.routed} requests routed (${report.routedDuringFault} during the fault), ${report.failed.length} failed`,
    );
    expectClean(report);
    expect(await set.currentPrimaryPort()).toBe(set.replica.port);
    // The promoted node holds every open pick and the endpoint set (resync).
    await eventually(
      async () => inFlightTotal(await reader.readSnapshot({})) === held.length * CHARGES_PER_PICK,
      15_000,
      'open picks in the promoted primary',
    );
    expect((await reader.readSnapshot({})).endpoints.length).toBe(count);
    expect(await cli(set.replica.port, 'ROLE')).toMatch(/^master/);
    // Completing the held picks releases them in the promoted primary.
    await Promise.all(held.splice(0).map(complete));
    await eventually(async () => inFlightTotal(await reader.readSnapshot({})) === 0, 10_000, 'releases');
  }, 90_000);
});

describe('Redis Cluster: 3 primaries, 3 replicas', () => {
  let cluster: RedisCluster;
  let replicas: Epp[] = [];
  let reader: RedisStateStore;
  let count = 0;
  const held: Routed[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
    const eps = await endpointsFile();
    count = eps.count;
    replicas = await startReplicas(eps.file, cluster.url);
    reader = new RedisStateStore(createRedisClient(cluster.url, { commandTimeoutMs: 2_000 }), {
      pool: 'default',
    });
    await reader.connect();
  }, 90_000);

  afterAll(async () => {
    for (const r of held) r.ex.cancel();
    await reader?.close().catch(() => undefined);
    await Promise.all(replicas.map((r) => r.stop()));
    await cluster?.stop();
  }, 30_000);

  it("a pool's keys share one hash slot; several pools spread over the shards", async () => {
    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);
    // One pool name per shard, found by asking the cluster where names hash.
    const byPrimary = new Map<number, string>();
    for (let i = 0; byPrimary.size < 3 && i < 200; i++) {
      const pool = `pool-${i}`;
      const p = await cluster.primaryOfSlot(await cluster.keySlot(`hermes:{${pool}}:x`));
      if (!byPrimary.has(p)) byPrimary.set(p, pool);
    }
    expect(byPrimary.size).toBe(3);
    for (const pool of byPrimary.values()) {
      const store = new RedisStateStore(createRedisClient(cluster.url, { commandTimeoutMs: 2_000 }), {
        pool,
      });
      await store.connect();
      await store.replaceEndpoints([
        { id: '10.0.0.1:8000', name: 'a', address: '10.0.0.1', port: 8000, labels: {} },
      ]);
      await store.writeSignals('10.0.0.1:8000', {
        waitingQueueSize: 1,
        kvCacheUsage: 0.5,
        updatedAtMs: Date.now(),
      });
      const requestId = `r-${pool}`;
      await store.commitPick({
        chargeId: requestId,
        leaseMs: 60_000,
        charges: { inFlight: ['10.0.0.1:8000'] },
        decision: {
          requestId,
          atMs: Date.now(),
          model: 'm',
          profile: 'default',
          endpoint: '10.0.0.1:8000',
          promptTokens: 1,
          score: 1,
        },
      });
      await store.close();
    }
    // The EPP replicas have written the 'default' pool's state meanwhile.
    await route(replicas[0]!.client, 'one pick').then(complete);
    const slotsOf = new Map<string, Set<number>>();
    const holderOf = new Map<string, Set<number>>();
    for (const port of primaries) {
      const keys = (await cli(port, '--scan', '--pattern', 'hermes:*')).split('\n').filter(Boolean);
      for (const key of keys) {
        const pool = /^hermes:\{([^}]+)\}:/.exec(key)![1]!;
        if (!slotsOf.has(pool)) slotsOf.set(pool, new Set());
        if (!holderOf.has(pool)) holderOf.set(pool, new Set());
        slotsOf.get(pool)!.add(Number(await cli(port, 'CLUSTER', 'KEYSLOT', key)));
        holderOf.get(pool)!.add(port);
      }
    }
    for (const pool of [...byPrimary.values(), 'default']) {
      expect(slotsOf.get(pool)?.size, `${pool}: keys in one slot`).toBe(1);
      expect(holderOf.get(pool)?.size, `${pool}: keys on one primary`).toBe(1);
    }
    for (const [port, pool] of byPrimary) expect([...holderOf.get(pool)!]).toEqual([port]);
    console.info(
      `cluster key layout: ${[...holderOf].map(([p, h]) => `${p} -> :${[...h][0]} (slot ${[...slotsOf.get(p)!][0]})`).join(', ')}`,
    );
  }, 60_000);

  it('the primary holding the pool killed: its replica takes the shard, 0 failed requests, state converges', async () => {
    const slot = await cluster.keySlot('hermes:{default}:x');
    const victimPort = await cluster.primaryOfSlot(slot);
    const victim = cluster.nodes.find((n) => n.port === victimPort)!;
    const report = await failover(replicas, held, () => victim.kill());
    // The EPPs can leave degraded mode (a PING to any node, a resync) before
    // every node's view names the promoted replica: wait for that view.
    const promoted = await cluster.promotedPrimaryOfSlot(slot, victimPort);
    console.info(
      `Cluster failover: recovery ${report.recoveryMs} ms after the primary of slot ${slot} (:${victimPort}) was killed, ` +
        `now served by :${promoted}; ${report.routed} requests routed (${report.routedDuringFault} during the fault), ` +
        `${report.failed.length} failed`,
    );
    expectClean(report);
    expect(promoted).not.toBe(victimPort);
    await eventually(
      async () => inFlightTotal(await reader.readSnapshot({})) === held.length * CHARGES_PER_PICK,
      15_000,
      'open picks in the promoted primary',
    );
    expect((await reader.readSnapshot({})).endpoints.length).toBe(count);
    await Promise.all(held.splice(0).map(complete));
    await eventually(async () => inFlightTotal(await reader.readSnapshot({})) === 0, 10_000, 'releases');
  }, 90_000);
});
