// Flow control as Envoy sees it: a real EPP with a flowControl section, InferenceObjectives
// from --objectives-file and fake model servers. The concurrency-detector (maxConcurrency 2
// on 2 endpoints) makes the pool saturated exactly when 4 routed requests are open, so the
// test decides when capacity frees: cancelling a routed exchange ends its response and
// releases its charge, as Envoy does when a response ends.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  headerOf,
  type ExtProcClient,
  type ExtProcExchange,
  type RequestVerdict,
} from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { stopAllSpawned } from '../../helpers/spawn.js';
import { concurrencyDetectorConfig, inferenceObjective } from '../../helpers/objects.js';
import { eventually } from '../../helpers/wait.js';

const objective = (name: string, priority: number) => inferenceObjective(name, priority);

const flowConfig = (flowControl: string) =>
  concurrencyDetectorConfig('{ maxConcurrency: 2 }', `flowControl:\n${flowControl}\n`);

interface Sent {
  objective: string;
  exchange: ExtProcExchange;
  verdict: Promise<RequestVerdict>;
}

function sendVia(client: ExtProcClient, objectiveName: string): Sent {
  const exchange = client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
  const verdict = exchange.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/chat/completions'],
      ['content-type', 'application/json'],
      ['x-gateway-inference-objective', objectiveName],
    ],
    body: Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })),
  });
  // A verdict that never comes (cancelled exchange) must not be an unhandled rejection.
  verdict.catch(() => undefined);
  return { objective: objectiveName, exchange, verdict };
}

let servers: FakeModel[] = [];
let epp: Epp;
let objectivesFile: string;
const dir = tempDir('hermes-flow-');

async function startFlowEpp(flowControl: string, extra: string[] = []): Promise<Epp> {
  const e = await startEpp({
    endpoints: endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))),
    config: flowConfig(flowControl),
    args: [
      '--refresh-metrics-interval',
      '20ms',
      '--objectives-file',
      objectivesFile,
      '--log-level',
      'warn',
      ...extra,
    ],
    client: { deadlineMs: 30_000 },
  });
  await e.client.waitForReady();
  return e;
}

/** Opens `n` routed requests (priority 0) that hold the pool's 4 slots until cancelled. */
async function hold(e: Epp, n = 4): Promise<Sent[]> {
  const held = Array.from({ length: n }, () => sendVia(e.client, 'standard'));
  for (const h of held) expect((await h.verdict).kind).toBe('continue');
  return held;
}

beforeAll(async () => {
  servers = [await fakeModel(), await fakeModel()];
  objectivesFile = join(dir, 'objectives.yaml');
  writeFileSync(
    objectivesFile,
    yaml.dump([objective('batch', -1), objective('standard', 0), objective('chat', 10)]),
  );
  // A long TTL: the pool here is stuck on purpose, which the wait prediction would call slow.
  epp = await startFlowEpp(
    ['  defaultRequestTTL: 120s', '  priorityBands:', '  - { priority: 0, maxRequests: 20 }'].join('\n'),
  );
});

afterAll(async () => {
  const code = await epp?.stop();
  await Promise.all(servers.map((s) => s.close()));
  // An EPP a failed test started (the SIGTERM one) must not outlive the file.
  await stopAllSpawned();
  expect(code).toBe(0);
});

describe('flow control (flowControl section, saturated pool)', () => {
  test('a flood of priority -1 is shed with 429 while every priority 0 and 10 request is served, 10 first', async () => {
    const held = await hold(epp);
    const flood = Array.from({ length: 60 }, () => sendVia(epp.client, 'batch'));
    for (const f of flood) {
      const v = await f.verdict;
      expect(v.kind).toBe('immediate');
      if (v.kind !== 'immediate') continue;
      expect(v.status).toBe(429);
      expect(headerOf(v.headers, 'retry-after')).toBe('1');
      expect(v.body.toString()).toContain('system saturated, sheddable request dropped');
    }
    // Queued in arrival order: 10 standard, then 10 chat.
    const standard = Array.from({ length: 10 }, () => sendVia(epp.client, 'standard'));
    await eventually(
      async () => (await epp.metric('hermes_flow_queue_length', 'priority="0"')) === 10,
      5_000,
      'standard queued',
    );
    const chat = Array.from({ length: 10 }, () => sendVia(epp.client, 'chat'));
    await eventually(
      async () => (await epp.metric('hermes_flow_queue_length', 'priority="10"')) === 10,
      5_000,
      'chat queued',
    );
    const served: string[] = [];
    const all = [...standard, ...chat].map((s) =>
      s.verdict.then((v) => {
        served.push(`${s.objective}:${v.kind}`);
        // The response ends at once: its slot goes to the next in the queue.
        s.exchange.cancel();
      }),
    );
    for (const h of held) h.exchange.cancel();
    await Promise.all(all);
    expect(served).toEqual([
      ...Array.from({ length: 10 }, () => 'chat:continue'),
      ...Array.from({ length: 10 }, () => 'standard:continue'),
    ]);
    expect(await epp.metric('hermes_flow_dispatched_total', 'priority="10"')).toBe(10);
    expect(
      await epp.metric('hermes_flow_queue_wait_seconds_count', 'priority="10"', 'outcome="dispatched"'),
    ).toBe(10);
    await eventually(async () => (await epp.inFlight()) === 0, 5_000, 'charges released');
    expect(await epp.metric('hermes_flow_queue_length')).toBe(0);
  });

  test('queued requests whose client goes away leave the queue and free their place', async () => {
    const held = await hold(epp);
    const queued = Array.from({ length: 5 }, () => sendVia(epp.client, 'standard'));
    await eventually(
      async () => (await epp.metric('hermes_flow_queue_length', 'priority="0"')) === 5,
      5_000,
      'queued',
    );
    const state = (await (await epp.adminGet('/state/queues')).json()) as {
      enabled: boolean;
      queued: number;
      bands: Array<{ priority: number; length: number }>;
    };
    expect(state.enabled).toBe(true);
    expect(state.queued).toBe(5);
    expect(state.bands.find((b) => b.priority === 0)?.length).toBe(5);
    const before = await epp.metric('hermes_flow_rejected_total', 'reason="cancelled"');
    for (const q of queued.slice(0, 3)) q.exchange.cancel();
    await eventually(
      async () => (await epp.metric('hermes_flow_queue_length', 'priority="0"')) === 2,
      5_000,
      'cancelled ones gone',
    );
    expect((await epp.metric('hermes_flow_rejected_total', 'reason="cancelled"')) - before).toBe(3);
    // Nothing was charged for them: still exactly the 4 held.
    expect(await epp.inFlight()).toBe(4);
    held[0]!.exchange.cancel();
    held[1]!.exchange.cancel();
    for (const q of queued.slice(3)) expect((await q.verdict).kind).toBe('continue');
    expect(await epp.metric('hermes_flow_queue_length')).toBe(0);
    for (const s of [...held.slice(2), ...queued.slice(3)]) s.exchange.cancel();
    await eventually(async () => (await epp.inFlight()) === 0, 5_000, 'charges released');
  });

  test('a queued request the pool cannot serve within defaultRequestTTL is refused 429 before it, not evicted 503', async () => {
    const short = await startFlowEpp('  defaultRequestTTL: 1500ms');
    const held = await hold(short);
    const v = await sendVia(short.client, 'standard').verdict;
    // Nothing frees: the last second's dispatch rate predicts the wait past the TTL, and
    // the queue answers now (the TTL's 503 is left for a prediction that fails).
    expect(v.kind).toBe('immediate');
    if (v.kind === 'immediate') {
      expect(v.status).toBe(429);
      expect(headerOf(v.headers, 'retry-after')).toBe('1');
      expect(v.body.toString()).toContain('past the 1500 ms TTL');
    }
    expect(await short.metric('hermes_flow_rejected_total', 'reason="capacity"')).toBe(1);
    expect(await short.metric('hermes_flow_rejected_total', 'reason="ttl"')).toBe(0);
    for (const h of held) h.exchange.cancel();
    await eventually(async () => (await short.inFlight()) === 0, 5_000, 'charges released');
    expect(await short.stop()).toBe(0);
  });

  test('past the band bound (maxRequests 20) requests are refused with 429 at once', async () => {
    const held = await hold(epp);
    const sent = Array.from({ length: 30 }, () => sendVia(epp.client, 'standard'));
    const refused = sent.slice(20);
    for (const r of refused) {
      const v = await r.verdict;
      expect(v.kind === 'immediate' && v.status).toBe(429);
      expect(v.kind === 'immediate' && headerOf(v.headers, 'retry-after')).toBe('1');
    }
    expect(await epp.metric('hermes_flow_queue_length', 'priority="0"')).toBe(20);
    // Let the 20 through: each answer ends at once.
    const served = sent.slice(0, 20).map((s) =>
      s.verdict.then((v) => {
        s.exchange.cancel();
        return v.kind;
      }),
    );
    for (const h of held) h.exchange.cancel();
    expect(await Promise.all(served)).toEqual(served.map(() => 'continue'));
    await eventually(async () => (await epp.inFlight()) === 0, 5_000, 'charges released');
  });
});

describe('flow control at shutdown', () => {
  test('SIGTERM with 500 queued requests answers every one (served or 429) before exit', async () => {
    const e = await startFlowEpp('  defaultRequestTTL: 1h', ['--drain-timeout', '5s']);
    const held = await hold(e);
    const queued = Array.from({ length: 500 }, () => sendVia(e.client, 'standard'));
    await eventually(
      async () => (await e.metric('hermes_flow_queue_length', 'priority="0"')) === 500,
      10_000,
      '500 queued',
    );
    const exited = e.proc.stop('SIGTERM', 15_000);
    const answers = await Promise.all(
      queued.map((q) =>
        q.verdict.then(
          (v) => (v.kind === 'immediate' ? `${v.status}` : v.kind),
          (err: Error) => `error: ${err.message}`,
        ),
      ),
    );
    // The held responses end, as the gateway would finish them during the drain.
    for (const h of held) h.exchange.cancel();
    const counts: Record<string, number> = {};
    for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
    expect(Object.keys(counts).every((k) => k === '429' || k === 'continue')).toBe(true);
    expect((counts['429'] ?? 0) + (counts['continue'] ?? 0)).toBe(500);
    expect(await exited).toBe(0);
    await e.stop();
  });
});
