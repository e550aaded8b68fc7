// Three `hermes-router epp` processes share one redis-server and schedule as
// one: interleaved ext_proc requests leave exactly the shared state one
// replica would have computed, concurrent picks spread like one replica's,
// Redis can die mid-stream, and a killed replica's charges expire.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  destinationOf,
  headerOf,
  type ExtProcClient,
  type ExtProcExchange,
} from '../../../src/gateway/extproc-client.js';
import { parseOpenAIRequest } from '../../../src/request/openai.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import { decayed, type PickReceipt, type StateSnapshot } from '../../../src/state/store.js';
import { freePort } from '../../helpers/ports.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { promValue, REPO_ROOT } from '../../helpers/spawn.js';
import { eventually, sleep } from '../../helpers/wait.js';

const PREFILL = 'x-openfuyao-prefill-pod-address-port';
const DECODE = 'x-openfuyao-decode-pod-address-port';
const D = 0.99; // scorer-pd-bucket's default decay factor
const SEPARATE = 200; // and its default bucket separation (tokens)
const LEASE_MS = 2_000;

const headers: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/chat/completions'],
  [':authority', 'gateway'],
  ['content-type', 'application/json'],
];

function body(content: string): Buffer {
  return Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }));
}

function promptTokens(b: Buffer): number {
  return parseOpenAIRequest('/v1/chat/completions', b.toString(), { 'content-type': 'application/json' }, 'x')
    .request.promptTokens;
}

interface Routed {
  ex: ExtProcExchange;
  /** Index of the replica that routed it. */
  owner: number;
  leader: string;
  prefill?: string;
  decode?: string;
  tokens: number;
}

async function route(client: ExtProcClient, content: string, owner = 0): Promise<Routed> {
  const ex = client.open();
  const b = body(content);
  const v = await ex.sendRequest({ headers, body: b });
  if (v.kind !== 'continue') throw new Error(`request not routed: ${v.status} ${v.body.toString()}`);
  const [leader] = destinationOf(v);
  if (!leader) throw new Error('no destination');
  return {
    ex,
    owner,
    leader,
    prefill: headerOf(v.headers, PREFILL),
    decode: headerOf(v.headers, DECODE),
    tokens: promptTokens(b),
  };
}

async function complete(r: Routed): Promise<void> {
  await r.ex.sendResponseHeaders([[':status', '200']], true);
  r.ex.end();
  await r.ex.done;
}

/** Sum of a snapshot's in-flight counts. */
const inFlightTotal = (s: StateSnapshot) => [...s.inFlight.values()].reduce((a, b) => a + b, 0);

function eppArgs(profile: string, redisUrl?: string): string[] {
  const args = [
    '--config-file',
    join(REPO_ROOT, 'examples/profiles', profile),
    '--grpc-health-port',
    '-1',
    '--refresh-metrics-interval',
    '200ms',
    '--lease',
    `${LEASE_MS}ms`,
    '--log-level',
    'error',
  ];
  // A generous command timeout: a loaded CI machine must not push replicas into
  // degraded mode (tested on purpose below by stopping Redis).
  if (redisUrl) args.push('--redis-url', redisUrl, '--redis-timeout', '2s');
  return args;
}

describe('3 EPP replicas on one Redis (epp-pd-bucket)', () => {
  let redis: RedisServer;
  let replicas: Epp[] = [];
  let single: Epp | undefined;
  let clients: ExtProcClient[] = [];
  let reader: RedisStateStore;
  const open: Routed[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const dir = tempDir();
    const file = join(dir, 'endpoints.yaml');
    // Two PD groups (leader, 2 prefill, 2 decode) on ports nobody serves: this profile needs no signals.
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
    writeFileSync(file, endpointsYaml(eps));
    replicas = await Promise.all(
      [0, 1, 2].map(() => startEpp({ endpointsFile: file, args: eppArgs('epp-pd-bucket.yaml', redis.url) })),
    );
    single = await startEpp({ endpointsFile: file, args: eppArgs('epp-pd-bucket.yaml') });
    clients = replicas.map((r) => r.connect({ deadlineMs: 20_000 }));
    reader = new RedisStateStore(createRedisClient(redis.url, { commandTimeoutMs: 2_000 }), {
      pool: 'default',
    });
    await reader.connect();
  }, 60_000);

  afterAll(async () => {
    for (const r of open) r.ex.cancel();
    for (const c of clients) c.close();
    await reader?.close().catch(() => undefined);
    await Promise.all([...replicas, ...(single ? [single] : [])].map((r) => r.stop()));
    await redis?.stop();
  }, 30_000);

  it('interleaved requests leave exactly the state one replica computes for the same sequence', async () => {
    const routed: Routed[] = [];
    const done = new Set<number>();
    for (let i = 0; i < 36; i++) {
      // Long (> 200 tokens) and short prompts, round-robin over the replicas.
      const text = (i % 3 === 0 ? 'long context '.repeat(90) : 'hi ') + `request ${i}`;
      routed.push(await route(clients[i % 3]!, text, i % 3));
      // Interleave completions: request i-1 ends after request i was routed, for every third i.
      if (i % 3 === 1) {
        await complete(routed[i - 1]!);
        done.add(i - 1);
      }
    }
    // One replica's bookkeeping of the same picks, in the same order.
    const ref = new MemoryStateStore();
    const receipts: PickReceipt[] = [];
    for (const [i, r] of routed.entries()) {
      expect(r.prefill && r.decode, `request ${i} got PD headers`).toBeTruthy();
      const b = r.tokens > SEPARATE ? ('long' as const) : ('short' as const);
      receipts.push(
        await ref.commitPick({
          chargeId: `r${i}`,
          leaseMs: 60_000,
          charges: {
            inFlight: [r.leader, r.prefill!, r.decode!],
            bucket: {
              decayFactor: D,
              items: [
                { endpointId: r.prefill!, bucket: b, amount: Math.max(1, r.tokens) },
                { endpointId: r.decode!, bucket: b, amount: Math.max(1, r.tokens) },
              ],
            },
          },
          decision: {
            requestId: `r${i}`,
            atMs: 0,
            model: 'm',
            profile: 'default',
            endpoint: r.leader,
            promptTokens: r.tokens,
            score: 0,
          },
        }),
      );
    }
    for (const i of done) await ref.release(receipts[i]!);
    const want = await ref.readSnapshot({ bucketLoads: true });
    // Releases are sent when a stream ends, asynchronously: wait for them to land.
    let got = await reader.readSnapshot({ bucketLoads: true });
    await eventually(
      async () => {
        got = await reader.readSnapshot({ bucketLoads: true });
        return inFlightTotal(got) === inFlightTotal(want);
      },
      5_000,
      'releases in Redis',
    );
    expect(got.poolEvent).toBe(want.poolEvent);
    expect(Object.fromEntries(got.inFlight)).toEqual(Object.fromEntries(want.inFlight));
    const ids = new Set([...got.bucketLoads.keys(), ...want.bucketLoads.keys()]);
    for (const id of ids) {
      const g = got.bucketLoads.get(id) ?? { short: 0, long: 0, atEvent: 0 };
      const w = want.bucketLoads.get(id) ?? { short: 0, long: 0, atEvent: 0 };
      for (const k of ['short', 'long'] as const) {
        const gv = decayed(g[k], g.atEvent, got.poolEvent, D);
        const wv = decayed(w[k], w.atEvent, want.poolEvent, D);
        expect(Math.abs(gv - wv), `${id} ${k}: ${gv} vs ${wv}`).toBeLessThan(1e-6 * Math.max(1, wv));
      }
    }
    for (const [i, r] of routed.entries()) if (!done.has(i)) open.push(r);
  });

  it('concurrent picks from 3 replicas spread like one replica', async () => {
    const spread = async (targets: ExtProcClient[], n: number) => {
      const rs = await Promise.all(
        Array.from({ length: n }, (_, i) => route(targets[i % targets.length]!, `hi concurrent ${i}`)),
      );
      const perPod = new Map<string, number>();
      for (const r of rs) perPod.set(r.prefill!, (perPod.get(r.prefill!) ?? 0) + 1);
      await Promise.all(rs.map(complete));
      return Math.max(...perPod.values());
    };
    const singleClient = single!.connect({ deadlineMs: 20_000 });
    try {
      const n = 24; // 4 prefill pods: 6 each when perfectly spread
      const one = await spread([singleClient], n);
      const three = await spread(clients, n);
      console.info(
        `busiest prefill pod of ${n} concurrent picks: one replica ${one}, three replicas ${three}`,
      );
      expect(three).toBeLessThanOrEqual(Math.max(one + 3, 9));
      expect(three).toBeLessThan(n / 2); // no herding onto one pod
    } finally {
      singleClient.close();
    }
  });

  it('Redis dies mid-stream: every request still gets an endpoint, state converges after restart', async () => {
    const series = async (r: Epp, name: string) => promValue(await r.metricsText(), name);
    const degradedSeries = (r: Epp) => series(r, 'hermes_state_store_degraded');
    const readyz = async (r: Epp) => {
      const res = await fetch(`${r.adminUrl}/readyz`);
      return {
        status: res.status,
        body: (await res.json()) as { ready: boolean; state: { degraded: boolean } },
      };
    };
    for (const r of replicas) expect(await degradedSeries(r)).toBe(0);
    const entriesBefore = await Promise.all(
      replicas.map((r) => series(r, 'hermes_state_store_degraded_entries_total')),
    );
    const held: Routed[] = [];
    let routedCount = 0;
    for (let i = 0; i < 30; i++) {
      if (i === 8) await redis.stop();
      if (i === 12) {
        // Every replica noticed (the connection closed), reports it, and stays ready.
        for (const r of replicas) {
          expect(await degradedSeries(r)).toBe(1);
          const rz = await readyz(r);
          expect(rz.status).toBe(200);
          expect(rz.body.ready).toBe(true);
          expect(rz.body.state.degraded).toBe(true);
        }
      }
      if (i === 20) await redis.restart();
      const r = await route(clients[i % 3]!, `steady ${i}`);
      routedCount++;
      if (i % 4 === 0) held.push(r);
      else await complete(r);
      await sleep(20);
    }
    expect(routedCount).toBe(30);
    // Every replica resynchronises: the open picks (the ones held from the earlier tests too) are in Redis again.
    const expected = (open.length + held.length) * 3;
    await eventually(
      async () => inFlightTotal(await reader.readSnapshot({})) === expected,
      10_000,
      'in-flight counts after Redis came back',
    );
    await eventually(
      async () => (await Promise.all(replicas.map(degradedSeries))).every((v) => v === 0),
      10_000,
      'the degraded gauge to fall on every replica',
    );
    for (const [k, r] of replicas.entries()) {
      expect(await series(r, 'hermes_state_store_degraded_entries_total')).toBeGreaterThan(
        entriesBefore[k] ?? 0,
      );
      expect(await series(r, 'hermes_state_store_resyncs_total')).toBeGreaterThanOrEqual(1);
      expect((await readyz(r)).body.state.degraded).toBe(false);
    }
    const snap = await reader.readSnapshot({});
    expect(snap.endpoints.length).toBe(10); // re-published after the restart emptied Redis
    await Promise.all(held.map(complete));
    await eventually(
      async () => inFlightTotal(await reader.readSnapshot({})) === open.length * 3,
      5_000,
      'releases',
    );
  });

  it('a replica killed with requests in flight leaks nothing past its lease', async () => {
    const victim = replicas[2]!;
    const theirs = await Promise.all([0, 1, 2, 3].map((i) => route(clients[2]!, `doomed ${i}`, 2)));
    open.push(await route(clients[0]!, 'survivor', 0));
    const before = inFlightTotal(await reader.readSnapshot({}));
    expect(before).toBe(open.length * 3 + theirs.length * 3);
    // Everything replica 2 had open dies with it (the earlier tests' picks too).
    const surviving = open.filter((r) => r.owner !== 2).length * 3;
    victim.proc.child.kill('SIGKILL');
    const t0 = Date.now();
    for (const r of theirs) r.ex.cancel();
    await eventually(
      async () => inFlightTotal(await reader.readSnapshot({})) === surviving,
      LEASE_MS + 3_000,
      "the dead replica's charges to expire",
    );
    expect(Date.now() - t0).toBeLessThan(LEASE_MS + 3_000);
    // The survivors keep renewing theirs: still charged well after one lease.
    await sleep(LEASE_MS + 500);
    expect(inFlightTotal(await reader.readSnapshot({}))).toBe(surviving);
    for (const r of theirs) void r.ex.done.catch(() => undefined);
  });
});

describe('3 EPP replicas on one Redis (KV/queue profile epp-gie-default)', () => {
  let redis: RedisServer;
  let servers: FakeModel[] = [];
  let replicas: Epp[] = [];
  let clients: ExtProcClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    servers = await Promise.all([0, 1, 2, 3].map(() => fakeModel({ waiting: 2, kv: 0.3 })));
    const file = join(tempDir(), 'endpoints.yaml');
    writeFileSync(file, endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))));
    replicas = await Promise.all(
      [0, 1, 2].map(() =>
        startEpp({ endpointsFile: file, args: eppArgs('epp-gie-default.yaml', redis.url) }),
      ),
    );
    clients = replicas.map((r) => r.connect({ deadlineMs: 20_000 }));
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await Promise.all(servers.map((s) => s.close()));
    await redis?.stop();
  }, 30_000);

  it('shares the prefix index and in-flight counts across replicas', async () => {
    const raw = new Redis(redis.port, '127.0.0.1');
    const reader = new RedisStateStore(createRedisClient(redis.url), { pool: 'default' });
    await reader.connect();
    try {
      // Wait until some replica's scrape reached Redis (queue/KV scorers see the same signals everywhere).
      await eventually(
        async () => (await reader.readSnapshot({})).signals.size === 4,
        10_000,
        'signals in Redis',
      );
      const held: Routed[] = [];
      for (let k = 0; k < 4; k++) {
        const prompt = `shared system prompt ${k} `.repeat(60);
        const first = await route(clients[0]!, prompt + 'question A');
        // The same long prefix through the two other replicas lands where replica 0 put it.
        const second = await route(clients[1]!, prompt + 'question B');
        const third = await route(clients[2]!, prompt + 'question C');
        expect(second.leader).toBe(first.leader);
        expect(third.leader).toBe(first.leader);
        held.push(first, second, third);
      }
      expect(await raw.hlen('hermes:{default}:pxb')).toBeGreaterThan(0);
      const snap = await reader.readSnapshot({});
      const byEndpoint = new Map<string, number>();
      for (const r of held) byEndpoint.set(r.leader, (byEndpoint.get(r.leader) ?? 0) + 1);
      expect(Object.fromEntries(snap.inFlight)).toEqual(Object.fromEntries(byEndpoint));
      await Promise.all(held.map(complete));
      await eventually(async () => (await reader.readSnapshot({})).inFlight.size === 0, 5_000, 'releases');
    } finally {
      raw.disconnect();
      await reader.close();
    }
  });
});
