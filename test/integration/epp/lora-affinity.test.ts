// LoRA affinity as Envoy sees it: two mock-vllm servers serving the same
// adapters with one adapter slot each (--max-loras 1); one of them runs a
// long sql-lora request sent to it directly. The EPP scrapes
// vllm:lora_requests_info from both, and a profile of lora-affinity-scorer +
// max-score-picker sends sql-lora requests to the server that runs it (1.0
// against a free slot's 0.8) and tweet-lora requests to the server with a
// free slot (0.8 against 0: its only slot is taken by another adapter).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { destinationOf, type RequestVerdict } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, type Epp } from '../../helpers/epp.js';
import { freePort } from '../../helpers/ports.js';
import { eventually } from '../../helpers/wait.js';
import { spawnFunction, type Spawned } from '../mock-vllm/spawn.js';

const CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: lora-affinity-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: lora-affinity-scorer
  - pluginRef: max-score-picker
`;

let servers: Spawned[] = [];
let epp: Epp;
let busy: AbortController;

async function mockVllm(): Promise<Spawned> {
  const port = await freePort();
  return spawnFunction(
    [
      'mock-vllm',
      '--port',
      String(port),
      '--model',
      'base',
      '--lora-modules',
      'sql-lora,tweet-lora',
      '--max-loras',
      '1',
      '--decode-ms-per-token',
      '50',
    ],
    port,
    '/health',
  );
}

beforeAll(async () => {
  servers = await Promise.all([mockVllm(), mockVllm()]);
  epp = await startEpp({
    endpoints: endpointsYaml(
      servers.map((s, i) => ({ name: `vllm-${i}`, port: Number(new URL(s.url).port) })),
    ),
    config: CONFIG,
    args: ['--refresh-metrics-interval', '20ms', '--log-level', 'warn'],
    client: { deadlineMs: 20_000 },
  });
  await epp.client.waitForReady();
  // Server 0 runs sql-lora for the whole test (about 60 s of tokens; aborted at the end).
  busy = new AbortController();
  void fetch(`${servers[0]!.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sql-lora', prompt: 'hold the adapter', max_tokens: 1200 }),
    signal: busy.signal,
  }).catch(() => undefined);
  await eventually(
    async () =>
      (await (await fetch(`${servers[0]!.url}/metrics`)).text()).includes('running_lora_adapters="sql-lora"'),
    10_000,
    'sql-lora running on server 0',
  );
});

afterAll(async () => {
  busy?.abort();
  const code = await epp?.stop();
  await Promise.all(servers.map((s) => s.stop()));
  expect(code).toBe(0);
});

async function route(model: string): Promise<string> {
  const ex = epp.client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
  const v: RequestVerdict = await ex.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/completions'],
      ['content-type', 'application/json'],
    ],
    body: Buffer.from(JSON.stringify({ model, prompt: 'hi', max_tokens: 4 })),
  });
  ex.cancel();
  if (v.kind !== 'continue')
    throw new Error(`expected a routed request, got ${v.status}: ${v.body.toString()}`);
  return destinationOf(v)[0]!;
}

describe('lora-affinity-scorer through the EPP (mock-vllm adapters)', () => {
  test('requests for a running adapter land on its holder; another adapter goes where a slot is free', async () => {
    const [holder, free] = servers.map((s) => `127.0.0.1:${new URL(s.url).port}`);
    // The EPP's scrape must have seen the adapter before its answers mean anything.
    await eventually(
      async () => (await route('sql-lora')) === holder,
      10_000,
      'sql-lora routed to its holder',
    );
    const sql = await Promise.all(Array.from({ length: 20 }, () => route('sql-lora')));
    const tweet = await Promise.all(Array.from({ length: 20 }, () => route('tweet-lora')));
    console.log(
      `[lora-affinity] sql-lora: ${sql.filter((d) => d === holder).length}/20 to its holder; ` +
        `tweet-lora: ${tweet.filter((d) => d === free).length}/20 to the server with a free slot`,
    );
    expect(sql).toEqual(sql.map(() => holder));
    expect(tweet).toEqual(tweet.map(() => free));
  });
});
