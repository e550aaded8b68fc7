// concurrency-detector in GIE's tokens mode, as Envoy sees it: the pool is
// saturated by prompt tokens awaiting prefill (the shared pendingPrefillTokens
// charges), not by the number of requests, and frees at the first response byte.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtProcExchange, RequestVerdict } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { concurrencyDetectorConfig, inferenceObjective } from '../../helpers/objects.js';
import { eventually } from '../../helpers/wait.js';

const objective = (name: string, priority: number) => inferenceObjective(name, priority);

// 2 endpoints x 10 tokens: one 400-character prompt (~100 tokens) saturates the
// pool in tokens mode, while in requests mode 1 request of 2 x 100 would not.
const config = concurrencyDetectorConfig('{ concurrencyMode: tokens, maxTokenConcurrency: 10 }');

let servers: FakeModel[] = [];
let epp: Epp;
const dir = tempDir('hermes-conc-tokens-');

function send(
  objectiveName: string,
  content: string,
): { exchange: ExtProcExchange; verdict: Promise<RequestVerdict> } {
  const exchange = epp.client.open({ requestBodyMode: 'BUFFERED', responseBodyMode: 'STREAMED' });
  const verdict = exchange.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/chat/completions'],
      ['content-type', 'application/json'],
      ['x-gateway-inference-objective', objectiveName],
    ],
    body: Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] })),
  });
  verdict.catch(() => undefined);
  return { exchange, verdict };
}

async function pending(): Promise<{ tokens: number; inFlight: number }> {
  const r = (await (await epp.adminGet('/state/endpoints')).json()) as {
    endpoints: Array<{ inFlight: number; pendingPrefillTokens: number }>;
  };
  let tokens = 0;
  let inFlight = 0;
  for (const e of r.endpoints) {
    tokens += e.pendingPrefillTokens;
    inFlight += e.inFlight;
  }
  return { tokens, inFlight };
}

beforeAll(async () => {
  servers = [await fakeModel(), await fakeModel()];
  const objectivesFile = join(dir, 'objectives.yaml');
  writeFileSync(objectivesFile, yaml.dump([objective('batch', -1), objective('standard', 0)]));
  epp = await startEpp({
    endpoints: endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))),
    config,
    args: ['--refresh-metrics-interval', '20ms', '--objectives-file', objectivesFile, '--log-level', 'warn'],
    client: { deadlineMs: 30_000 },
  });
  await epp.client.waitForReady();
});

afterAll(async () => {
  const code = await epp?.stop();
  await Promise.all(servers.map((s) => s.close()));
  expect(code).toBe(0);
});

describe('concurrency-detector, tokens mode', () => {
  test('prompt tokens awaiting prefill saturate the pool; the first response byte frees them', async () => {
    const held = send('standard', 'x'.repeat(400));
    expect((await held.verdict).kind).toBe('continue');
    const charged = await pending();
    expect(charged.inFlight).toBe(1);
    expect(charged.tokens).toBeGreaterThanOrEqual(100); // 400 bytes / 4, plus the chat framing
    // saturation = tokens / (10 x 2) >= 5: a sheddable request is shed.
    const shed = send('batch', 'y');
    const v = await shed.verdict;
    expect(v.kind).toBe('immediate');
    if (v.kind === 'immediate') expect(v.status).toBe(429);

    // The first response byte releases the prefill charge; the request stays in flight.
    await held.exchange.sendResponseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    let openStream!: () => void;
    const rest = new Promise<void>((resolve) => (openStream = resolve));
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      await rest;
    }
    const out = held.exchange.streamResponseBody(body());
    expect((await out.next()).done).toBe(false);
    await eventually(async () => (await pending()).tokens === 0, 5_000, 'prefill released');
    expect((await pending()).inFlight).toBe(1);

    const served = send('batch', 'y');
    expect((await served.verdict).kind).toBe('continue');
    served.exchange.cancel();
    openStream();
    held.exchange.cancel();
    await eventually(async () => (await pending()).inFlight === 0, 5_000, 'charges released');
  });
});
