// `npm run bench -- state [--quick] [--no-decisions]`
//
// Per-request cost of the shared state, memory vs Redis (a local
// redis-server this benchmark starts on loopback and stops):
//   one decision's state work = readSnapshot (endpoints, signals, in-flight,
//   bucket loads, prefix matches for 32 block hashes, cached indexer answer)
//   + commitPick (in-flight + lease + bucket charge + prefix record +
//   decision) + release.
// Each decision is timed on its own after a warm-up (one at a time: this is
// latency, not throughput); round trips are counted by the store.
// Throughput: decisions/s with 1 and 3 store clients on one Redis, each
// client in its own worker thread (its own connection and event loop, like a
// replica) running 16 decisions concurrently for a few seconds.
// Whole decisions: every example profile's decision (the scheduler
// benchmark's cell) at 32 endpoints and 8k tokens over memory and over
// createRedisStateStore (what `epp --redis-url` runs), alternating; the
// added p50 is checked against <= 500 us (`--no-decisions` skips it).
// Writes bench-results/state.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Endpoint, PickCharges } from '../../src/scheduling/types.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { createRedisStateStore } from '../../src/state/create-store.js';
import { createRedisClient, RedisStateStore } from '../../src/state/redis-store.js';
import type { ResilientStateStore } from '../../src/state/resilient-store.js';
import type { PickCommit, SnapshotQuery, StateStore } from '../../src/state/store.js';
import { startRedis } from '../helpers/redis-server.js';
import { benchCell } from './scheduler.js';
import { exampleProfileNames, loadExampleProfile } from './sim/configs.js';

const ENDPOINTS = 8;
const HASHES = 32;

export interface LatencyRow {
  /** 'redis+admission': each read also reserves flow control's admission place (StateStore AdmissionQuery). */
  backend: 'memory' | 'redis' | 'redis+admission';
  decisions: number;
  roundTripsPerDecision: number | null;
  p50Us: number;
  p99Us: number;
  readP50Us: number;
  commitP50Us: number;
  /** The first token's release of the prefill-token charge. */
  firstTokenP50Us: number;
  releaseP50Us: number;
}

interface ThroughputRow {
  clients: number;
  concurrencyPerClient: number;
  seconds: number;
  decisionsPerSec: number;
}

function endpoints(): Endpoint[] {
  return Array.from({ length: ENDPOINTS }, (_, i) => ({
    id: `10.1.0.${i + 1}:8000`,
    name: `vllm-${i}`,
    address: `10.1.0.${i + 1}`,
    port: 8000,
    labels: { 'openfuyao.com/pdRole': i % 2 ? 'decode' : 'prefill', 'openfuyao.com/pdGroupID': `g${i >> 1}` },
  }));
}

async function prepare(store: StateStore): Promise<void> {
  const eps = endpoints();
  await store.replaceEndpoints(eps);
  for (const [i, e] of eps.entries()) {
    await store.writeSignals(e.id, {
      waitingQueueSize: i,
      runningRequests: 2 * i,
      kvCacheUsage: i / ENDPOINTS,
      updatedAtMs: Date.now(),
    });
  }
}

/** One decision's state traffic; request `n` shares its first half of blocks with a few others. */
function request(n: number, tag: string): { query: SnapshotQuery; commit: PickCommit } {
  const eps = endpoints();
  const group = n % 50;
  // Block keys as the prompt hashing makes them (53-bit integers): a shared
  // half per group, then blocks unique to this request.
  let t = 0;
  for (let i = 0; i < tag.length; i++) t = (t * 31 + tag.charCodeAt(i)) % 1e6;
  const unique = t * 1e9 + n * HASHES;
  const hashes = Float64Array.from({ length: HASHES }, (_, i) =>
    i < HASHES / 2 ? 2 ** 52 + group * HASHES + i : 2 ** 51 + unique + i,
  );
  const pre = eps[(2 * n) % ENDPOINTS]!.id;
  const dec = eps[(2 * n + 1) % ENDPOINTS]!.id;
  const charges: PickCharges = {
    inFlight: [pre, dec],
    bucket: {
      decayFactor: 0.98,
      items: [
        { endpointId: pre, bucket: n % 3 ? 'short' : 'long', amount: 1000 + (n % 7) * 500 },
        { endpointId: dec, bucket: 'short', amount: 256 },
      ],
    },
    prefixRecord: { endpointId: pre, hashes },
    prefillTokens: [{ endpointId: pre, tokens: 1024 }],
  };
  const id = `${tag}${n}`;
  return {
    query: { prefixHashes: hashes, indexerCacheKey: `m|${group}`, bucketLoads: true },
    commit: {
      chargeId: id,
      charges,
      leaseMs: 60_000,
      prefixCapacityPerEndpoint: 31_250,
      decision: {
        requestId: id,
        atMs: Date.now(),
        model: 'm',
        profile: 'bench',
        endpoint: pre,
        prefill: pre,
        decode: dec,
        promptTokens: 2048,
        score: 1,
      },
    },
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function latency(
  store: StateStore,
  backend: LatencyRow['backend'],
  n: number,
): Promise<LatencyRow> {
  await prepare(store);
  const warm = Math.max(200, n / 10);
  const total: number[] = [];
  const read: number[] = [];
  const commit: number[] = [];
  const first: number[] = [];
  const rel: number[] = [];
  const rtStart = store instanceof RedisStateStore ? store.roundTrips : 0;
  const admission = backend === 'redis+admission';
  for (let i = 0; i < warm + n; i++) {
    const r = request(i, backend);
    if (admission) r.query.admission = { id: r.commit.chargeId, owner: 'bench', ttlMs: 2_000 };
    const t0 = performance.now();
    await store.readSnapshot(r.query);
    const t1 = performance.now();
    const receipt = await store.commitPick(r.commit);
    const t2 = performance.now();
    await store.releasePrefill(receipt);
    const tf = performance.now();
    await store.release(receipt);
    const t3 = performance.now();
    if (i >= warm) {
      total.push((t3 - t0) * 1000);
      read.push((t1 - t0) * 1000);
      commit.push((t2 - t1) * 1000);
      first.push((tf - t2) * 1000);
      rel.push((t3 - tf) * 1000);
    }
  }
  const rts = store instanceof RedisStateStore ? (store.roundTrips - rtStart) / (warm + n) : null;
  for (const a of [total, read, commit, first, rel]) a.sort((x, y) => x - y);
  return {
    backend,
    decisions: n,
    roundTripsPerDecision: rts,
    p50Us: Math.round(pct(total, 50)),
    p99Us: Math.round(pct(total, 99)),
    readP50Us: Math.round(pct(read, 50)),
    commitP50Us: Math.round(pct(commit, 50)),
    firstTokenP50Us: Math.round(pct(first, 50)),
    releaseP50Us: Math.round(pct(rel, 50)),
  };
}

/** Worker body: one client hammering the pool for `seconds`; posts its decision count. */
async function workerMain(): Promise<void> {
  const { url, pool, seconds, concurrency, tag } = workerData as {
    url: string;
    pool: string;
    seconds: number;
    concurrency: number;
    tag: string;
  };
  const store = new RedisStateStore(createRedisClient(url, { commandTimeoutMs: 5_000 }), { pool });
  await store.connect();
  let done = 0;
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = request(n++, tag);
        await store.readSnapshot(r.query);
        const receipt = await store.commitPick(r.commit);
        await store.releasePrefill(receipt);
        await store.release(receipt);
        done++;
      }
    }),
  );
  await store.close();
  parentPort!.postMessage(done);
}

async function throughput(
  url: string,
  clients: number,
  seconds: number,
  concurrency: number,
): Promise<ThroughputRow> {
  const pool = `bench-tp-${clients}`;
  const setup = new RedisStateStore(createRedisClient(url), { pool });
  await setup.connect();
  await prepare(setup);
  await setup.close();
  const counts = await Promise.all(
    Array.from(
      { length: clients },
      (_, k) =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), {
            workerData: { url, pool, seconds, concurrency, tag: `w${k}-` },
          });
          w.once('message', (m: number) => resolve(m));
          w.once('error', reject);
        }),
    ),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  return {
    clients,
    concurrencyPerClient: concurrency,
    seconds,
    decisionsPerSec: Math.round(total / seconds),
  };
}

export interface ProfileDecisionRow {
  profile: string;
  endpoints: number;
  promptTokens: number;
  memoryP50Us: number[];
  redisP50Us: number[];
  /** redis p50 - memory p50, per run (runs alternate memory and Redis). */
  addedP50Us: number[];
  /** Calls the resilient wrapper answered locally (should be 0). */
  fallbacks: number;
}

/**
 * Whole decisions per example profile (the scheduler benchmark's cell: the
 * real Director, shared-prefix bodies) over memory and over the production
 * Redis stack (createRedisStateStore), alternating, at one endpoint count.
 */
async function profileDecisions(
  url: string,
  endpoints: number,
  promptTokens: number,
  repeats: number,
  quick: boolean,
): Promise<ProfileDecisionRow[]> {
  const rows: ProfileDecisionRow[] = [];
  let seed = 500;
  let pools = 0;
  for (const name of exampleProfileNames()) {
    const outcome = loadExampleProfile(name);
    if (!outcome.ok) continue;
    const row: ProfileDecisionRow = {
      profile: name,
      endpoints,
      promptTokens,
      memoryP50Us: [],
      redisP50Us: [],
      addedP50Us: [],
      fallbacks: 0,
    };
    for (let k = 0; k < repeats; k++) {
      const s = seed++;
      const [warm, timed] = quick ? [30, 150] : [50, 300];
      const m = await benchCell(name, outcome.loaded, endpoints, promptTokens, warm, timed, s, 'cached');
      let store: ResilientStateStore | undefined;
      const r = await benchCell(
        name,
        outcome.loaded,
        endpoints,
        promptTokens,
        warm,
        timed,
        s,
        'cached',
        async () => {
          store = await createRedisStateStore({ redisUrl: url, pool: `bench-state-dec-${pools++}` });
          return store;
        },
      );
      row.fallbacks += store?.counters.fallbacks ?? 0;
      row.memoryP50Us.push(m.p50Us);
      row.redisP50Us.push(r.p50Us);
      row.addedP50Us.push(Math.round((r.p50Us - m.p50Us) * 10) / 10);
    }
    rows.push(row);
  }
  return rows;
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const n = quick ? 1_000 : 5_000;
  const seconds = quick ? 2 : 4;
  const rows: LatencyRow[] = [];
  rows.push(await latency(new MemoryStateStore(), 'memory', n));
  const server = await startRedis();
  let tp: ThroughputRow[] = [];
  let decisions: ProfileDecisionRow[] = [];
  try {
    const redis = new RedisStateStore(createRedisClient(server.url), { pool: 'bench-latency' });
    await redis.connect();
    rows.push(await latency(redis, 'redis', n));
    rows.push(await latency(redis, 'redis+admission', n));
    await redis.close();
    tp = [await throughput(server.url, 1, seconds, 16), await throughput(server.url, 3, seconds, 16)];
    if (!args.includes('--no-decisions'))
      decisions = await profileDecisions(server.url, 32, 8192, quick ? 1 : 2, quick);
  } finally {
    await server.stop();
  }
  const mem = rows[0]!;
  const red = rows[1]!;
  const addedP50Us = red.p50Us - mem.p50Us;
  console.log(
    `State cost per decision (${ENDPOINTS} endpoints, ${HASHES} prefix hashes; read + commit + release), loopback redis-server`,
  );
  console.table(rows);
  console.table(tp);
  const verdict = addedP50Us <= 500 ? 'meets' : 'MISSES';
  console.log(`Redis adds ${addedP50Us} µs p50 per decision over memory: ${verdict} the <= 500 µs target.`);
  if (decisions.length > 0) {
    console.log(
      `\nWhole decisions (Director + example profile, 32 endpoints, 8k-token shared-prefix prompts, ` +
        `indexer answer cached), memory vs createRedisStateStore, alternating; load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}:`,
    );
    for (const d of decisions) {
      const worst = Math.max(...d.addedP50Us);
      console.log(
        `  ${d.profile.padEnd(24)} memory p50 ${d.memoryP50Us.join(' / ')} us, redis p50 ${d.redisP50Us.join(' / ')} us, ` +
          `added ${d.addedP50Us.join(' / ')} us: ${worst <= 500 ? 'meets' : 'MISSES'} <= 500 us` +
          (d.fallbacks ? ` (${d.fallbacks} DEGRADED fallbacks)` : ''),
      );
    }
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(
    'bench-results/state.json',
    JSON.stringify(
      {
        endpoints: ENDPOINTS,
        prefixHashes: HASHES,
        latency: rows,
        throughput: tp,
        redisAddedP50Us: addedP50Us,
        targetAddedP50Us: 500,
        profileDecisions: decisions,
        cpu: (await import('node:os')).cpus()[0]?.model,
      },
      null,
      2,
    ) + '\n',
  );
  console.log('wrote bench-results/state.json');
}

if (!isMainThread) await workerMain();
