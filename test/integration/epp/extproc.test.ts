// The EPP as Envoy sees it: a real `hermes-router epp` process, fake vLLM
// /metrics servers, and the project's ext_proc client speaking the real
// protos in FULL_DUPLEX_STREAMED and BUFFERED order.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  destinationOf,
  ExtProcClient,
  headerOf,
  type ContinueVerdict,
  type HeaderList,
} from '../../../src/gateway/extproc-client.js';
import { fromStruct } from '../../../src/extproc/messages.js';
import { endpointsYaml, startEpp, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { promValue } from '../../helpers/spawn.js';
import { eventually } from '../../helpers/wait.js';

const CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 3}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: max-score-picker
`;

let servers: FakeModel[] = [];
let epp: Epp;
let client: ExtProcClient;
let endpointsFile: string;

const chatHeaders = (extra: HeaderList = []): HeaderList => [
  [':method', 'POST'],
  [':path', '/v1/chat/completions'],
  [':authority', 'gateway'],
  ['content-type', 'application/json'],
  ...extra,
];

function chatBody(content: string, stream = false): Buffer {
  const body: Record<string, unknown> = { model: 'm', messages: [{ role: 'user', content }] };
  if (stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return Buffer.from(JSON.stringify(body));
}

function cont(v: Awaited<ReturnType<ReturnType<ExtProcClient['open']>['sendRequest']>>): ContinueVerdict {
  if (v.kind !== 'continue')
    throw new Error(`expected a routed request, got ${v.status}: ${v.body.toString()}`);
  return v;
}

beforeAll(async () => {
  // Queue depths 0 < 4 < 8 with equal KV usage: the order of the picks is known.
  servers = [
    await fakeModel({ waiting: 0, kv: 0.2 }),
    await fakeModel({ waiting: 4, kv: 0.2 }),
    await fakeModel({ waiting: 8, kv: 0.2 }),
  ];
  epp = await startEpp({
    endpoints: endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))),
    config: CONFIG,
    args: ['--refresh-metrics-interval', '20ms', '--max-request-body', '300Ki', '--log-level', 'warn'],
    client: { deadlineMs: 10_000 },
  });
  endpointsFile = epp.endpointsFile!;
  client = epp.client;
  await client.waitForReady();
  // Signals scraped from every server before the first pick.
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

describe('request phase', () => {
  test('FULL_DUPLEX_STREAMED: header reply deferred to body end, destination in header and envoy.lb metadata, body intact', async () => {
    const body = chatBody('héllo wörld — 日本語 '.repeat(20));
    // Split inside a multi-byte character: byte 1 of "é" ends chunk 1.
    const cut = body.indexOf(Buffer.from('é')) + 1;
    const chunks = [body.subarray(0, cut), body.subarray(cut, cut + 7), body.subarray(cut + 7)];
    const ex = client.open({ requestBodyMode: 'FULL_DUPLEX_STREAMED' });
    const v = cont(
      await ex.sendRequest({
        headers: chatHeaders([
          ['x-request-id', 'rid-fd-1'],
          // A client trying to choose its own backend.
          ['x-gateway-destination-endpoint', '10.9.9.9:8000'],
          ['x-openfuyao-prefill-pod-address-port', '10.9.9.9:8001'],
        ]),
        body: chunks,
      }),
    );
    const ids = servers.map((s) => s.id);
    // Exact reply sequence: one header reply, then the body streamed back.
    expect(v.replies.map((r) => r.response)).toEqual(['request_headers', 'request_body']);
    expect(v.clearRouteCache).toBe(true);
    const dest = ids.join(',');
    expect(headerOf(v.headers, 'x-gateway-destination-endpoint')).toBe(dest);
    expect(fromStruct(v.replies[0]!.dynamic_metadata)).toEqual({
      'envoy.lb': { 'x-gateway-destination-endpoint': dest },
    });
    expect(destinationOf(v)).toEqual(ids);
    expect(v.body.equals(body)).toBe(true);
    expect(headerOf(v.headers, 'content-length')).toBe(String(body.length));
    expect(headerOf(v.headers, 'x-request-id')).toBe('rid-fd-1');
    expect(headerOf(v.headers, 'x-openfuyao-prefill-pod-address-port')).toBeUndefined();
    expect(v.headers.filter(([k]) => k === 'x-gateway-destination-endpoint')).toHaveLength(1);
    // Finish the exchange so the charge is released.
    await ex.sendResponseHeaders([
      [':status', '200'],
      ['content-type', 'application/json'],
    ]);
    const out: Buffer[] = [];
    for await (const c of ex.streamResponseBody([
      Buffer.from('{"object":"chat.completion","usage":{"prompt_tokens":3}}'),
    ]))
      out.push(c);
    expect(Buffer.concat(out).toString()).toContain('chat.completion');
    ex.end();
    await ex.done;
  });

  test('FULL_DUPLEX_STREAMED: a 220 KB body comes back in 62,000-byte chunks, eos on the last', async () => {
    const body = chatBody('x'.repeat(220_000));
    const chunks: Buffer[] = [];
    for (let o = 0; o < body.length; o += 16_384) chunks.push(body.subarray(o, o + 16_384));
    const ex = client.open();
    const v = cont(await ex.sendRequest({ headers: chatHeaders(), body: chunks }));
    const sizes = v.replies
      .filter((r) => r.response === 'request_body')
      .map((r) => r.request_body!.response!.body_mutation!.streamed_response!);
    expect(sizes.map((s) => s.body!.length)).toEqual([62_000, 62_000, 62_000, body.length - 186_000]);
    expect(sizes.map((s) => s.end_of_stream === true)).toEqual([false, false, false, true]);
    expect(v.body.equals(body)).toBe(true);
    expect(headerOf(v.headers, 'content-length')).toBe(String(body.length));
    // A request id was generated and sent upstream.
    expect(headerOf(v.headers, 'x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    ex.cancel();
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'release after cancel');
  });

  test('BUFFERED: headers answered at once with continue, decision on the body reply', async () => {
    const body = chatBody('buffered request');
    const ex = client.open({ requestBodyMode: 'BUFFERED', responseBodyMode: 'STREAMED' });
    const v = cont(await ex.sendRequest({ headers: chatHeaders([['x-request-id', 'rid-buf']]), body }));
    expect(v.replies.map((r) => r.response)).toEqual(['request_headers', 'request_body']);
    expect(v.replies[0]!.request_headers?.response?.header_mutation).toBeUndefined();
    expect(v.replies[0]!.dynamic_metadata).toBeUndefined();
    expect(headerOf(v.headers, 'x-gateway-destination-endpoint')).toBe(servers.map((s) => s.id).join(','));
    expect(fromStruct(v.replies[1]!.dynamic_metadata)['envoy.lb']).toEqual({
      'x-gateway-destination-endpoint': servers.map((s) => s.id).join(','),
    });
    expect(v.body.equals(body)).toBe(true);
    // STREAMED response: each chunk answered with "continue" and passed on unchanged.
    await ex.sendResponseHeaders([[':status', '200']]);
    const out: Buffer[] = [];
    for await (const c of ex.streamResponseBody([Buffer.from('{"a":'), Buffer.from('1}')])) out.push(c);
    expect(Buffer.concat(out).toString()).toBe('{"a":1}');
    ex.end();
    await ex.done;
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'release');
  });

  test('header-only request (GET) is routed at header time', async () => {
    const ex = client.open();
    const v = cont(
      await ex.sendRequest({
        headers: [
          [':method', 'GET'],
          [':path', '/v1/models'],
        ],
      }),
    );
    expect(v.replies.map((r) => r.response)).toEqual(['request_headers']);
    expect(destinationOf(v)).toEqual(servers.map((s) => s.id));
    expect(headerOf(v.headers, 'content-length')).toBeUndefined();
    await ex.sendResponseHeaders([[':status', '200']], true);
    ex.end();
    await ex.done;
  });
});

describe('subset hint (metadata_context envoy.lb.subset_hint)', () => {
  const SUBSET = 'x-gateway-destination-endpoint-subset';
  const routeWith = async (
    value: unknown,
    mode: 'FULL_DUPLEX_STREAMED' | 'BUFFERED' = 'FULL_DUPLEX_STREAMED',
    extra?: Record<string, unknown>,
  ) => {
    const ex = client.open({ requestBodyMode: mode });
    const v = await ex.sendRequest({
      headers: chatHeaders(),
      body: chatBody('subset please'),
      metadata: {
        'envoy.lb.subset_hint': value === undefined ? { ...extra } : { [SUBSET]: value, ...extra },
      },
    });
    if (v.kind === 'continue') ex.cancel();
    return v;
  };
  const destOf = async (value: unknown, mode?: 'FULL_DUPLEX_STREAMED' | 'BUFFERED') =>
    destinationOf(cont(await routeWith(value, mode)));
  const statusOf = async (value: unknown) => {
    const v = await routeWith(value);
    return v.kind === 'immediate' ? v.status : 200;
  };

  test('a list of ip:port restricts the candidates (both body modes)', async () => {
    const ids = servers.map((s) => s.id);
    expect(await destOf([ids[2]])).toEqual([ids[2]]);
    // Without the hint server 0 (empty queue) wins; the subset excludes it.
    expect(await destOf([ids[2], ids[1]])).toEqual([ids[1], ids[2]]);
    expect(await destOf([ids[1]], 'BUFFERED')).toEqual([ids[1]]);
    // Non-string items are ignored.
    expect(await destOf([7, ids[2], null])).toEqual([ids[2]]);
  });

  test('one comma-separated string, and a bare ip matching any port', async () => {
    const ids = servers.map((s) => s.id);
    expect(await destOf(`${ids[2]}, ${ids[1]}`)).toEqual([ids[1], ids[2]]);
    expect(await destOf('127.0.0.1')).toEqual(ids);
    expect(await destOf(['127.0.0.1'])).toEqual(ids);
  });

  test('absent key -> whole pool; present but empty or matching nothing -> 503', async () => {
    const ids = servers.map((s) => s.id);
    expect(destinationOf(cont(await routeWith(undefined, 'FULL_DUPLEX_STREAMED', { other: 'x' })))).toEqual(
      ids,
    );
    expect(await statusOf([])).toBe(503);
    expect(await statusOf('')).toBe(503);
    expect(await statusOf(['10.1.2.3:8000'])).toBe(503);
    // Port-aware: the right address on another port is not a match.
    expect(await statusOf([`127.0.0.1:${servers[0]!.port === 1 ? 2 : 1}`])).toBe(503);
    const v = await routeWith([]);
    if (v.kind !== 'immediate') throw new Error('expected 503');
    expect(JSON.parse(v.body.toString()).error.message).toContain('candidates');
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'released');
  });
});

describe('response phase', () => {
  test('SSE response streams through chunk by chunk; usage is read and the charge released', async () => {
    const ex = client.open();
    const v = cont(await ex.sendRequest({ headers: chatHeaders(), body: chatBody('stream me', true) }));
    expect(destinationOf(v)[0]).toBe(servers[0]!.id);
    expect((await epp.endpointStates()).find((e) => e.id === servers[0]!.id)!.inFlight).toBe(1);
    await ex.sendResponseHeaders([
      [':status', '200'],
      ['content-type', 'text/event-stream'],
    ]);
    const sse = [
      'data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n',
      'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"com',
      'pletion_tokens":5,"total_tokens":16}}\n\ndata: [DONE]\n\n',
    ];
    // Each chunk must come back before the next is sent (nothing held back).
    let sent = 0;
    const received: string[] = [];
    async function* upstream() {
      for (const s of sse) {
        sent++;
        yield Buffer.from(s);
        await eventually(async () => received.length >= sent, 2_000, 'chunk echoed');
      }
    }
    for await (const c of ex.streamResponseBody(upstream())) received.push(c.toString());
    expect(received).toEqual(sse);
    ex.end();
    await ex.done;
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'release at response end');
    const text = await epp.metricsText();
    expect(
      promValue(text, 'inference_objective_output_tokens_sum{model_name="m",target_model_name="m"}'),
    ).toBeGreaterThanOrEqual(5);
    expect(
      promValue(text, 'inference_objective_input_tokens_count{model_name="m",target_model_name="m"}'),
    ).toBeGreaterThanOrEqual(2);
  });

  test('client cancellation mid-response releases the in-flight charge', async () => {
    const ex = client.open();
    const v = cont(await ex.sendRequest({ headers: chatHeaders(), body: chatBody('cancel me', true) }));
    const target = destinationOf(v)[0]!;
    await ex.sendResponseHeaders([
      [':status', '200'],
      ['content-type', 'text/event-stream'],
    ]);
    expect((await epp.endpointStates()).find((e) => e.id === target)!.inFlight).toBe(1);
    ex.cancel();
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'release after cancel');
  });

  test('a stream cancelled before the body ends holds no charge', async () => {
    const ex = client.open();
    const p = ex
      .sendRequest({ headers: chatHeaders(), body: [Buffer.from('{"model":"m",')] })
      .catch(() => undefined);
    ex.cancel();
    await p;
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'no charge');
  });
});

describe('errors are HTTP answers, never a broken stream', () => {
  async function immediate(body: Buffer | Buffer[], headers = chatHeaders()) {
    const ex = client.open();
    const v = await ex.sendRequest({ headers, body });
    await ex.done;
    if (v.kind !== 'immediate') throw new Error('expected an immediate response');
    return {
      status: v.status,
      json: JSON.parse(v.body.toString()) as { error: { message: string; type: string; code: number } },
      v,
    };
  }

  test('malformed JSON -> 400 with an OpenAI error body', async () => {
    const r = await immediate([Buffer.from('{"model": "m", "messages": [')]);
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('invalid_request_error');
    expect(r.json.error.message).toMatch(/not valid JSON/);
    expect(headerOf(r.v.headers, 'content-type')).toBe('application/json');
  });

  test('missing model / invalid field -> 400', async () => {
    const r = await immediate(Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'x' }] })));
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/model/);
    const r2 = await immediate(Buffer.from(JSON.stringify({ model: 'm', messages: [] })));
    expect(r2.status).toBe(400);
  });

  test('body over --max-request-body -> 413, in both modes', async () => {
    const big = chatBody('y'.repeat(400 * 1024));
    const r = await immediate([big.subarray(0, 200_000), big.subarray(200_000)]);
    expect(r.status).toBe(413);
    const ex = client.open({ requestBodyMode: 'BUFFERED' });
    const v = await ex.sendRequest({ headers: chatHeaders(), body: big });
    expect(v.kind === 'immediate' && v.status).toBe(413);
  });

  test('error counters carry GIE error codes', async () => {
    const text = await epp.metricsText();
    expect(text).toMatch(/inference_objective_request_error_total\{[^}]*error_code="BadRequest"\} [1-9]/);
    expect(text).toMatch(
      /inference_objective_request_error_total\{[^}]*error_code="PayloadTooLarge"\} [1-9]/,
    );
  });
});

describe('picks follow the scraped signals', () => {
  test('changing queue depths on /metrics changes the chosen endpoint', async () => {
    const pick = async () => {
      const ex = client.open();
      const v = cont(await ex.sendRequest({ headers: chatHeaders(), body: chatBody('who?') }));
      ex.cancel();
      return destinationOf(v)[0];
    };
    expect(await pick()).toBe(servers[0]!.id);
    // Server 2 becomes idle, server 0 busy.
    servers[0]!.waiting = 20;
    servers[2]!.waiting = 0;
    await eventually(
      async () =>
        (await epp.endpointStates()).find((e) => e.id === servers[2]!.id)?.signals?.waitingQueueSize === 0,
      3_000,
      'new signals scraped',
    );
    expect(await pick()).toBe(servers[2]!.id);
    // KV usage alone decides when queues are equal; the legacy gauge name is read too.
    servers[0]!.waiting = 0;
    servers[1]!.waiting = 0;
    servers[0]!.kv = 0.9;
    servers[2]!.kv = 0.9;
    servers[1]!.kv = 0.05;
    servers[1]!.legacyKv = true;
    await eventually(
      async () =>
        (await epp.endpointStates()).find((e) => e.id === servers[1]!.id)?.signals?.kvCacheUsage === 0.05,
      3_000,
      'legacy kv gauge scraped',
    );
    expect(await pick()).toBe(servers[1]!.id);
    await eventually(async () => (await epp.inFlight()) === 0, 3_000, 'released');
  });
});

describe('discovery and health', () => {
  test('memory store: every endpoint is scraped (no leases), no degraded series, /readyz state detail', async () => {
    const text = await epp.metricsText();
    expect(promValue(text, 'hermes_scrape_leases_held')).toBe(servers.length);
    expect(text).not.toMatch(/^hermes_state_store_degraded /m);
    const rz = (await (await fetch(`${epp.adminUrl}/readyz`)).json()) as {
      ready: boolean;
      state: { backend: string; pool: string; degraded: boolean; scraping: number };
    };
    expect(rz.ready).toBe(true);
    expect(rz.state).toMatchObject({
      backend: 'memory',
      pool: 'default',
      degraded: false,
      scraping: servers.length,
    });
  });

  test('endpoints file change is picked up; empty pool -> 503', async () => {
    writeFileSync(endpointsFile, endpointsYaml([]));
    await eventually(async () => (await epp.endpointStates()).length === 0, 5_000, 'endpoints removed');
    const ex = client.open();
    const v = await ex.sendRequest({ headers: chatHeaders(), body: chatBody('anyone?') });
    expect(v.kind === 'immediate' && v.status).toBe(503);
    if (v.kind === 'immediate') expect(JSON.parse(v.body.toString()).error.type).toBe('server_error');
    writeFileSync(endpointsFile, endpointsYaml(servers.map((s, i) => ({ name: `vllm-${i}`, port: s.port }))));
    await eventually(async () => (await epp.endpointStates()).length === 3, 5_000, 'endpoints back');
  });
});
