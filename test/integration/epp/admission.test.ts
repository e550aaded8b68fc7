// GIE's legacy admission as Envoy sees it: a real EPP reading InferenceObjectives from
// --objectives-file and real /metrics from fake model servers. While the pool is
// saturated (utilization-detector: queue >= 5 everywhere), requests whose objective
// has a negative priority get 429 with retry-after at once; priority 0, 10 and unknown
// objectives are still routed. Objective changes in the file take effect without a restart.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { headerOf, type ExtProcClient, type RequestVerdict } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { spawnFn } from '../../helpers/spawn.js';
import { eventually } from '../../helpers/wait.js';
import { inferenceObjective } from '../../helpers/objects.js';

const objective = (name: string, priority?: number) => inferenceObjective(name, priority);

let servers: FakeModel[] = [];
let epp: Epp;
let client: ExtProcClient;
let objectivesFile: string;

async function send(objectiveName?: string): Promise<RequestVerdict> {
  const ex = client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
  const v = await ex.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/chat/completions'],
      ['content-type', 'application/json'],
      ...(objectiveName
        ? ([['x-gateway-inference-objective', objectiveName]] as Array<[string, string]>)
        : []),
    ],
    body: Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })),
  });
  // A routed request's charge is released when the gateway goes away.
  if (v.kind === 'continue') ex.cancel();
  return v;
}

const setQueues = (waiting: number) => {
  for (const s of servers) s.waiting = waiting;
};

beforeAll(async () => {
  servers = [await fakeModel({ waiting: 0, kv: 0.1 }), await fakeModel({ waiting: 0, kv: 0.1 })];
  const dir = tempDir('hermes-admission-');
  objectivesFile = join(dir, 'objectives.yaml');
  writeFileSync(
    objectivesFile,
    yaml.dump([objective('batch', -1), objective('chat', 10), objective('standard')]),
  );
  epp = await startEpp({
    endpoints: endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))),
    args: ['--refresh-metrics-interval', '20ms', '--objectives-file', objectivesFile, '--log-level', 'warn'],
    client: { deadlineMs: 10_000 },
  });
  client = epp.client;
  await client.waitForReady();
  await eventually(
    async () => (await epp.endpointStates()).every((e) => e.signals !== null && !e.signals.stale),
    5_000,
    'first scrape',
  );
});

afterAll(async () => {
  const code = await epp?.stop();
  await Promise.all(servers.map((s) => s.close()));
  expect(code).toBe(0);
});

describe('legacy admission (saturationDetector + InferenceObjective priority)', () => {
  test('the admin API lists the objectives in force', async () => {
    const r = await epp.adminGet('/state/objectives');
    expect(await r.json()).toEqual({
      objectives: [
        { name: 'batch', priority: -1 },
        { name: 'chat', priority: 10 },
        { name: 'standard', priority: 0 },
      ],
    });
  });

  test('an idle pool routes sheddable requests', async () => {
    setQueues(0);
    // Under a loaded machine a scrape may come late; signals past the staleness
    // threshold count as saturated (GIE's rule), so wait for a fresh reading.
    await eventually(
      async () => (await epp.endpointStates()).every((e) => e.signals !== null && !e.signals.stale),
      5_000,
      'fresh signals',
    );
    await eventually(
      async () => (await send('batch')).kind === 'continue',
      5_000,
      'a sheddable request routed',
    );
  });

  test('a saturated pool sheds a flood of priority -1 with 429 while priority 0, 10 and unknown are all routed', async () => {
    setQueues(6); // max(6/5, 0.1/0.8) = 1.2 on both endpoints
    await eventually(async () => (await send('batch')).kind === 'immediate', 5_000, 'saturation seen');
    const shedBefore = await epp.metric('hermes_requests_shed_total', 'reason="saturated"');
    const flood = await Promise.all(Array.from({ length: 60 }, () => send('batch')));
    const served = await Promise.all([
      ...Array.from({ length: 10 }, () => send('chat')),
      ...Array.from({ length: 10 }, () => send('standard')),
      ...Array.from({ length: 5 }, () => send('no-such-objective')),
      ...Array.from({ length: 5 }, () => send()),
    ]);
    for (const v of flood) {
      expect(v.kind).toBe('immediate');
      if (v.kind !== 'immediate') continue;
      expect(v.status).toBe(429);
      expect(headerOf(v.headers, 'retry-after')).toBe('1');
      expect(v.body.toString()).toContain('system saturated, sheddable request dropped');
    }
    expect(served.map((v) => v.kind)).toEqual(served.map(() => 'continue'));
    expect((await epp.metric('hermes_requests_shed_total', 'reason="saturated"')) - shedBefore).toBe(60);
    // Shedding is admission, not a scheduler failure.
    expect(await epp.metric('inference_extension_scheduler_attempts_total', 'status="failure"')).toBe(0);
    expect(await epp.metric('inference_objective_request_total', 'priority="-1"')).toBeGreaterThanOrEqual(61);
    expect(await epp.metric('inference_objective_request_total', 'priority="10"')).toBe(10);
    // Nothing shed or routed stays charged.
    await eventually(async () => (await epp.inFlight()) === 0, 5_000, 'charges released');
  });

  test('the pool draining below saturation admits sheddable requests again', async () => {
    setQueues(1);
    await eventually(async () => (await send('batch')).kind === 'continue', 5_000, 'admitted again');
  });

  test('the objectives file is re-read: a priority raised to 5 is no longer shed', async () => {
    setQueues(6);
    await eventually(async () => (await send('batch')).kind === 'immediate', 5_000, 'saturated again');
    writeFileSync(objectivesFile, yaml.dump([objective('batch', 5)]));
    await eventually(async () => (await send('batch')).kind === 'continue', 5_000, 'new priority in force');
  });
});

describe('bad objectives file', () => {
  test('stops start-up naming the file and the YAML path', async () => {
    const dir = tempDir('hermes-admission-bad-');
    const bad = join(dir, 'objectives.yaml');
    writeFileSync(
      bad,
      yaml.dump([
        objective('ok', 1),
        { ...objective('x'), spec: { priority: 'high', poolRef: { name: 'p' } } },
      ]),
    );
    const eps = join(dir, 'endpoints.yaml');
    writeFileSync(eps, endpointsYaml([{ name: 'a', port: servers[0]!.port }]));
    const proc = await spawnFn(
      'epp',
      ['--endpoints-file', eps, '--objectives-file', bad, '--grpc-port', '0'],
      {
        name: 'epp-bad-objectives',
      },
    );
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain(`${bad}: [1].spec.priority: expected an integer priority`);
  });
});
