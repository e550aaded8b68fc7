// Flow control across replicas: two EPP processes on one redis-server judge
// saturation from the shared state (every replica's in-flight charges and
// the admissions not yet charged, counted atomically in Redis), so together
// they admit one pool's worth, not one each, even for a burst landing on
// both at the same instant. Queues stay per
// replica; how dispatches split between them as capacity frees is measured
// and printed, not asserted on timing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtProcClient, ExtProcExchange, RequestVerdict } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { eventually } from '../../helpers/wait.js';
import { concurrencyDetectorConfig } from '../../helpers/objects.js';

const MAX_CONCURRENCY = 4;
const ENDPOINTS = 2;
const POOL_CAPACITY = MAX_CONCURRENCY * ENDPOINTS;

const CONFIG = concurrencyDetectorConfig(
  `{ maxConcurrency: ${MAX_CONCURRENCY} }`,
  'flowControl:\n  defaultRequestTTL: 1h\n',
);

interface Sent {
  replica: number;
  exchange: ExtProcExchange;
  verdict: Promise<RequestVerdict>;
  kind?: string;
}

function send(client: ExtProcClient, replica: number): Sent {
  const exchange = client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
  const s: Sent = {
    replica,
    exchange,
    verdict: exchange.sendRequest({
      headers: [
        [':method', 'POST'],
        [':path', '/v1/chat/completions'],
        ['content-type', 'application/json'],
      ],
      body: Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })),
    }),
  };
  s.verdict.then(
    (v) => (s.kind = v.kind === 'immediate' ? String(v.status) : v.kind),
    () => (s.kind = 'error'),
  );
  return s;
}

let redis: RedisServer;
let servers: FakeModel[] = [];
let replicas: Epp[] = [];

beforeAll(async () => {
  redis = await startRedis();
  servers = await Promise.all(Array.from({ length: ENDPOINTS }, () => fakeModel()));
  const dir = tempDir('hermes-flow-replicas-');
  const endpointsFile = join(dir, 'endpoints.yaml');
  writeFileSync(endpointsFile, endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))));
  const objectives = join(dir, 'objectives.yaml');
  writeFileSync(objectives, yaml.dump([]));
  replicas = await Promise.all(
    [0, 1].map((i) =>
      startEpp({
        name: `epp-${i}`,
        endpointsFile,
        config: CONFIG,
        args: ['--redis-url', redis.url, '--refresh-metrics-interval', '20ms', '--log-level', 'warn'],
        client: { deadlineMs: 120_000 },
      }),
    ),
  );
  for (const r of replicas) await r.client.waitForReady();
});

afterAll(async () => {
  const codes = await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all(servers.map((s) => s.close()));
  await redis?.stop();
  expect(codes).toEqual(replicas.map(() => 0));
});

describe('flow control across replicas (shared Redis)', () => {
  test('two replicas admit one pool worth together; dispatch split as slots free is measured', async () => {
    const PER_REPLICA = 40;
    const sent: Sent[] = [];
    for (let k = 0; k < PER_REPLICA; k++) for (const i of [0, 1]) sent.push(send(replicas[i]!.client, i));
    const queued = async () =>
      (await Promise.all(replicas.map((r) => r.metric('hermes_flow_queue_length')))).reduce((a, b) => a + b);
    const admittedNow = () => sent.filter((s) => s.kind === 'continue');
    // A held-back pick withdraws its reservation at once, but another replica judging in
    // that instant still counts it, so a burst may first fill the pool short of the bound;
    // the queues' polls (20 ms) fill the rest.
    await eventually(
      async () =>
        admittedNow().length + (await queued()) === sent.length &&
        (await replicas[0]!.inFlight()) === POOL_CAPACITY,
      30_000,
      'every request admitted or queued, the pool full',
    );
    const admitted = admittedNow();
    const byReplica = [0, 1].map((i) => admitted.filter((s) => s.replica === i).length);
    console.log(
      `[flow-replicas] burst of ${sent.length} (2 replicas x ${PER_REPLICA}) on a pool of ${POOL_CAPACITY} slots: ` +
        `admitted ${admitted.length} (replica 0: ${byReplica[0]}, replica 1: ${byReplica[1]}), queued ${await queued()}`,
    );
    // The store's shared admission count: of two replicas judging at once the later sees
    // the earlier's pick, so together they never pass the bound (counted, not timed).
    expect(admitted.length).toBe(POOL_CAPACITY);
    expect(await replicas[0]!.inFlight()).toBe(POOL_CAPACITY);
    // Several poll periods later nothing more has been let through.
    await new Promise((r) => setTimeout(r, 200));
    expect(admittedNow().length).toBe(POOL_CAPACITY);
    const open = [...admitted];

    // Free one slot at a time, oldest first, and see which replica's queue fills it:
    // both race for it, and exactly one wins.
    const order: number[] = [];
    let localWins = 0;
    let overshoots = 0;
    let maxInFlight = 0;
    const ROUNDS = 40;
    for (let round = 0; round < ROUNDS; round++) {
      const freed = open.shift()!;
      const before = new Set(sent.filter((s) => s.kind === 'continue'));
      freed.exchange.cancel();
      const fresh = () => sent.filter((s) => s.kind === 'continue' && !before.has(s));
      await eventually(
        async () => {
          const f = await replicas[0]!.inFlight();
          return f === open.length + fresh().length && f >= POOL_CAPACITY;
        },
        10_000,
        `round ${round}: the freed slot refilled`,
      );
      const now = await replicas[0]!.inFlight();
      maxInFlight = Math.max(maxInFlight, now);
      if (now > POOL_CAPACITY) overshoots++;
      for (const n of fresh()) {
        order.push(n.replica);
        if (n.replica === freed.replica) localWins++;
        open.push(n);
      }
    }
    const share = [0, 1].map((i) => order.filter((r) => r === i).length);
    console.log(
      `[flow-replicas] ${ROUNDS} slots freed one at a time: ${order.length} dispatched, replica 0: ${share[0]}, ` +
        `replica 1: ${share[1]}; ${localWins} went to the replica whose response ended; ` +
        `${overshoots} rounds one over the bound (max in flight ${maxInFlight} of ${POOL_CAPACITY})`,
    );
    expect(overshoots).toBe(0);
    expect(maxInFlight).toBe(POOL_CAPACITY);
    expect(order.length).toBe(ROUNDS);
    for (const s of sent) s.exchange.cancel();
    await eventually(async () => (await replicas[0]!.inFlight()) === 0, 10_000, 'charges released');
  });
});
